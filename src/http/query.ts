/** Query values of the HTTP API, parsed the same way for `kmslab history` and `kmslab status`. */
import { UsageError } from '../errors.js'
import { OFFICE2010_APP_ID, OFFICE2013_APP_ID, WINDOWS_APP_ID } from '../kms/counter.js'

const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

export const APPLICATION_IDS: Readonly<Record<string, string>> = {
  windows: WINDOWS_APP_ID,
  office2010: OFFICE2010_APP_ID,
  office2013: OFFICE2013_APP_ID,
}

const LABEL_OF = new Map(Object.entries(APPLICATION_IDS).map(([name, id]) => [id, name]))

/** The application's label: windows, office2010, office2013 (2013 and later share it), or its GUID. */
export function applicationLabel(appId: string): string {
  return LABEL_OF.get(appId) ?? LABEL_OF.get(appId.toLowerCase()) ?? appId.toLowerCase()
}

/** `windows`, `office2010`, `office2013` or an application GUID, to the GUID. */
export function parseApplication(text: string, what: string): string {
  const t = text.trim().toLowerCase()
  const id = APPLICATION_IDS[t] ?? (GUID.test(t) ? t : undefined)
  if (!id)
    throw new UsageError(
      `${what}: ${JSON.stringify(text)} is not windows, office2010, office2013 or an application GUID`,
      what,
    )
  return id
}

/**
 * A point in time: a duration back from now (`90m`, `12h`, `7d`, `2w`) or an ISO 8601 date or
 * time (`2026-01-31`, `2026-01-31T12:00:00Z`; a time without a zone is UTC).
 */
export function parseTimeBound(text: string, now: number, what: string): number {
  const t = text.trim()
  const rel = /^(\d+)\s*([smhdw])$/i.exec(t)
  if (rel) return now - Number(rel[1]) * UNIT_MS[rel[2].toLowerCase() as keyof typeof UNIT_MS]
  const iso = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/i.exec(t)
  if (iso) {
    const text = t.replace(' ', 'T')
    const ms = Date.parse(iso[1] || !t.includes(':') ? text : `${text}Z`)
    if (Number.isFinite(ms)) return ms
  }
  throw new UsageError(
    `${what}: ${JSON.stringify(text)} is neither a duration back from now (7d, 12h, 30m) nor an ISO 8601 time`,
    what,
  )
}

/** A whole number of rows, 1 or more. */
export function parseLimit(text: string, what: string): number {
  const t = text.trim()
  if (!/^\d{1,9}$/.test(t) || Number(t) < 1)
    throw new UsageError(`${what}: ${JSON.stringify(text)} is not a whole number of rows (1 or more)`, what)
  return Number(t)
}

export const HISTORY_FORMATS = ['csv', 'json', 'ndjson'] as const
export type HistoryFormat = (typeof HISTORY_FORMATS)[number]

export function parseHistoryFormat(text: string, what: string): HistoryFormat {
  if ((HISTORY_FORMATS as readonly string[]).includes(text)) return text as HistoryFormat
  throw new UsageError(`${what}: ${JSON.stringify(text)} is not one of ${HISTORY_FORMATS.join(', ')}`, what)
}

/** The wire's license status values 0..6, as the metric's label names them. */
export const LICENSE_STATUS_LABELS = [
  'unlicensed',
  'licensed',
  'initial_grace',
  'out_of_tolerance_grace',
  'non_genuine_grace',
  'notification',
  'extended_grace',
] as const

export const licenseStatusLabel = (status: number): string => LICENSE_STATUS_LABELS[status] ?? String(status)
