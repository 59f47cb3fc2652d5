// The research decoder behind `kmslab decode`: every KMS exchange of a capture, paired, decrypted
// and verified (§1.12, §1.13). It decodes whatever the bytes allow and names everything unusual in
// the record's `errors`; only input that is not a capture at all throws (CaptureError). The steps
// have their own files: calls.ts (pairing), contexts.ts, exchange.ts, findings.ts, records.ts.
import { type Catalog, defaultCatalog } from '../catalog/index.js'
import { KmslabError } from '../errors.js'
import { callerFirst, collect, pairCalls } from './calls.js'
import { type ConnectionPdus, decodeCapturePdus } from './capture-pdus.js'
import { trackContexts } from './contexts.js'
import { addFinding } from './errors.js'
import { decodeExchange } from './exchange.js'
import { closedText, faultText, frameText, restText } from './findings.js'
import { blankRecord, type DecodedCapture, type DecodeOptions, type ExchangeRecord } from './records.js'

export type { DecodedCapture, DecodeOptions, ExchangeRecord }

/** Decodes every KMS exchange of a pcap/pcapng file; throws CaptureError only for a non-capture. */
export function decodeCapture(
  bytes: Uint8Array,
  fileName?: string,
  options: DecodeOptions = {},
): DecodedCapture {
  const pdus = decodeCapturePdus(bytes, fileName)
  const catalog = options.catalog === undefined ? defaultCatalog() : options.catalog
  const exchanges: ExchangeRecord[] = []
  pdus.connections.forEach((c, i) => {
    exchanges.push(...decodeConnection(c, i, fileName ?? '', catalog))
  })
  return {
    format: pdus.format,
    packetCount: pdus.packetCount,
    connectionCount: pdus.connections.length,
    exchanges,
    warnings: pdus.warnings,
  }
}

function decodeConnection(
  pdus: ConnectionPdus,
  index: number,
  file: string,
  catalog: Catalog | null,
): ExchangeRecord[] {
  const c = callerFirst(pdus)
  const conn = c.connection
  const findings: string[] = [...conn.gaps]
  const side = collect(c, findings)
  const contexts = trackContexts(side, findings)
  const records: ExchangeRecord[] = []
  const { answerOf, orphans } = pairCalls(side)
  for (const req of side.requests) {
    const record = blankRecord(file, conn, index)
    try {
      decodeExchange(record, req, answerOf.get(req) ?? null, contexts, conn, catalog)
    } catch (err) {
      if (!(err instanceof KmslabError)) throw err
      record.errors.push(`cannot decode this exchange: ${err.message}`)
    }
    records.push(record)
  }
  for (const a of orphans) {
    const what = a.pdu.kind === 'fault' ? `FAULT ${faultText(a.pdu.status)}` : 'RESPONSE'
    findings.push(`${what} (call id ${a.pdu.header.callId}${frameText(a)}) answers no captured request`)
  }
  if (c.clientRest) findings.push(restText('client', conn.clientData.length, c.clientRest))
  if (c.serverRest) findings.push(restText('server', conn.serverData.length, c.serverRest))
  if (conn.clientData.length === 0 && conn.serverData.length === 0) {
    findings.push(`no data on this connection${closedText(conn.closedBy)}`)
  } else if (records.length === 0) {
    findings.push(`no KMS request on this connection${closedText(conn.closedBy)}`)
  }
  if (findings.length > 0) {
    const record = blankRecord(file, conn, index)
    for (const f of findings) addFinding(record.errors, f)
    records.push(record)
  }
  return records
}
