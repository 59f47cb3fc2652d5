import { NULL_GUID } from '../wire/bytes.js'
import type { TransferSyntax } from '../wire/ndr.js'
import {
  type BindPdu,
  btfnBitmask,
  CONTEXT_RESULT,
  type ContextResult,
  isBtfnSyntax,
  KMS_INTERFACE_UUID,
  NDR32_UUID,
  NDR64_UUID,
  type PresentationContext,
  PTYPE,
  REJECT_REASON,
} from '../wire/rpc.js'

export interface BindPolicy {
  ndr64: boolean
  btfn: boolean
}

/** Bind-time features this host supports (MS-RPCE: security context multiplexing, keep on orphan). */
const SUPPORTED_BTFN_BITS = 0x03
/** More presentation contexts than any client needs; the rest are answered "local limit exceeded". */
export const MAX_CONTEXTS = 64

export interface ContextDecision {
  results: ContextResult[]
  /** Context ids this PDU made usable, with their syntax. */
  accepted: Map<number, TransferSyntax>
}

const rejected = (reason: number): ContextResult => ({
  result: CONTEXT_RESULT.PROVIDER_REJECTION,
  reason,
  transferSyntax: { uuid: NULL_GUID, version: 0 },
})

function offersKms(ctx: PresentationContext): boolean {
  const a = ctx.abstractSyntax
  return a.uuid === KMS_INTERFACE_UUID && a.versionMajor === 1 && a.versionMinor === 0
}

function offers(ctx: PresentationContext, syntax: 'ndr32' | 'ndr64' | 'btfn'): boolean {
  return ctx.transferSyntaxes.some((s) =>
    syntax === 'ndr64'
      ? s.uuid === NDR64_UUID && s.version === 1
      : syntax === 'ndr32'
        ? s.uuid === NDR32_UUID && s.version === 2
        : isBtfnSyntax(s.uuid) && s.version === 1,
  )
}

/**
 * One result per presentation context of a BIND or ALTER_CONTEXT (§1.6): exactly one transfer
 * syntax is accepted, NDR64 when offered and enabled, else NDR32; BTFN is acknowledged with the
 * supported subset of the requested bits. A host without BTFN is a pre-Windows 8 RPC runtime,
 * which never had NDR64 either, so `btfn: false` turns NDR64 off too (vlmcs flags NDR64 without
 * BTFN).
 */
export function decideContexts(
  contexts: PresentationContext[],
  policy: BindPolicy,
  /** Whether the connection has room for this context id (answered "local limit exceeded" if not). */
  canAccept: (contextId: number) => boolean = () => true,
): ContextDecision {
  const ndr64 = policy.ndr64 && policy.btfn
  const usable = contexts.slice(0, MAX_CONTEXTS)
  const chosen: TransferSyntax =
    ndr64 && usable.some((c) => offersKms(c) && offers(c, 'ndr64')) ? 'ndr64' : 'ndr32'
  const accepted = new Map<number, TransferSyntax>()
  const results = contexts.map((ctx, index): ContextResult => {
    if (index >= MAX_CONTEXTS) return rejected(REJECT_REASON.LOCAL_LIMIT_EXCEEDED)
    if (!offersKms(ctx)) return rejected(REJECT_REASON.ABSTRACT_SYNTAX_NOT_SUPPORTED)
    if (offers(ctx, chosen) && accepted.size === 0) {
      if (!canAccept(ctx.contextId)) return rejected(REJECT_REASON.LOCAL_LIMIT_EXCEEDED)
      accepted.set(ctx.contextId, chosen)
      return {
        result: CONTEXT_RESULT.ACCEPTANCE,
        reason: 0,
        transferSyntax:
          chosen === 'ndr64' ? { uuid: NDR64_UUID, version: 1 } : { uuid: NDR32_UUID, version: 2 },
      }
    }
    if (offers(ctx, 'btfn') && policy.btfn) {
      const bits = btfnBitmask(ctx.transferSyntaxes.find((s) => isBtfnSyntax(s.uuid))!.uuid)
      return {
        result: CONTEXT_RESULT.NEGOTIATE_ACK,
        reason: bits & SUPPORTED_BTFN_BITS,
        transferSyntax: { uuid: NULL_GUID, version: 0 },
      }
    }
    return rejected(REJECT_REASON.TRANSFER_SYNTAXES_NOT_SUPPORTED)
  })
  return { results, accepted }
}

/**
 * What is odd about a BIND or ALTER_CONTEXT the host still answered, for the log (null when
 * nothing is): more items than fit the fragment or than the host considers, or nothing usable.
 */
export function bindAnomalies(pdu: BindPdu, declared: number, acceptedCount: number): string | null {
  const what = pdu.header.ptype === PTYPE.BIND ? 'BIND' : 'ALTER_CONTEXT'
  const parts: string[] = []
  if (declared > pdu.contexts.length) {
    parts.push(`declares ${declared} presentation contexts, ${pdu.contexts.length} fit the fragment`)
  }
  if (pdu.contexts.length > MAX_CONTEXTS) {
    parts.push(`${pdu.contexts.length} presentation contexts, those past ${MAX_CONTEXTS} rejected`)
  }
  if (acceptedCount === 0) {
    const foreign = pdu.contexts.find((c) => !offersKms(c))
    parts.push(
      foreign && !pdu.contexts.some(offersKms)
        ? `for another interface (${foreign.abstractSyntax.uuid} v${foreign.abstractSyntax.versionMajor}.${foreign.abstractSyntax.versionMinor}), rejected`
        : 'no presentation context accepted',
    )
  }
  return parts.length > 0 ? `${what} ${parts.join('; ')}` : null
}
