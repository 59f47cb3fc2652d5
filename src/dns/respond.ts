// One query in, one answer out (or nothing): the server's wire behaviour apart from sockets.
// Malformed queries get FORMERR when their header can be read, nothing otherwise; answers over UDP
// fit 512 bytes, or the client's EDNS(0) size up to our cap (RFC 6891), by leaving out the
// additional section first and then setting TC with no records (RFC 2181 §9), so the client
// retries over TCP.
import {
  CLASSIC_UDP_LIMIT,
  type DecodedDnsMessage,
  type DnsAnswer,
  type DnsMessage,
  decodeDnsMessage,
  encodeDnsMessage,
  FLAG,
  OPCODE_QUERY,
  type OptRecord,
  peekHeader,
  RCODE,
} from '../wire/dns.js'
import type { Zone } from './zone.js'

export type Transport = 'udp' | 'tcp'

/** How a query ended, for the server's counters. */
export type Outcome = 'answered' | 'nxdomain' | 'refused' | 'formerr' | 'notimp' | 'truncated' | 'dropped'

export interface Reply {
  bytes: Buffer | null
  outcome: Outcome
}

/** The zone transfers are not served: a lab zone is small and `kmslab dns zone` prints it. */
const REFUSED_TYPES = new Set(['AXFR', 'IXFR'])

function opt(udpSize: number, extendedRcode = 0): OptRecord {
  return {
    type: 'OPT',
    name: '.',
    udpPayloadSize: udpSize,
    extendedRcode,
    ednsVersion: 0,
    flags: 0,
    flag_do: false,
    options: [],
  }
}

/** A bare answer: the header, the question when there is a usable one, OPT when the query had EDNS. */
function bare(
  id: number,
  rd: boolean,
  rcode: number,
  question: DecodedDnsMessage['questions'],
  edns: number | null,
): Buffer {
  const message: DnsMessage = {
    type: 'response',
    id,
    flags: rd ? FLAG.rd : 0,
    questions: question ?? [],
    additionals: edns === null ? [] : [opt(edns, rcode >> 4)],
  }
  return encodeDnsMessage(message, rcode & 0x0f)
}

export interface RespondOptions {
  /** Largest UDP answer we send to an EDNS client (its own size wins when smaller). */
  ednsUdpSize: number
}

export function respond(bytes: Uint8Array, zone: Zone, transport: Transport, o: RespondOptions): Reply {
  const header = peekHeader(bytes)
  // Too short to answer, or itself an answer (never answer those: no loops between servers).
  if (!header || header.response) return { bytes: null, outcome: 'dropped' }
  const rd = (bytes[2] & 0x01) !== 0
  let query: DecodedDnsMessage
  try {
    query = decodeDnsMessage(bytes)
  } catch {
    return { bytes: bare(header.id, rd, RCODE.FORMERR, [], null), outcome: 'formerr' }
  }
  const opts = (query.additionals ?? []).filter((a): a is OptRecord => a.type === 'OPT')
  const edns = opts.length === 1 ? opts[0] : null
  const ourSize = Math.max(CLASSIC_UDP_LIMIT, o.ednsUdpSize)
  if (header.opcode !== OPCODE_QUERY)
    return { bytes: bare(header.id, rd, RCODE.NOTIMP, [], edns && ourSize), outcome: 'notimp' }
  const questions = query.questions ?? []
  if (questions.length !== 1 || opts.length > 1 || (edns && edns.name !== '.'))
    return { bytes: bare(header.id, rd, RCODE.FORMERR, [], null), outcome: 'formerr' }
  if (edns && edns.ednsVersion > 0)
    return { bytes: bare(header.id, rd, RCODE.BADVERS, [], ourSize), outcome: 'formerr' }
  const q = questions[0]
  const klass = q.class ?? 'IN'
  if ((klass !== 'IN' && klass !== 'ANY') || REFUSED_TYPES.has(q.type))
    return { bytes: bare(header.id, rd, RCODE.REFUSED, questions, edns && ourSize), outcome: 'refused' }

  const z = zone.answer(q.name, q.type)
  const extra: DnsAnswer[] = edns ? [opt(ourSize)] : []
  const message: DnsMessage = {
    type: 'response',
    id: header.id,
    flags: (rd ? FLAG.rd : 0) | (z.authoritative ? FLAG.aa : 0),
    questions,
    answers: z.answers,
    authorities: z.authorities,
    additionals: [...z.additionals, ...extra],
  }
  const outcome: Outcome =
    z.rcode === RCODE.REFUSED ? 'refused' : z.rcode === RCODE.NXDOMAIN ? 'nxdomain' : 'answered'
  let out = encodeDnsMessage(message, z.rcode)
  if (transport === 'tcp') return { bytes: out, outcome }
  const limit = edns ? Math.min(Math.max(edns.udpPayloadSize, CLASSIC_UDP_LIMIT), ourSize) : CLASSIC_UDP_LIMIT
  if (out.length <= limit) return { bytes: out, outcome }
  // The addresses are a courtesy: without them the answer is still whole, and needs no TC.
  out = encodeDnsMessage({ ...message, additionals: extra }, z.rcode)
  if (out.length <= limit) return { bytes: out, outcome }
  const cut = {
    ...message,
    flags: message.flags! | FLAG.tc,
    answers: [],
    authorities: [],
    additionals: extra,
  }
  return { bytes: encodeDnsMessage(cut, z.rcode), outcome: 'truncated' }
}

/**
 * The answer to a query over its source's rate: TC and no records, so a genuine client asks again
 * over TCP (which a spoofed source cannot), while the flood is not amplified. Null when the bytes
 * are not a query.
 */
export function truncatedReply(bytes: Uint8Array): Buffer | null {
  const header = peekHeader(bytes)
  if (!header || header.response) return null
  let questions: DecodedDnsMessage['questions'] = []
  try {
    questions = decodeDnsMessage(bytes).questions ?? []
  } catch {
    return null
  }
  const rd = (bytes[2] & 0x01) !== 0
  return encodeDnsMessage({
    type: 'response',
    id: header.id,
    flags: FLAG.tc | (rd ? FLAG.rd : 0),
    questions: questions.slice(0, 1),
  })
}
