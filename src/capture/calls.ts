// Call pairing: every PDU of one connection parsed, fragmented calls joined, each sorted by kind
// and each answer paired with its request; the side that calls is the client whatever the ports say.
import { KmslabError } from '../errors.js'
import { concatBytes } from '../wire/bytes.js'
import {
  type AnyPdu,
  type BindAckPdu,
  type BindNakPdu,
  type BindPdu,
  type FaultPdu,
  PFC,
  PTYPE,
  parsePdu,
  type RequestPdu,
  type ResponsePdu,
  RPC_HEADER_FIELD,
} from '../wire/rpc.js'
import type { ConnectionPdus } from './capture-pdus.js'
import { frameText, headerFindings } from './findings.js'
import type { TcpChunk, TcpConnection } from './tcp.js'

export interface Seen<T> {
  pdu: T
  frame: number | null
  ns: bigint | null
}

/** A call after fragment reassembly: the first PDU (its header and fields) and the joined stub. */
export interface Call<T> extends Seen<T> {
  stub: Uint8Array
  fragments: number
  /** A PDU with PFC_LAST_FRAG ended the call. */
  complete: boolean
}

/** Every PDU of one connection, both directions, by kind. */
export interface Calls {
  binds: Seen<BindPdu & { kind: 'bind' | 'alter_context' }>[]
  bindAnswers: Seen<
    (BindAckPdu & { kind: 'bind_ack' | 'alter_context_resp' }) | (BindNakPdu & { kind: 'bind_nak' })
  >[]
  requests: RequestCall[]
  answers: Answer[]
}

export type RequestCall = Call<RequestPdu>
export type Answer = Call<(ResponsePdu & { kind: 'response' }) | (FaultPdu & { kind: 'fault' })>

/**
 * Each answer goes to the oldest unanswered request with its call id. A FAULT that matches none
 * goes to the oldest unanswered request: vlmcsd sends its FAULTs with a fixed call id 2 (§1.10).
 */
export function pairCalls(side: Calls): { answerOf: Map<RequestCall, Answer>; orphans: Answer[] } {
  const answerOf = new Map<RequestCall, Answer>()
  const orphans: Answer[] = []
  const queues = new Map<number, { list: RequestCall[]; next: number }>()
  for (const r of side.requests) {
    const q = queues.get(r.pdu.header.callId)
    if (q) q.list.push(r)
    else queues.set(r.pdu.header.callId, { list: [r], next: 0 })
  }
  let oldest = 0
  for (const a of side.answers) {
    let req: RequestCall | undefined
    const q = queues.get(a.pdu.header.callId)
    while (q && q.next < q.list.length && !req) {
      const r = q.list[q.next++]
      if (!answerOf.has(r)) req = r
    }
    if (!req && a.pdu.kind === 'fault') {
      while (oldest < side.requests.length && answerOf.has(side.requests[oldest])) oldest++
      req = side.requests[oldest]
    }
    if (req) answerOf.set(req, a)
    else orphans.push(a)
  }
  return { answerOf, orphans }
}

const CALLER_PTYPES = new Set<number>([PTYPE.REQUEST, PTYPE.BIND, PTYPE.ALTER_CONTEXT])

/**
 * Without a SYN the TCP layer guesses the client from the ports; a host on a high port fools it.
 * The side that sends BIND and REQUEST PDUs is the client whatever the ports say.
 */
export function callerFirst(c: ConnectionPdus): ConnectionPdus {
  const calls = (list: ConnectionPdus['clientPdus']) =>
    list.filter((p) => CALLER_PTYPES.has(p.bytes[RPC_HEADER_FIELD.ptype])).length
  if (calls(c.serverPdus) <= calls(c.clientPdus)) return c
  const k = c.connection
  const flip = (text: string) =>
    text.replace(/^(client|server)/, (w) => (w === 'client' ? 'server' : 'client'))
  const closedBy = k.closedBy && flip(k.closedBy)
  const connection: TcpConnection = {
    ...k,
    client: k.server,
    server: k.client,
    clientData: k.serverData,
    serverData: k.clientData,
    chunks: k.chunks.map((x) => ({ ...x, fromClient: !x.fromClient })),
    gaps: k.gaps.map(flip),
    closedBy: closedBy as TcpConnection['closedBy'],
  }
  if (closedBy === undefined) delete connection.closedBy
  return {
    connection,
    clientPdus: c.serverPdus,
    serverPdus: c.clientPdus,
    clientRest: c.serverRest,
    serverRest: c.clientRest,
  }
}

/** Parses every PDU of both directions, joins fragmented calls and sorts them by kind. */
export function collect(c: ConnectionPdus, findings: string[]): Calls {
  const side: Calls = { binds: [], bindAnswers: [], requests: [], answers: [] }
  const open = new Map<string, Call<never>>()
  for (const fromClient of [true, false]) {
    const who = fromClient ? 'client' : 'server'
    const chunks = c.connection.chunks
      .filter((k) => k.fromClient === fromClient)
      .sort((x, y) => x.offset - y.offset)
    for (const p of fromClient ? c.clientPdus : c.serverPdus) {
      const { frame, ns } = whenComplete(chunks, p.offset + p.bytes.length)
      let pdu: AnyPdu
      try {
        pdu = parsePdu(p.bytes)
      } catch (err) {
        if (!(err instanceof KmslabError)) throw err
        findings.push(
          `${who} PDU at stream offset ${p.offset}${frameText({ frame })} is malformed: ${err.message}`,
        )
        continue
      }
      const seen = { pdu, frame, ns }
      const k = pdu.kind
      const expected =
        k === 'bind' || k === 'alter_context' || k === 'request' ? fromClient : k !== 'other' && !fromClient
      if (!expected) {
        findings.push(
          `${who} sent a ${k === 'other' ? `PTYPE ${pdu.header.ptype}` : k} PDU${frameText(seen)}`,
        )
        continue
      }
      if (k !== 'request' && k !== 'response' && k !== 'fault') headerFindings(pdu.header, k, findings)
      if (k === 'bind' || k === 'alter_context') side.binds.push({ ...seen, pdu })
      else if (k === 'bind_ack' || k === 'alter_context_resp' || k === 'bind_nak')
        side.bindAnswers.push({ ...seen, pdu })
      else if (k === 'request' || k === 'response' || k === 'fault') {
        const stub = k === 'fault' ? new Uint8Array(0) : pdu.stub
        const key = `${k === 'request'}:${pdu.header.callId}`
        const flags = pdu.header.flags
        const prev = open.get(key)
        if (prev && !(flags & PFC.FIRST_FRAG)) {
          prev.stub = concatBytes(prev.stub, stub)
          prev.fragments++
          prev.frame = frame
          prev.ns = ns
          prev.complete = (flags & PFC.LAST_FRAG) !== 0
        } else {
          const call = {
            ...seen,
            pdu,
            stub,
            fragments: 1,
            complete: (flags & PFC.LAST_FRAG) !== 0,
          } as Call<never>
          if (k === 'request') side.requests.push(call)
          else side.answers.push(call)
          if (!(flags & PFC.LAST_FRAG)) open.set(key, call)
        }
        if (flags & PFC.LAST_FRAG) open.delete(key)
      }
    }
  }
  return side
}

/**
 * The packet that completed stream bytes [0, end) of one direction. `chunks` are that direction's
 * chunks, in stream order (chunks never overlap), so a binary search finds it.
 */
export function whenComplete(chunks: TcpChunk[], end: number): { frame: number | null; ns: bigint | null } {
  let lo = 0
  let hi = chunks.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (chunks[mid].offset + chunks[mid].length < end) lo = mid + 1
    else hi = mid
  }
  const k = chunks[lo]
  return k && k.offset < end ? { frame: k.packetIndex + 1, ns: k.timestampNs } : { frame: null, ns: null }
}
