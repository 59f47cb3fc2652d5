import type { RandomSource } from '../crypto/random.js'
import { dateFromFiletime } from '../wire/bytes.js'
import type { ActivationCounter, CounterOutcome } from './counter.js'
import { HRESULT } from './hresult.js'
import type { DecodedRequest } from './request.js'
import { type AnswerCorruption, buildKmsResponse } from './response.js'

export const MAX_REQUIRED_COUNT = 1000
export const MAX_CLOCK_SKEW_MS = 4 * 3600_000

/** How a KMS id stands in the catalogue, for `--strict`. */
export type KmsIdStatus = 'volume' | 'retail' | 'preview' | 'unknown'

/** Everything the host's answer depends on besides the request: injected, so this stays pure. */
export interface HostContext {
  now: number
  random: RandomSource
  counter: ActivationCounter
  /** Refuse unknown or retail KMS ids (0xC004F042) and clocks more than 4 h off (0xC004F06C). */
  strict: boolean
  activationInterval: number
  renewalInterval: number
  hwid: Uint8Array
  epidFor(kmsId: string): string
  kmsIdStatus(kmsId: string): KmsIdStatus
}

/** What a fault-injection rule may change in an answer. */
export interface AnswerOverride {
  hresult?: number
  reportedCount?: number
  corrupt?: AnswerCorruption
}

export interface KmsAnswer {
  request: DecodedRequest
  /** 0 when the host answers with a response, else the refusal HRESULT. */
  hresult: number
  /** Why the host refused, for the log. */
  reason: string | null
  payload: Uint8Array | null
  counter: CounterOutcome | null
  reportedCount: number | null
  epid: string | null
}

/**
 * The host's answer to one decoded KMS request (`decodeKmsRequest`): policy checks, the counter,
 * then the response bytes. A refused request is not counted.
 */
export function answerKmsRequest(
  request: DecodedRequest,
  ctx: HostContext,
  override: AnswerOverride = {},
): KmsAnswer {
  const refused = screenKmsRequest(request, ctx, override)
  if (refused || !request.base) return refused ?? refusal(request, HRESULT.INVALID_DATA, 'unreadable request')
  const b = request.base
  return composeKmsAnswer(
    request,
    ctx.counter.record(b.appId, b.cmid, b.requiredCount, ctx.now),
    ctx,
    override,
  )
}

function refusal(request: DecodedRequest, hresult: number, reason: string): KmsAnswer {
  return { request, hresult, reason, payload: null, counter: null, reportedCount: null, epid: null }
}

/**
 * The policy checks before counting: the refusal to send, or null when the request is to be
 * counted and answered. Split from the answer so the count can come from a shared store.
 */
export function screenKmsRequest(
  request: DecodedRequest,
  ctx: Pick<HostContext, 'now' | 'strict' | 'kmsIdStatus'>,
  override: AnswerOverride = {},
): KmsAnswer | null {
  const refuse = (hresult: number, reason: string) => refusal(request, hresult, reason)
  const base = request.base
  if (request.problems.length > 0 || !base) {
    return refuse(
      HRESULT.INVALID_DATA,
      request.problems.map((p) => p.message).join('; ') || 'unreadable request',
    )
  }
  if (base.requiredCount > MAX_REQUIRED_COUNT) {
    return refuse(HRESULT.INVALID_DATA, `required count ${base.requiredCount} exceeds ${MAX_REQUIRED_COUNT}`)
  }
  if (ctx.strict) {
    const status = ctx.kmsIdStatus(base.kmsId)
    if (status === 'unknown' || status === 'retail') {
      return refuse(HRESULT.KMS_ID_MISMATCH, `strict: ${status} KMS id ${base.kmsId}`)
    }
    const skew = dateFromFiletime(base.requestTime).getTime() - ctx.now
    if (!(Math.abs(skew) <= MAX_CLOCK_SKEW_MS)) {
      return refuse(HRESULT.INVALID_TIMESTAMP, `strict: client clock ${(skew / 3600_000).toFixed(1)} h off`)
    }
  }
  if (override.hresult !== undefined && override.hresult !== 0) {
    return refuse(override.hresult, 'fault-injection rule')
  }
  return null
}

/** The response to a request that passed `screenKmsRequest`, once its CMID is counted. */
export function composeKmsAnswer(
  request: DecodedRequest,
  counter: CounterOutcome,
  ctx: Omit<HostContext, 'now' | 'counter' | 'strict' | 'kmsIdStatus'>,
  override: AnswerOverride = {},
): KmsAnswer {
  const reportedCount = override.reportedCount ?? counter.reportedCount
  const epid = ctx.epidFor(request.base?.kmsId ?? '')
  const payload = buildKmsResponse(
    request,
    {
      epid,
      hwid: ctx.hwid,
      currentCount: reportedCount,
      activationInterval: ctx.activationInterval,
      renewalInterval: ctx.renewalInterval,
    },
    ctx.random,
    override.corrupt,
  )
  return { request, hresult: 0, reason: null, payload, counter, reportedCount, epid }
}
