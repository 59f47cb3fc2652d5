/**
 * The records a `--workers` worker sends its primary, as flat arrays: IPC messages are JSON, and
 * the field names of an object were most of each message's bytes and of its parsing time.
 * A count's appId, cmid and requiredCount are the row's own, so they travel once.
 */
import type { CounterMode } from '../kms/counter.js'
import type { Counted, RecordItem } from '../store/recorder.js'

export type WireItem = [
  time: number,
  clientAddress: string,
  workstation: string,
  cmid: string,
  previousCmid: string,
  appId: string,
  skuId: string,
  kmsId: string,
  requiredCount: number,
  reportedCount: number | null,
  hresult: number,
  protocol: string,
  vm: 0 | 1,
  licenseStatus: number,
  clientTime: number | null,
  graceMinutes: number | null,
  epid: string | null,
  rules: string[],
  /** null: record only, do not count */
  count: [now: number, mode: CounterMode, reportedOverride: number | null] | null,
]

/** A counted request's result: what the worker's answer needs (the rest is the item's). */
export type WireCounted = [lastSeen: number, poolSize: number, newClient: 0 | 1, reportedCount: number]

export function encodeItem(i: RecordItem): WireItem {
  const r = i.row
  const c = i.count
  return [
    r.time,
    r.clientAddress,
    r.workstation,
    r.cmid,
    r.previousCmid,
    r.appId,
    r.skuId,
    r.kmsId,
    r.requiredCount,
    r.reportedCount,
    r.hresult,
    r.protocol,
    r.vm ? 1 : 0,
    r.licenseStatus,
    r.clientTime,
    r.graceMinutes,
    r.epid,
    r.rules,
    c ? [c.now, c.mode, c.reportedOverride ?? null] : null,
  ]
}

export function decodeItem(w: WireItem): RecordItem {
  const row = {
    time: w[0],
    clientAddress: w[1],
    workstation: w[2],
    cmid: w[3],
    previousCmid: w[4],
    appId: w[5],
    skuId: w[6],
    kmsId: w[7],
    requiredCount: w[8],
    reportedCount: w[9],
    hresult: w[10],
    protocol: w[11],
    vm: w[12] === 1,
    licenseStatus: w[13],
    clientTime: w[14],
    graceMinutes: w[15],
    epid: w[16],
    rules: w[17],
  }
  const c = w[18]
  return {
    row,
    count: c && {
      appId: row.appId,
      cmid: row.cmid,
      requiredCount: row.requiredCount,
      now: c[0],
      mode: c[1],
      ...(c[2] === null ? {} : { reportedOverride: c[2] }),
    },
  }
}

export const encodeCounted = (c: Counted | null): WireCounted | null =>
  c && [c.outcome.lastSeen, c.outcome.poolSize, c.outcome.newClient ? 1 : 0, c.reportedCount]

export function decodeCounted(w: WireCounted | null, item: RecordItem): Counted | null {
  if (!w) return null
  const [lastSeen, poolSize, newClient, reportedCount] = w
  const { appId, cmid } = item.row
  return {
    outcome: { appId, cmid, lastSeen, poolSize, newClient: newClient === 1, reportedCount, removed: [] },
    reportedCount,
  }
}
