// Context tracking: which transfer syntax each accepted presentation context has, from the
// BIND / ALTER_CONTEXT offers and their answers in order, with what was odd about them.

import type { TransferSyntax } from '../wire/ndr.js'
import {
  type BindAckPdu,
  CONTEXT_RESULT,
  CONTEXT_RESULT_NAMES,
  KMS_INTERFACE_UUID,
  KMS_INTERFACE_VERSION,
  NDR32_UUID,
  NDR64_UUID,
  REJECT_REASON_NAMES,
  transferSyntaxName,
} from '../wire/rpc.js'
import type { Calls } from './calls.js'
import { otherVersionServed } from './findings.js'

/** Transfer syntax per accepted context id, from BIND/ALTER_CONTEXT and their answers in order. */
export function trackContexts(side: Calls, findings: string[]): Map<number, TransferSyntax> {
  const accepted = new Map<number, TransferSyntax>()
  for (const [n, { pdu: offer }] of side.binds.entries()) {
    const label = `${offer.kind === 'bind' ? 'BIND' : 'ALTER_CONTEXT'} (call id ${offer.header.callId})`
    for (const ctx of offer.contexts) {
      const a = ctx.abstractSyntax
      if (
        a.uuid !== KMS_INTERFACE_UUID ||
        a.versionMajor !== KMS_INTERFACE_VERSION.major ||
        a.versionMinor !== KMS_INTERFACE_VERSION.minor
      )
        findings.push(`${label} offers interface ${a.uuid} v${a.versionMajor}.${a.versionMinor}, not KMS`)
    }
    if (offer.declaredContextCount !== undefined && offer.declaredContextCount !== offer.contexts.length)
      findings.push(`${label} declares ${offer.declaredContextCount} contexts, ${offer.contexts.length} fit`)
    const answer = side.bindAnswers[n]?.pdu
    if (!answer) {
      findings.push(`${label} was never answered`)
      continue
    }
    if (answer.kind === 'bind_nak') {
      findings.push(`${label} refused: BIND_NAK reason ${answer.rejectReason}`)
      continue
    }
    const served = otherVersionServed(offer.header, label, 'a DCE-RPC 5 host answers it with BIND_NAK')
    if (served) findings.push(served)
    const wanted = offer.kind === 'bind' ? 'bind_ack' : 'alter_context_resp'
    if (answer.kind !== wanted) findings.push(`${label} answered by ${answer.kind}`)
    if (answer.results.length !== offer.contexts.length)
      findings.push(`${label}: ${offer.contexts.length} contexts offered, ${answer.results.length} results`)
    let usable = false
    answer.results.forEach((r, i) => {
      const ctx = offer.contexts[i]
      if (!ctx || r.result !== CONTEXT_RESULT.ACCEPTANCE) return
      const uuid = r.transferSyntax.uuid
      const syntax = uuid === NDR32_UUID ? 'ndr32' : uuid === NDR64_UUID ? 'ndr64' : null
      if (syntax) {
        accepted.set(ctx.contextId, syntax)
        usable = true
      } else findings.push(`${label}: context ${ctx.contextId} accepted with unknown transfer syntax ${uuid}`)
    })
    if (!usable) {
      const list = answer.results.map((r, i) => resultText(r, offer.contexts[i]?.transferSyntaxes[0]?.uuid))
      findings.push(`${label}: the host accepted no context (${list.join('; ') || 'no results'})`)
    }
  }
  for (const extra of side.bindAnswers.slice(side.binds.length))
    findings.push(`${extra.pdu.kind} (call id ${extra.pdu.header.callId}) answers no BIND`)
  return accepted
}

function resultText(r: BindAckPdu['results'][number], offered: string | undefined): string {
  const what = offered === undefined ? '' : `${transferSyntaxName(offered)}: `
  const reason =
    r.result === 0 || r.result === 3 ? '' : `, ${REJECT_REASON_NAMES[r.reason] ?? `reason ${r.reason}`}`
  return `${what}${CONTEXT_RESULT_NAMES[r.result] ?? `result ${r.result}`}${reason}`
}
