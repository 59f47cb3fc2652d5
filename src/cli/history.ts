import type { Writable } from 'node:stream'
import { defaultCatalog } from '../catalog/index.js'
import { UsageError } from '../errors.js'
import { exportRow, type HistoryExportRow, writeHistory } from '../http/history.js'
import { parseApplication, parseHistoryFormat, parseLimit, parseTimeBound } from '../http/query.js'
import type { HistoryFilter } from '../http/types.js'
import { openStateStoreReadOnly } from '../store/open.js'
import { type CliIo, type OptionSpec, parseCliArgs, type Verb } from './args.js'
import { formatHelp } from './help.js'
import { fetchFromHost, SOURCE_OPTIONS, sourceOf } from './ops-source.js'

const SELECT = 'Selection and output'

const OPTIONS = {
  ...SOURCE_OPTIONS,
  since: {
    type: 'string',
    arg: '7d|ISO',
    section: SELECT,
    help: 'requests from this time on: a duration back from now (30m, 12h, 7d, 2w) or an ISO 8601 date/time (UTC unless it says)',
  },
  until: { type: 'string', arg: '7d|ISO', section: SELECT, help: 'requests up to this time (same forms)' },
  application: {
    type: 'string',
    arg: 'APP',
    section: SELECT,
    help: 'only windows, office2010, office2013 (2013 and later) or an application GUID',
  },
  limit: {
    type: 'string',
    arg: 'N',
    section: SELECT,
    help: 'only the newest N of them (still oldest first)',
  },
  format: {
    type: 'string',
    arg: 'FORMAT',
    section: SELECT,
    help:
      'text (default: a line per request), csv (a header row of the JSON keys), json (one array) ' +
      'or ndjson (an object a line); times in ISO 8601 UTC',
  },
  help: { type: 'boolean', short: 'h', section: SELECT, help: 'this help' },
} satisfies OptionSpec

const HELP = formatHelp(
  {
    usage:
      'kmslab history [--state PATH | --url URL [--token TOKEN]] [--since 7d|ISO] [--until 7d|ISO]\n' +
      '                      [--application APP] [--limit N] [--format text|csv|json|ndjson]',
    intro:
      "The requests the host handled (kept as long as the host's history-days setting, 90 by\n" +
      "default), oldest first, with the fields of a KMS host's event 12290: HRESULT, minimum count needed, workstation, CMID, client\n" +
      'time, VM, license status, minutes to expiry, SKU; and time, client address, protocol,\n' +
      'reported count, ePID. Read a page at a time, so a long history streams.',
    exitCodes: [
      [0, 'written'],
      [1, 'the host could not be asked (not running, wrong token)'],
      [64, 'usage error'],
      [78, 'unusable state file'],
    ],
  },
  OPTIONS,
)

function textLine(r: HistoryExportRow): string {
  const what =
    r.hresult === '0x00000000'
      ? `count ${r.reportedCount}/${r.requiredCount} ${r.activated ? 'activates' : 'below threshold'}`
      : `refused ${r.hresult}`
  return `${r.time}  ${r.clientAddress}  ${r.workstation || '-'}  V${r.protocol}  ${r.product ?? r.skuId}  ${r.licenseStatusName}  ${what}\n`
}

/** Writes and waits while the reader is behind. */
function put(out: NodeJS.WritableStream, text: string | Uint8Array): Promise<void> {
  if (out.write(text)) return Promise.resolve()
  return new Promise((resolve) => out.once('drain', () => resolve()))
}

async function runHistory(argv: string[], io: CliIo): Promise<number> {
  const { values: v, positionals } = parseCliArgs('history', argv, OPTIONS)
  if (positionals.length > 0)
    throw new UsageError(`kmslab history: unexpected argument ${JSON.stringify(positionals[0])}`)
  const source = sourceOf('history', v, process.env)
  const format =
    v.format === undefined || v.format === 'text' ? 'text' : parseHistoryFormat(v.format, '--format')
  const now = Date.now()
  const filter: HistoryFilter = {}
  if (v.since !== undefined) filter.sinceMs = parseTimeBound(v.since, now, '--since')
  if (v.until !== undefined) filter.untilMs = parseTimeBound(v.until, now, '--until')
  if (v.limit !== undefined) filter.limit = parseLimit(v.limit, '--limit')
  if (v.application !== undefined) filter.appId = parseApplication(v.application, '--application')

  if (source.kind === 'url') {
    const q = new URLSearchParams({ format: format === 'text' ? 'ndjson' : format })
    // absolute times, so the host's clock and ours agree on what "7d" meant
    if (filter.sinceMs !== undefined) q.set('since', new Date(filter.sinceMs).toISOString())
    if (filter.untilMs !== undefined) q.set('until', new Date(filter.untilMs).toISOString())
    if (filter.limit !== undefined) q.set('limit', String(filter.limit))
    if (filter.appId !== undefined) q.set('application', filter.appId)
    const res = await fetchFromHost(source, `/api/history?${q}`, 600_000)
    if (!res.body) return 0
    let pending = ''
    const decoder = new TextDecoder()
    for await (const chunk of res.body) {
      if (format !== 'text') {
        await put(io.stdout, chunk)
        continue
      }
      pending += decoder.decode(chunk, { stream: true })
      const lines = pending.split('\n')
      pending = lines.pop() ?? ''
      const text = lines
        .filter((l) => l !== '')
        .map((l) => textLine(JSON.parse(l)))
        .join('')
      if (text) await put(io.stdout, text)
    }
    return 0
  }
  const store = openStateStoreReadOnly(source.path)
  try {
    const catalog = defaultCatalog()
    const rows = store.iterateHistory(filter)
    if (format !== 'text') {
      await writeHistory(io.stdout as Writable, rows, format, catalog)
      return 0
    }
    let chunk = ''
    for (const row of rows) {
      chunk += textLine(exportRow(row, catalog))
      if (chunk.length > 64 * 1024) {
        await put(io.stdout, chunk)
        chunk = ''
      }
    }
    if (chunk) await put(io.stdout, chunk)
    return 0
  } finally {
    store.close()
  }
}

export const historyVerb: Verb = {
  name: 'history',
  summary: "the host's request history: text, CSV, JSON or NDJSON",
  help: HELP,
  options: OPTIONS,
  run: runHistory,
}
