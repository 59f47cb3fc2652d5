// The host's KMS call handler: matches the fault-injection rules, answers (or refuses, faults,
// drops), records the request in the state and tells the owner. A request that cannot be recorded
// is refused, never answered: the answer would be a lie about the state.
import { composeKmsAnswer, type HostContext, screenKmsRequest } from '../kms/answer.js'
import { HRESULT } from '../kms/hresult.js'
import { type DecodedRequest, decodeKmsRequest } from '../kms/request.js'
import type { CallHandler, CallOutcome, KmsCall } from '../server/types.js'
import type { CountAsk, Recorded, Recorder } from '../store/recorder.js'
import type { HistoryRow } from '../store/types.js'
import { dateFromFiletime, NULL_GUID } from '../wire/bytes.js'
import { type CompiledRule, matchRequestRule } from './rules.js'
import type { ActivationRecord, RequestOutcome } from './types.js'

/**
 * HRESULT_FROM_WIN32(RPC_S_CALL_FAILED): what a Windows client reports when the connection drops
 * in the middle of its call. History rows of requests a rule dropped carry it.
 */
export const RPC_S_CALL_FAILED = 0x800706be

/** What the KMS answer needs (the clock read per request), plus the rules, the state and the owner. */
export interface HandlerContext extends Omit<HostContext, 'now'> {
  /** The host's clock, ms. */
  now(): number
  rules(): readonly CompiledRule[]
  /** Records each request, and counts those to be answered, in the state. */
  recorder: Recorder
  /**
   * The request is settled (recorded, or refused for want of a record): count it, tell listeners.
   * `seconds`: from the decoded request to this moment, the answer ready to write.
   */
  settled(record: ActivationRecord, seconds: number): void
  /** A write failed: report it and bring the counter back in line with the state. */
  writeFailed(err: Error): void
}

interface Decision {
  outcome: RequestOutcome
  call: CallOutcome
  hresult: number
  reason: string | null
  faultStatus: number | null
  /** set when the request is to be answered: what the counter needs */
  ask: CountAsk | null
  epid: string | null
}

export function createCallHandler(ctx: HandlerContext): CallHandler {
  let requestsSeen = 0
  return (call: KmsCall): CallOutcome | Promise<CallOutcome> => {
    const started = performance.now()
    const at = ctx.now()
    const request = decodeKmsRequest(call.payload)
    const base = request.base
    requestsSeen++
    // Fields an unreadable request lacks match no rule that names them; nth, client and protocol still can.
    const rules = ctx.rules()
    const rule =
      rules.length === 0
        ? null
        : matchRequestRule(rules, {
            appId: base?.appId ?? '',
            kmsId: base?.kmsId ?? '',
            skuId: base?.skuId ?? '',
            cmid: base?.cmid ?? '',
            workstation: base?.workstation ?? '',
            client: call.connection.client.address,
            protocol: request.major,
            nth: requestsSeen,
            nthOnConnection: call.callIndex,
          })
    const d = decide(request, rule, at, ctx)
    const record = makeRecord(call, request, d, rule, at)
    const elapsed = () => (performance.now() - started) / 1000
    const done = (): CallOutcome => {
      ctx.settled(record, elapsed())
      return d.call
    }
    const failed = (err: Error): CallOutcome => {
      ctx.writeFailed(err)
      record.stored = false
      if (d.outcome !== 'answer') return done()
      Object.assign(record, {
        outcome: 'refuse',
        hresult: HRESULT.INVALID_DATA,
        reportedCount: null,
        epid: null,
        poolSize: null,
        newClient: null,
        willActivate: false,
        reason: `state store write failed: ${err.message}`,
      })
      ctx.settled(record, elapsed())
      return { kind: 'refuse', hresult: HRESULT.INVALID_DATA, ...extrasOf(rule) }
    }
    // The answer is built as soon as the count is known (at once with an in-process counter, so
    // seeded hosts draw their randomness in request order) and leaves only once it is durable.
    const counted = (r: Recorded): CallOutcome | Promise<CallOutcome> => {
      if (d.ask && r.counted) {
        const a = rule?.rule.action
        const answer = composeKmsAnswer(request, r.counted.outcome, ctx, { corrupt: a?.corrupt })
        d.call = { kind: 'answer', payload: answer.payload!, ...extrasOf(rule) }
        record.reportedCount = r.counted.reportedCount
        record.poolSize = r.counted.outcome.poolSize
        record.newClient = r.counted.outcome.newClient
        record.willActivate = record.willActivate && r.counted.reportedCount >= record.requiredCount
      }
      return r.durable ? r.durable.then(done, failed) : done()
    }
    try {
      const r = ctx.recorder.record({ row: toHistoryRow(record), count: d.ask })
      return r instanceof Promise ? r.then(counted, failed) : counted(r)
    } catch (err) {
      return failed(err as Error)
    }
  }
}

/** What the host sends: a rule's fault, drop or refusal wins over everything, else the KMS answer. */
function decide(
  request: DecodedRequest,
  rule: CompiledRule | null,
  at: number,
  ctx: HandlerContext,
): Decision {
  const a = rule?.rule.action ?? {}
  const extras = extrasOf(rule)
  const unanswered = { ask: null, epid: null, faultStatus: null }
  if (rule && a.close === 'before') {
    const call: CallOutcome = { kind: 'close', delayMs: a.delayMs }
    return {
      ...unanswered,
      outcome: 'close',
      call,
      hresult: RPC_S_CALL_FAILED,
      reason: `connection closed by ${byRule(rule)}`,
    }
  }
  if (rule?.fault !== undefined) {
    const call: CallOutcome = { kind: 'fault', status: rule.fault, ...extras }
    const reason = `RPC FAULT sent by ${byRule(rule)}`
    return { ...unanswered, outcome: 'fault', call, hresult: rule.fault, faultStatus: rule.fault, reason }
  }
  if (rule?.refuse !== undefined) {
    const call: CallOutcome = { kind: 'refuse', hresult: rule.refuse, ...extras }
    return {
      ...unanswered,
      outcome: 'refuse',
      call,
      hresult: rule.refuse,
      reason: `refused by ${byRule(rule)}`,
    }
  }
  const refused = screenKmsRequest(request, { now: at, strict: ctx.strict, kmsIdStatus: ctx.kmsIdStatus })
  if (refused || !request.base) {
    const hresult = refused?.hresult ?? HRESULT.INVALID_DATA
    const call: CallOutcome = { kind: 'refuse', hresult, ...extras }
    return {
      ...unanswered,
      outcome: 'refuse',
      call,
      hresult,
      reason: refused?.reason ?? 'unreadable request',
    }
  }
  const b = request.base
  return {
    outcome: 'answer',
    // the payload is built once the request is counted
    call: { kind: 'answer', payload: new Uint8Array(0), ...extras },
    hresult: 0,
    reason: null,
    faultStatus: null,
    ask: {
      appId: b.appId,
      cmid: b.cmid,
      requiredCount: b.requiredCount,
      now: at,
      mode: ctx.counter.mode,
      reportedOverride: a.count,
    },
    epid: ctx.epidFor(b.kmsId),
  }
}

/** Named only when a rule acts: an answered request builds no such text. */
const byRule = (rule: CompiledRule | null) => `fault-injection rule ${JSON.stringify(rule?.name)}`

/** How a rule shapes the sending of whatever is sent: delay, close after, cut short. */
function extrasOf(rule: CompiledRule | null) {
  const a = rule?.rule.action
  return { closeAfter: a?.close === 'after', truncate: a?.truncate, delayMs: a?.delayMs }
}

function makeRecord(
  call: KmsCall,
  request: DecodedRequest,
  d: Decision,
  rule: CompiledRule | null,
  at: number,
): ActivationRecord {
  const base = request.base
  const conn = call.connection
  const action = rule?.rule.action
  // An answer a genuine client accepts: not cut short, and no corruption that breaks a check
  // (a V6 answer reusing the request IV only earns a warning; V4 has no IV to break).
  const intact =
    !action?.truncate &&
    (action?.corrupt === undefined || (action.corrupt === 'iv-rule' && request.major !== 5))
  return {
    time: at,
    clientAddress: conn.client.address,
    workstation: base?.workstation ?? '',
    cmid: base?.cmid ?? NULL_GUID,
    previousCmid: base?.previousCmid ?? NULL_GUID,
    appId: base?.appId ?? NULL_GUID,
    skuId: base?.skuId ?? NULL_GUID,
    kmsId: base?.kmsId ?? NULL_GUID,
    requiredCount: base?.requiredCount ?? 0,
    reportedCount: null,
    hresult: d.hresult,
    protocol: `${request.major}.${request.minor}`,
    vm: (base?.isClientVm ?? 0) !== 0,
    licenseStatus: base?.licenseStatus ?? 0,
    clientTime: base ? finiteOrNull(dateFromFiletime(base.requestTime).getTime()) : null,
    graceMinutes: base?.graceTime ?? null,
    epid: d.epid,
    rules: rule ? [rule.name] : [],
    connectionId: conn.id,
    clientPort: conn.client.port,
    callId: call.callId,
    syntax: call.syntax,
    outcome: d.outcome,
    faultStatus: d.faultStatus,
    reason: d.reason,
    // these three are finished when the request is counted
    poolSize: null,
    newClient: null,
    willActivate: d.outcome === 'answer' && intact,
    stored: true,
    request,
  }
}

export function toHistoryRow(r: HistoryRow): HistoryRow {
  return {
    time: r.time,
    clientAddress: r.clientAddress,
    workstation: r.workstation,
    cmid: r.cmid,
    previousCmid: r.previousCmid,
    appId: r.appId,
    skuId: r.skuId,
    kmsId: r.kmsId,
    requiredCount: r.requiredCount,
    reportedCount: r.reportedCount,
    hresult: r.hresult,
    protocol: r.protocol,
    vm: r.vm,
    licenseStatus: r.licenseStatus,
    clientTime: r.clientTime,
    graceMinutes: r.graceMinutes,
    epid: r.epid,
    rules: [...r.rules],
  }
}

const finiteOrNull = (n: number): number | null => (Number.isFinite(n) ? n : null)
