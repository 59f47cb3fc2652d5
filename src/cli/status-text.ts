/** The status report as text, worded like `slmgr /dlv` where slmgr has a line for it. */
import type { HostStatus, PoolStatus } from '../host/status.js'

const STATUS_LINES: [keyof HostStatus['requests']['byLicenseStatus'], string][] = [
  ['unlicensed', 'Unlicensed'],
  ['licensed', 'Licensed'],
  ['initialGrace', 'Initial grace period'],
  ['outOfToleranceGrace', 'License expired or Hardware out of tolerance'],
  ['nonGenuineGrace', 'Non-genuine grace period'],
  ['notification', 'Notification'],
  ['extendedGrace', 'Extended grace period'],
]

function poolLines(p: PoolStatus): string[] {
  const out = [
    `${p.name ?? 'Unknown application'} (${p.application}):`,
    `    Current count: ${p.currentCount}`,
  ]
  for (const t of p.thresholds) {
    const state = t.reached
      ? 'reached, its clients activate'
      : `${t.missing} more distinct machine${t.missing === 1 ? '' : 's'} needed`
    const next = t.newClientActivates
      ? `a new client is told ${t.newClientGets} and activates`
      : `a new client is told ${t.newClientGets} and gets 0xC004F038`
    out.push(`    ${t.clients} threshold ${t.required}: ${state}; ${next}`)
  }
  return out
}

export function formatStatus(s: HostStatus): string {
  const lines = [
    `kmslab ${s.version}${s.startedAt ? `, host started ${s.startedAt}` : ' (state file, no host asked)'}`,
  ]
  if (s.listening.length > 0) lines.push(`Listening on: ${s.listening.join(', ')}`)
  if (s.http) lines.push(`HTTP: ${s.http}`)
  const assumed = s.startedAt ? '' : " (assumed: a host's --counter is not stored in the state)"
  lines.push(`State: ${s.state}`, `Counter: ${s.counter}${assumed}`, '')
  for (const p of s.pools) lines.push(...poolLines(p))
  lines.push(
    '',
    `Total requests received: ${s.requests.total}`,
    `Failed requests received: ${s.requests.failed}`,
    ...STATUS_LINES.map(
      ([k, name]) => `Requests with License Status ${name}: ${s.requests.byLicenseStatus[k]}`,
    ),
  )
  if (s.requests.otherLicenseStatus > 0)
    lines.push(`Requests with another License Status: ${s.requests.otherLicenseStatus}`)
  lines.push('')
  if (s.identity) {
    lines.push('Host identity:')
    for (const [family, epid] of Object.entries(s.identity.epids))
      lines.push(`    ePID ${family.padEnd(10)} ${epid}`)
    lines.push(`    HWID ${s.identity.hwid} (host build ${s.identity.hostBuild}, LCID ${s.identity.lcid})`)
  }
  lines.push(`Clients seen (live pool entries): ${s.clientsSeen}`)
  lines.push(s.recent.length > 0 ? 'Newest requests:' : 'Newest requests: none yet')
  for (const r of s.recent) {
    const what =
      r.hresult === '0x00000000'
        ? `count ${r.reportedCount}/${r.requiredCount}${r.activated ? ', activates' : ', below threshold'}`
        : `refused ${r.hresult}`
    lines.push(
      `    ${r.time} ${r.workstation || '-'} ${r.clientAddress} V${r.protocol} ${r.product ?? r.skuId}: ${what}`,
    )
  }
  return `${lines.join('\n')}\n`
}
