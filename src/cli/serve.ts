import { ConfigError, UsageError } from '../errors.js'
import { isWorker, joinPrimary, leavePrimary, parseWorkers, reportListening } from '../host/cluster.js'
import { forwardOperations } from '../host/cluster-ops.js'
import { type KmsHost, startHost } from '../host/host.js'
import { type HostOptions, parseListen } from '../host/options.js'
import { removePidFile, writePidFile } from '../host/pid-file.js'
import { loadRulesFile } from '../host/rules.js'
import { HttpListenError } from '../http/errors.js'
import { hresultHex } from '../kms/hresult.js'
import { ListenError } from '../server/errors.js'
import type { ListenAddress } from '../server/server.js'
import { defaultStatePath } from '../store/open.js'
import { type CliIo, intOption, parseCliArgs, type Verb } from './args.js'
import { formatHelp } from './help.js'
import { banner } from './serve-banner.js'
import { parseConfigText, readConfigFile } from './serve-config.js'
import { startPublishing } from './serve-dns.js'
import { checkListenHosts, untilStopped } from './serve-lifetime.js'
import { type LogFormat, ServeLog } from './serve-log.js'
import { httpOption, statusSignalHandler } from './serve-ops.js'
import { OPTIONS } from './serve-options.js'
import { runPrimary } from './serve-workers.js'

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
        'unusable state (read-only or corrupt state file, a state file another running host owns, ' +
          'a PostgreSQL database unreachable at start, address in use, a --pid-file that cannot be written)',
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
    stateWaitMs: seconds('state-wait', v['state-wait']),
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
  const workers = parseWorkers(merged.workers)
  const worker = isWorker()
  if (workers > 1 && !worker) return runPrimary(options, workers, log, merged)
  if (worker) {
    // the primary serves the HTTP port and DNS; a worker forwards its live figures to it
    options.http = undefined
    options.stateProxy = (await joinPrimary(options)) ?? undefined
  }
  let host: KmsHost
  try {
    host = await startHost(options)
  } catch (err) {
    if (err instanceof ListenError || err instanceof HttpListenError)
      throw new ConfigError(`kmslab serve: ${(err as Error).message}`)
    throw err
  }
  const pidFile = worker ? undefined : merged['pid-file']
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
  if (worker) {
    forwardOperations(host)
    reportListening(host.addresses, host.identity, host.stateLocation)
  } else banner(host, log, options)
  let published: Awaited<ReturnType<typeof startPublishing>>
  try {
    published = worker ? null : await startPublishing(host, merged, log)
  } catch (err) {
    await host.close()
    throw err
  }
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
  host.events.on('store-recovered', () =>
    log.always('store', `state ${host.stateLocation} answers again: serving`),
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
  if (!worker) log.always('stopping', `${reason}: stopping`, { reason })
  process.off('SIGHUP', onHup)
  process.off('SIGUSR1', onUsr1)
  const forced = setTimeout(() => process.exit(0), 2000)
  forced.unref()
  await published?.close()
  await host.close()
  dropPidFile()
  if (worker) leavePrimary()
  else log.always('stopped', 'stopped')
  return 0
}

export const serveVerb: Verb = {
  name: 'serve',
  summary: 'run a KMS host',
  help: HELP,
  options: OPTIONS,
  run: runServe,
}
