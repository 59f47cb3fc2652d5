import { readFileSync } from 'node:fs'
import { CaptureError } from './errors.js'
import { LINKTYPE } from './packet.js'
import { readCapture } from './pcap.js'
import { cutRpcPdus, type StreamPdu, type StreamRest } from './pdu-stream.js'
import { reassembleTcp, type TcpConnection } from './tcp.js'

/**
 * A capture file down to the DCE-RPC PDUs of each TCP connection and direction: file -> packets
 * -> TCP streams -> PDUs. Pairing requests with responses and decoding them is the next
 * layer's business; everything here is about bytes.
 */

export interface ConnectionPdus {
  connection: TcpConnection
  clientPdus: StreamPdu[]
  serverPdus: StreamPdu[]
  /** Bytes after the client's last whole PDU, and why they are not one. */
  clientRest: StreamRest | null
  serverRest: StreamRest | null
}

export interface CaptureDecode {
  fileName?: string
  format: 'pcap' | 'pcapng'
  packetCount: number
  /** File-level findings: damaged tail, skipped fragments, undecodable frames. */
  warnings: string[]
  connections: ConnectionPdus[]
}

const KNOWN_LINKTYPES = new Set<number>(Object.values(LINKTYPE))

export function decodeCapturePdus(bytes: Uint8Array, fileName?: string): CaptureDecode {
  let file: ReturnType<typeof readCapture>
  try {
    file = readCapture(bytes)
  } catch (e) {
    if (e instanceof CaptureError && fileName) throw new CaptureError(`${fileName}: ${e.what}`, e.offset)
    throw e
  }
  const warnings = [...file.warnings]
  const unknown = new Set<number>()
  for (const p of file.packets) if (!KNOWN_LINKTYPES.has(p.linkType)) unknown.add(p.linkType)
  for (const t of unknown) warnings.push(`link type ${t} is not supported; its frames are skipped`)
  const connections = reassembleTcp(file.packets, warnings).map((connection) => {
    const client = cutRpcPdus(connection.clientData)
    const server = cutRpcPdus(connection.serverData)
    return {
      connection,
      clientPdus: client.pdus,
      serverPdus: server.pdus,
      clientRest: client.rest,
      serverRest: server.rest,
    }
  })
  const result: CaptureDecode = {
    format: file.format,
    packetCount: file.packets.length,
    warnings,
    connections,
  }
  if (fileName !== undefined) result.fileName = fileName
  return result
}

/** Steps 1-4 end to end: every TCP connection of the capture with its PDUs per direction. */
export function capturePdus(bytes: Uint8Array, fileName?: string): ConnectionPdus[] {
  return decodeCapturePdus(bytes, fileName).connections
}

/** Reads a capture file from disk and decodes it (the one function here that does I/O). */
export function readCaptureFile(path: string): CaptureDecode {
  return decodeCapturePdus(readFileSync(path), path)
}
