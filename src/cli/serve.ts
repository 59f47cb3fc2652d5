import { type KmsHost, startHost } from '../api/host.js'
import { type HostOptions, parseListen } from '../api/options.js'
import { removePidFile, writePidFile } from '../api/pid-file.js'
import { loadRulesFile } from '../api/rules.js'
import { ConfigError, UsageError } from '../errors.js'
import { HttpListenError } from '../http/errors.js'
import { hresultHex } from '../kms/hresult.js'
import { ListenError } from '../server/errors.js'
import type { ListenAddress } from '../server/server.js'
import { defaultStatePath } from '../store/open.js'
import { type CliIo, intOption, type OptionSpec, parseCliArgs, type Verb } from './args.js'
import { formatHelp } from './help.js'
import { banner } from './serve-banner.js'
import { parseConfigText, readConfigFile } from './serve-config.js'
import { checkListenHosts, untilStopped } from './serve-lifetime.js'
import { type LogFormat, ServeLog } from './serve-log.js'
import { HTTP_OPTIONS, httpOption, statusSignalHandler } from './serve-ops.js'

const LISTEN = 'Listening and RPC'
const KMS = 'KMS behaviour'
const STATE = 'State'
const OUTPUT = 'Output'

const OPTIONS = {
  listen: {
    type: 'string',
    multiple: true,
    arg: 'HOST:PORT',
    section: LISTEN,
    help:
      'address to listen on, repeatable; IPv6 in brackets ([::1]:1688)\n' +
      '(default 127.0.0.1:1688: loopback unless told otherwise)',
  },
  allow: {
    type: 'string',
    multiple: true,
    arg: 'CIDR',
    section: LISTEN,
    help: 'only these networks may connect, repeatable; others are closed without a byte sent',
  },
  'no-ndr64': {
    type: 'boolean',
    section: LISTEN,
    help: 'accept NDR32 only (like a Windows 7 / Server 2008 R2 host)',
  },
  'no-btfn': {
    type: 'boolean',
    section: LISTEN,
    help: 'no bind-time feature negotiation (a pre-Windows 8 runtime: NDR64 off too)',
  },
  'idle-timeout': {
    type: 'string',
    arg: 'SECONDS',
    section: LISTEN,
    help: 'close a connection silent this long (default 30)',
  },
  'connection-deadline': {
    type: 'string',
    arg: 'SEC',
    section: LISTEN,
    help: 'close any connection this old (default 600)',
  },
  'max-connections': {
    type: 'string',
    arg: 'N',
    section: LISTEN,
    help: 'connections over this are closed at once and counted (default 16384)',
  },
  disconnect: {
    type: 'boolean',
    section: LISTEN,
    help: 'close each connection after its first answer (like vlmcsd -d)',
  },
  'busy-poll': {
    type: 'string',
    arg: 'MICROSECONDS',
    section: LISTEN,
    help:
      "after each read, keep polling up to this long before sleeping, so a busy client's next " +
      'request needs no wake-up; the spin costs at most a tenth of the host CPU, and only while ' +
      'it pays off (default 100; 0 turns it off)',
  },
  counter: {
    type: 'string',
    arg: 'MODE',
    section: KMS,
    help:
      'real (default): genuine counting from an empty pool, so the first 24 Windows clients get ' +
      '0xC004F038 on their side;\n' +
      "charged: report max(pool, 2 x required), capped at 50: everyone activates at once (vlmcsd's default);\n" +
      'fixed:N: report N exactly (a test override; above 50, which no genuine host reports, warned about)',
  },
  strict: {
    type: 'boolean',
    section: KMS,
    help:
      'refuse unknown or retail KMS ids (0xC004F042) and client clocks more than 4 hours off ' +
      '(0xC004F06C), like a genuine host',
  },
  'activation-interval': {
    type: 'string',
    arg: 'T',
    section: KMS,
    help: 'minutes, or with m/h/d/w (default 120 = 2h)',
  },
  'renewal-interval': {
    type: 'string',
    arg: 'T',
    section: KMS,
    help: 'minutes, or with m/h/d/w (default 10080 = 7d)',
  },
  epid: {
    type: 'string',
    multiple: true,
    arg: 'FAMILY=EPID',
    section: KMS,
    help:
      'override the ePID of a family (windows, office2010, office2013, office2016, office2019, ' +
      'office2021, office2024), repeatable; must have the ePID format',
  },
  'host-build': {
    type: 'string',
    arg: 'N',
    section: KMS,
    help: 'Windows build the ePIDs name (chosen at first start otherwise: one that fits the RPC flags and every CSVLK served)',
  },
  lcid: {
    type: 'string',
    arg: 'N',
    section: KMS,
    help: 'language id the ePIDs name (chosen at first start otherwise)',
  },
  hwid: {
    type: 'string',
    arg: 'HEX',
    section: KMS,
    help: 'the 16-hex-digit hardware id of V6 answers (random at first start)',
  },
  products: {
    type: 'string',
    arg: 'FILE',
    section: KMS,
    help: 'a products file merged over the built-in catalogue',
  },
  rules: {
    type: 'string',
    arg: 'FILE',
    section: KMS,
    help: 'fault-injection rules (JSON array); SIGHUP re-reads the file',
  },
  seed: {
    type: 'string',
    arg: 'VALUE',
    section: KMS,
    help: 'deterministic mode: every drawn value comes from this seed',
  },
  state: {
    type: 'string',
    arg: 'PATH|memory',
    section: STATE,
    help:
      'SQLite state file (default $XDG_STATE_HOME/kmslab/state.db or ~/.local/state/kmslab/state.db); ' +
      'memory keeps nothing',
  },
  'history-days': {
    type: 'string',
    arg: 'N',
    section: STATE,
    help: 'keep request history this long (default 90)',
  },
  capture: {
    type: 'string',
    arg: 'FILE.pcap',
    section: STATE,
    help: 'record every connection as a classic pcap',
  },
  'pid-file': {
    type: 'string',
    arg: 'PATH',
    section: STATE,
    help:
      'write the id of the listening process here once it listens; removed at a clean stop ' +
      '(a stale file left by a crash is replaced)',
  },
  ...HTTP_OPTIONS,
  'log-format': {
    type: 'string',
    arg: 'text|json',
    section: OUTPUT,
    help: 'one line per activation, readable or JSON (default text)',
  },
  quiet: { type: 'boolean', short: 'q', section: OUTPUT, help: 'only the banner, warnings and errors' },
  verbose: {
    type: 'boolean',
    short: 'v',
    section: OUTPUT,
    help: 'dump every field of each request and answer',
  },
  config: {
    type: 'string',
    arg: 'FILE.json',
    section: OUTPUT,
    help:
      'settings as JSON, keys named like the flags ("listen": [...], "no-ndr64": true, ' +
      '"counter": "charged"); flags win',
  },
  help: { type: 'boolean', short: 'h', section: OUTPUT, help: 'this help' },
} satisfies OptionSpec

const HELP = formatHelp(
  {
    usage: 'kmslab serve [options]',
    intro:
      'Runs a KMS host (DCE-RPC over TCP, KMS protocol V4, V5 and V6) with an activation-threshold\n' +
      "counter that behaves like a genuine host's.",
    exitCodes: [
      [0, 'stopped by SIGINT/SIGTERM (SIGUSR1 logs the status report, SIGHUP re-reads --rules)'],
      [64, 'usage or configuration-file error'],
      [
        78,
        'unusable state (read-only or corrupt state file, address in use, a --pid-file that cannot be written)',
      ],
    ],
  },
  OPTIONS,
)

export type Values = ReturnType<typeof parseCliArgs<typeof OPTIONS>>['values']

/** The text of a --config file as flag values; throws UsageError naming the file and the key. */
export function parseServeConfig(text: string, path: string): Values {
  return parseConfigText(text, path, OPTIONS) as Values
}

function seconds(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined
  const n = Number(text)
  if (!Number.isFinite(n) || n <= 0)
    throw new UsageError(`kmslab serve: --${name} takes a positive number of seconds`, name)
  return Math.round(n * 1000)
}

export function hostOptionsFromFlags(v: Values, env: NodeJS.ProcessEnv = process.env): HostOptions {
  const epid: Record<string, string> = {}
  for (const e of v.epid ?? []) {
    const eq = e.indexOf('=')
    if (eq <= 0)
      throw new UsageError(`kmslab serve: --epid takes FAMILY=EPID, got ${JSON.stringify(e)}`, 'epid')
    epid[e.slice(0, eq).toLowerCase()] = e.slice(eq + 1)
  }
  const logFormat = v['log-format'] ?? 'text'
  if (logFormat !== 'text' && logFormat !== 'json')
    throw new UsageError('kmslab serve: --log-format is text or json', 'log-format')
  return {
    listen: (v.listen ?? ['127.0.0.1:1688']).map((l) => parseListen(l, 1688)),
    state: v.state ?? defaultStatePath(),
    counter: v.counter,
    ndr64: !v['no-ndr64'],
    btfn: !v['no-btfn'],
    strict: v.strict ?? false,
    epid,
    hostBuild: intOption('serve', 'host-build', v['host-build'], 1, 999999),
    lcid: intOption('serve', 'lcid', v.lcid, 1, 65535),
    hwid: v.hwid,
    activationInterval: v['activation-interval'],
    renewalInterval: v['renewal-interval'],
    idleTimeoutMs: seconds('idle-timeout', v['idle-timeout']),
    busyPollMicros: intOption('serve', 'busy-poll', v['busy-poll'], 0, 100_000),
    connectionDeadlineMs: seconds('connection-deadline', v['connection-deadline']),
    maxConnections: intOption('serve', 'max-connections', v['max-connections'], 1, 1_000_000),
    allow: v.allow,
    historyDays: intOption('serve', 'history-days', v['history-days'], 1, 36500),
    capture: v.capture,
    products: v.products,
    seed: v.seed,
    disconnectAfterAnswer: v.disconnect ?? false,
    rules: v.rules ? loadRulesFile(v.rules).map((r) => r.rule) : undefined,
    http: httpOption(v, env),
  }
}

async function runServe(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCliArgs('serve', argv, OPTIONS)
  if (positionals.length > 0)
    throw new UsageError(`kmslab serve: unexpected argument ${JSON.stringify(positionals[0])}`)
  const merged = values.config ? { ...(readConfigFile(values.config, OPTIONS) as Values), ...values } : values
  const options = hostOptionsFromFlags(merged)
  await checkListenHosts(options.listen as ListenAddress[], merged.listen ?? [])
  const log = new ServeLog(
    io.stdout,
    io.stderr,
    (merged['log-format'] ?? 'text') as LogFormat,
    merged.quiet ? 'quiet' : merged.verbose ? 'verbose' : 'normal',
  )
  // A log reader that goes away (a closed pipe) must not take the host down with it.
  for (const stream of [io.stdout, io.stderr]) stream.on('error', () => {})
  let host: KmsHost
  try {
    host = await startHost(options)
  } catch (err) {
    if (err instanceof ListenError || err instanceof HttpListenError)
      throw new ConfigError(`kmslab serve: ${(err as Error).message}`)
    throw err
  }
  const pidFile = merged['pid-file']
  const dropPidFile = () => pidFile && removePidFile(pidFile)
  if (pidFile) {
    try {
      writePidFile(pidFile)
    } catch (err) {
      await host.close()
      throw err
    }
    process.once('exit', dropPidFile)
  }
  banner(host, log, options)
  // --quiet drops activation lines: no listener, so the host does not build them at all.
  if (log.level !== 'quiet') host.events.on('activation', (r) => log.activation(host, r))
  host.events.on('connection', (c) => {
    if (c.type === 'close' && c.protocolError) log.warn('protocol', `${c.client}: ${c.reason}`, c)
    else if (log.level === 'verbose')
      log.info('connection', `${c.type} ${c.client}${c.reason ? `: ${c.reason}` : ''}`, c)
  })
  host.events.on('protocol', (p) => log.warn('protocol', `${p.client}: ${p.reason}`, p))
  host.events.on('refused', (r) => log.warn('refused', `${r.client}: connection refused (${r.reason})`, r))
  host.events.on('fault', (f) =>
    log.warn('fault', `${f.client}: FAULT ${hresultHex(f.status)} for call ${f.callId}: ${f.reason}`, f),
  )
  host.events.on('store-error', (e) =>
    log.error('store', `${e.message}: the client was refused, nothing was answered`),
  )

  const rulesFile = merged.rules
  const onHup = () => {
    if (!rulesFile) return
    try {
      host.rules.set(loadRulesFile(rulesFile).map((r) => r.rule))
      log.always('rules', `rules re-read from ${rulesFile}`)
    } catch (err) {
      log.error('rules', `${(err as Error).message}; the old rules stay`)
    }
  }
  process.on('SIGHUP', onHup)
  const onUsr1 = statusSignalHandler(host, log)
  process.on('SIGUSR1', onUsr1)
  const reason = await untilStopped()
  log.always('stopping', `${reason}: stopping`, { reason })
  process.off('SIGHUP', onHup)
  process.off('SIGUSR1', onUsr1)
  const forced = setTimeout(() => process.exit(0), 2000)
  forced.unref()
  await host.close()
  dropPidFile()
  log.always('stopped', 'stopped')
  return 0
}

export const serveVerb: Verb = {
  name: 'serve',
  summary: 'run a KMS host',
  help: HELP,
  options: OPTIONS,
  run: runServe,
}
