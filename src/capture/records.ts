// The decoder's output: one record per KMS exchange (or per stream's findings), as `kmslab decode`
// prints it and the API returns it.
import type { Catalog } from '../catalog/index.js'
import type { RequestReport, ResponseReport } from '../kms/report.js'
import { endpointText } from '../wire/endpoint.js'
import type { TransferSyntax } from '../wire/ndr.js'
import type { TcpConnection } from './tcp.js'

/** One KMS exchange (a REQUEST and its answer), or a stream's findings when it carried none. */
export interface ExchangeRecord {
  file: string
  /** "127.0.0.1:40312", "[::1]:16880" */
  client: string
  server: string
  /** null on a record that only carries a stream's findings. */
  callId: number | null
  transferSyntax: TransferSyntax | null
  request: RequestReport | null
  response: ResponseReport | null
  /** Everything that is not plain KMS: RPC oddities, failed checks, FAULTs, non-RPC bytes. */
  errors: string[]
  /** Index of the TCP connection in the capture, from 0. */
  connection: number
  contextId: number | null
  opnum: number | null
  /** The request's plain version (bytes 0-3), which decides its shape; `request.version` is the one inside. */
  wireVersion: string | null
  /** Wireshark frame numbers of the packets that completed the request and its answer. */
  requestFrame: number | null
  responseFrame: number | null
  /** Capture time of the request's last packet, ISO 8601 UTC. */
  time: string | null
  /** Catalogue names of the request's ids (null when unknown). */
  products: { app: string | null; sku: string | null; kms: string | null } | null
}

export interface DecodedCapture {
  format: 'pcap' | 'pcapng'
  packetCount: number
  connectionCount: number
  exchanges: ExchangeRecord[]
  /** File-level findings (damaged tail, undecodable frames). */
  warnings: string[]
}

export interface DecodeOptions {
  /** Where product names come from; null for none. Default: the shipped catalogue. */
  catalog?: Catalog | null
}

export function blankRecord(file: string, conn: TcpConnection, index: number): ExchangeRecord {
  return {
    file,
    client: endpointText(conn.client),
    server: endpointText(conn.server),
    callId: null,
    transferSyntax: null,
    request: null,
    response: null,
    errors: [],
    connection: index,
    contextId: null,
    opnum: null,
    wireVersion: null,
    requestFrame: null,
    responseFrame: null,
    time: null,
    products: null,
  }
}
