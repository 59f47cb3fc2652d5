import { closeSync, openSync, writeSync } from 'node:fs'
import type { Endpoint } from '../wire/endpoint.js'
import { emitPcapFileHeader, emitPcapTcpRecord, TCP_FLAGS } from '../wire/pcap-frames.js'

/**
 * Records every connection's bytes as a classic pcap with synthetic TCP framing (handshake, data
 * with real sequence numbers, FIN), so `kmslab decode` and Wireshark read the host's traffic.
 * Writes are synchronous and small: this is a research switch, not a hot path. A write that fails
 * (disk full) ends the recording, never the host: `error` then says why the file stops there.
 */
export class CaptureRecorder {
  private fd: number
  error: Error | null = null
  private flows = new Map<
    number,
    { client: Endpoint; server: Endpoint; clientSeq: number; serverSeq: number }
  >()

  constructor(
    readonly path: string,
    private now: () => number = Date.now,
  ) {
    this.fd = openSync(path, 'w')
    writeSync(this.fd, emitPcapFileHeader())
  }

  open(id: number, client: Endpoint, server: Endpoint): void {
    const flow = { client, server, clientSeq: (id * 7919) >>> 0, serverSeq: (id * 104729) >>> 0 }
    this.flows.set(id, flow)
    this.segment(flow, true, TCP_FLAGS.SYN, new Uint8Array(0))
    flow.clientSeq++
    this.segment(flow, false, TCP_FLAGS.SYN | TCP_FLAGS.ACK, new Uint8Array(0))
    flow.serverSeq++
    this.segment(flow, true, TCP_FLAGS.ACK, new Uint8Array(0))
  }

  data(id: number, fromClient: boolean, bytes: Uint8Array): void {
    const flow = this.flows.get(id)
    if (!flow || bytes.length === 0) return
    // Stay below the Ethernet-sized MTU a real capture would show.
    for (let off = 0; off < bytes.length; off += 1400) {
      const part = bytes.subarray(off, off + 1400)
      this.segment(flow, fromClient, TCP_FLAGS.PSH | TCP_FLAGS.ACK, part)
      if (fromClient) flow.clientSeq += part.length
      else flow.serverSeq += part.length
    }
  }

  close(id: number): void {
    const flow = this.flows.get(id)
    if (!flow) return
    this.flows.delete(id)
    this.segment(flow, false, TCP_FLAGS.FIN | TCP_FLAGS.ACK, new Uint8Array(0))
    flow.serverSeq++
    this.segment(flow, true, TCP_FLAGS.FIN | TCP_FLAGS.ACK, new Uint8Array(0))
    flow.clientSeq++
    this.segment(flow, false, TCP_FLAGS.ACK, new Uint8Array(0))
  }

  end(): void {
    for (const id of [...this.flows.keys()]) this.close(id)
    try {
      closeSync(this.fd)
    } catch (err) {
      this.error ??= err as Error
    }
  }

  private segment(
    flow: { client: Endpoint; server: Endpoint; clientSeq: number; serverSeq: number },
    fromClient: boolean,
    flags: number,
    payload: Uint8Array,
  ): void {
    if (this.error) return
    try {
      const record = emitPcapTcpRecord({
        src: fromClient ? flow.client : flow.server,
        dst: fromClient ? flow.server : flow.client,
        seq: fromClient ? flow.clientSeq : flow.serverSeq,
        ack:
          flags & TCP_FLAGS.SYN && !(flags & TCP_FLAGS.ACK)
            ? 0
            : fromClient
              ? flow.serverSeq
              : flow.clientSeq,
        flags,
        payload,
        timestampMs: this.now(),
      })
      writeSync(this.fd, record)
    } catch (err) {
      this.error = err as Error
    }
  }
}
