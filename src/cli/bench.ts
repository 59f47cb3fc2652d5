import { DEFAULT_PRODUCT, defaultCatalog, findProduct } from '../catalog/index.js'
import { UsageError } from '../errors.js'
import { type BenchProgress, type BenchReport, runBench } from '../load/bench.js'
import type { BenchBind } from '../load/connection.js'
import { hostPort } from '../wire/endpoint.js'
import { type CliIo, intOption, type OptionSpec, parseCliArgs, type Verb } from './args.js'
import { discoverBenchTargets } from './bench-discover.js'
import { formatHelp } from './help.js'

const LOAD = 'Load'
const SENT = 'What is sent'
const OUTPUT = 'Output'

const OPTIONS = {
  connections: {
    type: 'string',
    short: 'c',
    arg: 'N',
    section: LOAD,
    help:
      'concurrent connections, each with one request in flight (default 1);\n' +
      'with --new-connection: activations in progress at once',
  },
  requests: { type: 'string', short: 'n', arg: 'M', section: LOAD, help: 'activations to measure in total' },
  duration: {
    type: 'string',
    short: 'd',
    arg: 'S',
    section: LOAD,
    help: 'seconds to measure (default 10 when --requests is not given)',
  },
  rate: {
    type: 'string',
    arg: 'R',
    section: LOAD,
    help:
      "open loop: R activations/s spread over the connections; latency counts from each request's " +
      'scheduled time, so queueing is not hidden',
  },
  'new-connection': {
    type: 'boolean',
    section: LOAD,
    help: 'connect, bind, request and close for every activation (latency then counts from the connect)',
  },
  warmup: {
    type: 'string',
    arg: 'S',
    section: LOAD,
    help: 'seconds of load before measuring, not counted (default 1 with --duration, 0 with --requests)',
  },
  'dns-server': {
    type: 'string',
    arg: 'IP[:PORT]',
    section: LOAD,
    help:
      "DNS server for .DOMAIN: the SRV records and their targets' addresses all come from it " +
      "(default: the system's resolver)",
  },
  timeout: {
    type: 'string',
    arg: 'MS',
    section: LOAD,
    help: 'for a connect, a bind and each answer (default 5000)',
  },
  'busy-poll': {
    type: 'boolean',
    section: LOAD,
    help:
      "spin while requests are in flight instead of sleeping, so the bench's own wake-up latency " +
      'does not count against the host; takes a whole core, so use it only when one is free for ' +
      'the bench (1 connection)',
  },
  protocol: {
    type: 'string',
    arg: '4|5|6',
    section: SENT,
    help: "KMS protocol version (default: the product's, 6 for Windows 10/11)",
  },
  product: {
    type: 'string',
    arg: 'NAME',
    section: SENT,
    help: `catalogue product (default "${DEFAULT_PRODUCT}")`,
  },
  bind: {
    type: 'string',
    arg: 'ndr32|vlmcs',
    section: SENT,
    help:
      'ndr32 (default): one NDR32 context, which every host accepts;\n' +
      'vlmcs: NDR32 + NDR64 + BTFN contexts like vlmcs, requests then go on NDR64 when the host ' +
      'accepts it (no ALTER_CONTEXT is sent)',
  },
  json: {
    type: 'boolean',
    section: OUTPUT,
    help: 'the summary as one JSON object on stdout (nothing else there)',
  },
  quiet: { type: 'boolean', short: 'q', section: OUTPUT, help: 'no progress line' },
  help: { type: 'boolean', short: 'h', section: OUTPUT, help: 'this help' },
} satisfies OptionSpec

const HELP = formatHelp(
  {
    usage: 'kmslab bench HOST[:PORT] | .DOMAIN [options]',
    intro: `Drives a KMS host (kmslab, vlmcsd, a genuine one in a lab) with activations and measures how many
it answers per second, how fast, and what went wrong. Every answer is verified with every check
a client makes (HMAC, hash, IV rule, echoes, ePID); failures are counted by kind, never dropped.
Each activation carries a new client machine id, so a host's counter sees a new client each time.
.DOMAIN spreads the connections over the hosts of the _vlmcs._tcp.DOMAIN SRV record as clients do:
each connection draws its own RFC 2782 order (priority, then weight) and moves to its next host when
one refuses or closes; the summary (and --json "hosts") says how many connections each host got.`,
    sectionNotes: {
      [OUTPUT]:
        'a live progress line on stderr when it is a terminal; at the end activations/s, latency ' +
        'p50/p90/p99/max and errors by kind',
    },
    notes: 'Connections are opened and bound before the clock starts (except with --new-connection).',
    exitCodes: [
      [0, 'the run completed and at least one answer verified (errors, if any, are in the summary)'],
      [1, 'no answer verified (host down, every request failed)'],
      [64, 'usage error'],
    ],
  },
  OPTIONS,
)

function positive(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined
  const n = Number(text)
  if (text.trim() === '' || !Number.isFinite(n) || n <= 0)
    throw new UsageError(`kmslab bench: --${name} takes a positive number, got ${JSON.stringify(text)}`, name)
  return n
}

function parseTarget(text: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(text) ?? /^([^:]+)(?::(\d+))?$/.exec(text)
  const port = m?.[2] === undefined ? 1688 : Number(m[2])
  if (!m?.[1] || !Number.isInteger(port) || port < 1 || port > 65535)
    throw new UsageError(`kmslab bench: target must be HOST[:PORT], got ${JSON.stringify(text)}`)
  return { host: m[1], port }
}

const fmt = (n: number, digits = 0) =>
  n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })

/** The human summary. */
export function formatBenchReport(r: BenchReport): string {
  const mode = r.newConnection ? 'new connection per activation' : 'persistent connections'
  const loop = r.loop === 'open' ? `open loop at ${fmt(r.rate ?? 0)}/s` : 'closed loop'
  const l = r.latencyMs
  const lines = [
    `kmslab bench ${r.target}: V${r.protocol} ${r.product}, bind ${r.bind}`,
    `  ${r.connections} connection${r.connections === 1 ? '' : 's'}, ${mode}, ${loop}${r.busyPoll ? ', busy polling' : ''}, ${fmt(r.durationS, 2)} s measured${r.interrupted ? ' (interrupted)' : ''}`,
    `  activations   ${fmt(r.activations)} verified of ${fmt(r.requests)} requests: ${fmt(r.activationsPerSec)}/s`,
    `  latency ms    p50 ${fmt(l.p50, 3)}  p90 ${fmt(l.p90, 3)}  p99 ${fmt(l.p99, 3)}  max ${fmt(l.max, 3)}`,
  ]
  if (r.sendLagMs)
    lines.push(`  send lag ms   p99 ${fmt(r.sendLagMs.p99, 3)}  max ${fmt(r.sendLagMs.max, 3)}`)
  if (r.belowThreshold > 0)
    lines.push(`  below the client's threshold: ${fmt(r.belowThreshold)} answers (it would not activate yet)`)
  const kinds = (o: Record<string, number>) =>
    Object.entries(o)
      .map(([k, n]) => `${k} ${fmt(n)}`)
      .join(', ')
  lines.push(`  errors        ${r.errors === 0 ? 'none' : `${fmt(r.errors)}: ${kinds(r.errorsByKind)}`}`)
  if (Object.keys(r.warningsByKind).length > 0) lines.push(`  warnings      ${kinds(r.warningsByKind)}`)
  if (Object.keys(r.warmupErrorsByKind).length > 0)
    lines.push(`  before the measurement: ${kinds(r.warmupErrorsByKind)}`)
  for (const h of r.hosts ?? [])
    lines.push(
      `  host          ${hostPort(h.host, h.port)} (${h.address}): ${fmt(h.connections)} connection${h.connections === 1 ? '' : 's'}`,
    )
  lines.push(`  bench CPU     ${fmt(r.benchCpuS, 2)} s`)
  return `${lines.join('\n')}\n`
}

async function runBenchVerb(argv: string[], io: CliIo): Promise<number> {
  const { values: v, positionals } = parseCliArgs('bench', argv, OPTIONS)
  if (positionals.length !== 1)
    throw new UsageError('kmslab bench: give one target, HOST[:PORT] (see kmslab bench --help)')
  const domain = positionals[0].startsWith('.') ? positionals[0].slice(1).replace(/\.$/, '') : null
  if (domain !== null && !/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(domain))
    throw new UsageError(`kmslab bench: not a DNS domain: ${JSON.stringify(positionals[0])}`)
  if (v['dns-server'] && domain === null)
    throw new UsageError('kmslab bench: --dns-server needs a .DOMAIN target')
  const target = domain === null ? parseTarget(positionals[0]) : { host: '', port: 1688 }
  const connections = intOption('bench', 'connections', v.connections, 1, 100_000) ?? 1
  const requests = intOption('bench', 'requests', v.requests, 1, 1_000_000_000)
  const durationS = positive('duration', v.duration)
  if (requests !== undefined && durationS !== undefined)
    throw new UsageError('kmslab bench: give --requests or --duration, not both')
  const rate = positive('rate', v.rate)
  const warmupText = v.warmup
  const warmupS =
    warmupText === undefined
      ? requests === undefined
        ? 1
        : 0
      : warmupText.trim() === '0'
        ? 0
        : (positive('warmup', warmupText) as number)
  const timeoutMs = intOption('bench', 'timeout', v.timeout, 1, 600_000) ?? 5000
  const bind = (v.bind ?? 'ndr32') as BenchBind
  if (bind !== 'ndr32' && bind !== 'vlmcs')
    throw new UsageError('kmslab bench: --bind is ndr32 or vlmcs', 'bind')
  let product: ReturnType<typeof findProduct>
  try {
    product = findProduct(defaultCatalog(), v.product ?? DEFAULT_PRODUCT)
  } catch (err) {
    throw new UsageError(`kmslab bench: --product: ${(err as Error).message}`, 'product')
  }
  const protocol = intOption('bench', 'protocol', v.protocol, 4, 6) ?? product.protocol

  const showProgress = io.stderrIsTty && !v.quiet
  const onProgress = showProgress
    ? (p: BenchProgress) => {
        const line = `${p.phase} ${p.elapsedS.toFixed(0)} s: ${fmt(p.activations)} verified, ${fmt(p.currentRate)}/s, ${fmt(p.errors)} errors`
        io.stderr.write(`\r\x1b[K${line}`)
      }
    : undefined
  const abort = new AbortController()
  const onSignal = () => abort.abort()
  process.once('SIGINT', onSignal)
  const discovered = domain === null ? null : await discoverBenchTargets(domain, v['dns-server'], timeoutMs)
  let report: BenchReport
  try {
    report = await runBench({
      host: discovered?.name ?? target.host,
      port: target.port,
      targets: discovered?.targets,
      connections,
      requests,
      durationS: requests === undefined ? (durationS ?? 10) : undefined,
      rate,
      newConnection: v['new-connection'] ?? false,
      protocol,
      product,
      bind,
      warmupS,
      timeoutMs,
      busyPoll: v['busy-poll'] ?? false,
      onProgress,
      signal: abort.signal,
    })
  } finally {
    process.off('SIGINT', onSignal)
    if (showProgress) io.stderr.write('\r\x1b[K')
  }
  if (v.json) io.stdout.write(`${JSON.stringify(report)}\n`)
  else io.stdout.write(formatBenchReport(report))
  return report.activations > 0 ? 0 : 1
}

export const benchVerb: Verb = {
  name: 'bench',
  summary: 'measure a KMS host: verified activations per second, latency, errors',
  help: HELP,
  options: OPTIONS,
  run: runBenchVerb,
}
