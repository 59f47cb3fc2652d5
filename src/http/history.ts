/**
 * The history export: one object per request with the fields of a KMS host's event 12290 and
 * more, written as CSV (a header row of the JSON keys), one JSON array, or NDJSON. Rows are
 * written as the store yields them, waiting whenever the peer reads slower than we write.
 */
import type { Writable } from 'node:stream'
import type { Catalog } from '../catalog/types.js'
import type { HistoryRow } from '../kms/history.js'
import { applicationLabel, type HistoryFormat, licenseStatusLabel } from './query.js'

/** One exported row; the CSV header names these keys in this order. */
export interface HistoryExportRow {
  /** ISO 8601, UTC */
  time: string
  clientAddress: string
  workstation: string
  cmid: string
  previousCmid: string
  application: string
  appId: string
  skuId: string
  product: string | null
  kmsId: string
  protocol: string
  licenseStatus: number
  licenseStatusName: string
  /** 0x-prefixed, 8 hex digits: 0x00000000 for an answer */
  hresult: string
  requiredCount: number
  reportedCount: number | null
  activated: boolean
  /** the client's clock, ISO 8601 UTC */
  clientTime: string | null
  graceMinutes: number | null
  vm: boolean
  epid: string | null
  rules: string[]
}

const iso = (ms: number | null) => {
  if (ms === null) return null
  const d = new Date(ms)
  return Number.isNaN(d.getTime()) ? null : d.toISOString()
}

export function exportRow(r: HistoryRow, catalog: Catalog): HistoryExportRow {
  return {
    time: iso(r.time) ?? '',
    clientAddress: r.clientAddress,
    workstation: r.workstation,
    cmid: r.cmid,
    previousCmid: r.previousCmid,
    application: applicationLabel(r.appId),
    appId: r.appId,
    skuId: r.skuId,
    product: catalog.skuName(r.skuId) ?? catalog.kmsName(r.kmsId) ?? null,
    kmsId: r.kmsId,
    protocol: r.protocol,
    licenseStatus: r.licenseStatus,
    licenseStatusName: licenseStatusLabel(r.licenseStatus),
    hresult: `0x${(r.hresult >>> 0).toString(16).toUpperCase().padStart(8, '0')}`,
    requiredCount: r.requiredCount,
    reportedCount: r.reportedCount,
    activated: r.hresult === 0 && (r.reportedCount ?? 0) >= r.requiredCount,
    clientTime: iso(r.clientTime),
    graceMinutes: r.graceMinutes,
    vm: r.vm,
    epid: r.epid,
    rules: r.rules,
  }
}

export const EXPORT_KEYS: readonly (keyof HistoryExportRow)[] = [
  'time',
  'clientAddress',
  'workstation',
  'cmid',
  'previousCmid',
  'application',
  'appId',
  'skuId',
  'product',
  'kmsId',
  'protocol',
  'licenseStatus',
  'licenseStatusName',
  'hresult',
  'requiredCount',
  'reportedCount',
  'activated',
  'clientTime',
  'graceMinutes',
  'vm',
  'epid',
  'rules',
]

/** RFC 4180: quoted when it holds a comma, a quote or a line break; null is an empty field. */
function csvField(v: unknown): string {
  const s = v === null || v === undefined ? '' : Array.isArray(v) ? v.join(' ') : String(v)
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s
}

export const csvHeader = () => `${EXPORT_KEYS.join(',')}\r\n`
export const csvLine = (row: HistoryExportRow) => `${EXPORT_KEYS.map((k) => csvField(row[k])).join(',')}\r\n`

export const HISTORY_CONTENT_TYPES: Record<HistoryFormat, string> = {
  csv: 'text/csv; charset=utf-8',
  json: 'application/json; charset=utf-8',
  ndjson: 'application/x-ndjson; charset=utf-8',
}

/** Rows per write: big enough that the syscalls stay few, small enough to keep memory flat. */
const CHUNK_ROWS = 256

/**
 * Writes `rows` to `out` in `format`; resolves when done or when `out` closed early (then it
 * stops pulling rows). Does not end `out`.
 */
export async function writeHistory(
  out: Writable,
  rows: Iterable<HistoryRow>,
  format: HistoryFormat,
  catalog: Catalog,
): Promise<void> {
  let chunk = format === 'csv' ? csvHeader() : format === 'json' ? '[' : ''
  let n = 0
  let first = true
  for (const row of rows) {
    const e = exportRow(row, catalog)
    if (format === 'csv') chunk += csvLine(e)
    else if (format === 'ndjson') chunk += `${JSON.stringify(e)}\n`
    else {
      chunk += `${first ? '\n' : ',\n'}${JSON.stringify(e)}`
      first = false
    }
    if (++n % CHUNK_ROWS === 0) {
      if (!(await send(out, chunk))) return
      chunk = ''
    }
  }
  if (format === 'json') chunk += first ? ']\n' : '\n]\n'
  await send(out, chunk)
}

/** Writes, waiting for 'drain' when the buffer is full; false when the peer went away. */
function send(out: Writable, text: string): Promise<boolean> {
  if (out.destroyed || out.writableEnded) return Promise.resolve(false)
  if (text === '' || out.write(text)) return Promise.resolve(true)
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      out.off('drain', onDrain)
      out.off('close', onClose)
      resolve(ok)
    }
    const onDrain = () => done(true)
    const onClose = () => done(false)
    out.on('drain', onDrain)
    out.on('close', onClose)
  })
}
