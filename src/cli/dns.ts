import { readFileSync } from 'node:fs'
import { DnsListenError, ZoneError } from '../dns/errors.js'
import { type DnsOptions, type DnsServer, labHost, startDns } from '../dns/server.js'
import { parseDomain } from '../dns/zone.js'
import { formatZone, recordLine, ZONE_FORMATS, type ZoneFormat } from '../dns/zone-format.js'
import { ConfigError, UsageError } from '../errors.js'
import { isLoopback } from '../server/cidr.js'
import { hostPort } from '../wire/endpoint.js'
import { type CliIo, intOption, type OptionSpec, parseCliArgs, type Verb } from './args.js'
import { formatHelp } from './help.js'

const ZONE = 'Zone'
const SERVER = 'Server'
const OUTPUT = 'Output'

const OPTIONS = {
  domain: { type: 'string', arg: 'DOMAIN', section: ZONE, help: 'the lab zone, e.g. lab.test' },
  host: {
    type: 'string',
    multiple: true,
    arg: 'NAME=ADDR[:PORT][,priority=P][,weight=W][,ttl=S]',
    section: ZONE,
    help:
      'a KMS host, repeatable: an SRV record (priority and weight default 0, port 1688, ttl 3600) ' +
      'and an A record for NAME (AAAA for an IPv6 ADDR in brackets); NAME is relative to DOMAIN',
  },
  listen: {
    type: 'string',
    multiple: true,
    arg: 'IP:PORT',
    section: SERVER,
    help: 'UDP and TCP address, repeatable; [IPV6]:PORT; port 0 picks a free one (default 127.0.0.1:53)',
  },
  'rate-limit': {
    type: 'string',
    arg: 'N',
    section: SERVER,
    help:
      'queries per second per source address (an IPv6 /64 counts as one), a token bucket; over it a ' +
      'UDP query is dropped, every second one answered with TC so a real client retries over TCP, ' +
      'and a TCP connection is closed (default 100; 0: no limit)',
  },
  burst: {
    type: 'string',
    arg: 'N',
    section: SERVER,
    help: 'queries a source may send at once before the rate applies (default twice the rate)',
  },
  'idle-timeout': {
    type: 'string',
    arg: 'SECONDS',
    section: SERVER,
    help: 'close a TCP connection silent this long (default 10)',
  },
  config: {
    type: 'string',
    arg: 'FILE.json',
    section: SERVER,
    help: 'settings as JSON, keys named like the flags ("domain", "host": [...], "listen": [...]); flags win',
  },
  format: {
    type: 'string',
    arg: 'bind|nsupdate|dnscmd|powershell',
    section: OUTPUT,
    help: 'kmslab dns zone: the records as a BIND zone-file fragment (default), an nsupdate script, dnscmd or PowerShell commands',
  },
  json: {
    type: 'boolean',
    section: OUTPUT,
    help: 'JSON lines on stdout: the addresses and records at start, the counters at the end',
  },
  quiet: { type: 'boolean', short: 'q', section: OUTPUT, help: 'only the listening line' },
  help: { type: 'boolean', short: 'h', section: OUTPUT, help: 'this help' },
} satisfies OptionSpec

const HELP = formatHelp(
  {
    usage:
      'kmslab dns --domain DOMAIN --host NAME=ADDR:PORT ... [options]\n       kmslab dns zone --domain DOMAIN --host ... [--format bind|nsupdate|dnscmd|powershell]',
    intro:
      'A small authoritative DNS server for a lab zone, over UDP and TCP: _vlmcs._tcp.DOMAIN SRV records\n' +
      "for KMS discovery, the hosts' A/AAAA records (also in the SRV answer's additional section), SOA\n" +
      'and NS at the apex, NXDOMAIN for other names in the zone, REFUSED outside it. EDNS(0) is honoured\n' +
      '(answers up to 1232 bytes over UDP; 512 without EDNS, TC beyond). Listens on loopback unless told\n' +
      'otherwise. `kmslab dns zone` prints the same records for a real DNS server instead.',
    exitCodes: [
      [0, 'stopped by SIGINT/SIGTERM (kmslab dns zone: printed)'],
      [64, 'usage or configuration-file error'],
      [78, 'cannot listen (address in use, port below 1024 without privileges)'],
    ],
  },
  OPTIONS,
)

type Values = ReturnType<typeof parseCliArgs<typeof OPTIONS>>['values']

/** --config: the flags' names as keys, the same checks as the flags. */
function readConfig(path: string): Values {
  let data: unknown
  try {
    data = JSON.parse(readFileSync(path, 'utf8'))
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code ?? `not JSON: ${(err as Error).message}`
    throw new UsageError(`kmslab dns: --config ${path}: ${why}`)
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data))
    throw new UsageError(`kmslab dns: --config ${path}: must be a JSON object`)
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(data)) {
    const spec = (OPTIONS as OptionSpec)[key]
    if (!spec || key === 'config' || key === 'help' || key === 'format')
      throw new UsageError(`kmslab dns: --config ${path}: unknown setting ${JSON.stringify(key)}`)
    const scalar = (v: unknown) => typeof v === 'string' || typeof v === 'number'
    const ok =
      spec.type === 'boolean'
        ? typeof value === 'boolean'
        : spec.multiple
          ? Array.isArray(value) && value.every(scalar)
          : scalar(value)
    if (!ok) throw new UsageError(`kmslab dns: --config ${path}: ${key}: wrong type`)
    out[key] = spec.multiple
      ? (value as unknown[]).map(String)
      : spec.type === 'boolean'
        ? value
        : String(value)
  }
  return out as Values
}

function dnsOptions(v: Values): DnsOptions {
  if (!v.domain)
    throw new UsageError('kmslab dns: --domain is required (the lab zone, e.g. lab.test)', 'domain')
  const idle = v['idle-timeout'] === undefined ? undefined : Number(v['idle-timeout'])
  if (idle !== undefined && !(idle > 0))
    throw new UsageError('kmslab dns: --idle-timeout takes a positive number of seconds', 'idle-timeout')
  return {
    domain: v.domain,
    hosts: v.host ?? [],
    listen: v.listen,
    rateLimit: intOption('dns', 'rate-limit', v['rate-limit'], 0, 1_000_000),
    burst: intOption('dns', 'burst', v.burst, 1, 10_000_000),
    idleTimeoutMs: idle === undefined ? undefined : Math.round(idle * 1000),
  }
}

function zoneText(v: Values): string {
  const format = (v.format ?? 'bind') as ZoneFormat
  if (!ZONE_FORMATS.includes(format))
    throw new UsageError(`kmslab dns zone: --format is one of ${ZONE_FORMATS.join(', ')}`, 'format')
  if (!v.domain) throw new UsageError('kmslab dns zone: --domain is required', 'domain')
  const domain = parseDomain(v.domain)
  const hosts = (v.host ?? []).map((h) => labHost(h, domain))
  if (hosts.length === 0) throw new UsageError('kmslab dns zone: give at least one --host', 'host')
  return formatZone(domain, hosts, format)
}

function banner(dns: DnsServer, v: Values, io: CliIo): void {
  const where = dns.addresses.map((a) => hostPort(a.host, a.port))
  const records = dns.zone.all().map(recordLine)
  if (v.json) {
    io.stdout.write(
      `${JSON.stringify({ event: 'listening', addresses: where, domain: dns.zone.domain, records })}\n`,
    )
    return
  }
  io.stdout.write(`kmslab dns: ${dns.zone.domain} on ${where.join(', ')} (UDP and TCP)\n`)
  if (!v.quiet) for (const r of records) io.stdout.write(`  ${r}\n`)
  if (dns.zone.hosts.length === 0)
    io.stderr.write('kmslab dns: warning: no --host: the SRV name has no records\n')
  const exposed = dns.addresses.filter((a) => !isLoopback(a.host)).map((a) => a.host)
  if (exposed.length > 0)
    io.stderr.write(
      `kmslab dns: warning: listening beyond loopback (${exposed.join(', ')}): anyone who reaches it can query the lab zone\n`,
    )
}

async function run(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCliArgs('dns', argv, OPTIONS)
  const sub = positionals[0]
  if (positionals.length > 1 || (sub !== undefined && sub !== 'zone'))
    throw new UsageError(
      `kmslab dns: unexpected argument ${JSON.stringify(positionals.at(-1))} (see kmslab dns --help)`,
    )
  const v = values.config ? { ...readConfig(values.config), ...values } : values
  if (sub === 'zone') {
    io.stdout.write(zoneText(v))
    return 0
  }
  if (v.format) throw new UsageError('kmslab dns: --format is for kmslab dns zone', 'format')
  let dns: DnsServer
  try {
    dns = await startDns(dnsOptions(v))
  } catch (err) {
    if (err instanceof DnsListenError) throw new ConfigError(`kmslab dns: ${err.message}`)
    throw err
  }
  for (const stream of [io.stdout, io.stderr]) stream.on('error', () => {})
  banner(dns, v, io)
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve())
    process.once('SIGTERM', () => resolve())
  })
  await dns.close()
  const s = dns.stats
  io.stdout.write(
    v.json
      ? `${JSON.stringify({ event: 'stopped', stats: s })}\n`
      : `kmslab dns: stopped after ${s.queries} queries (${s.answered} answered, ${s.nxdomain} NXDOMAIN, ` +
          `${s.refused} refused, ${s.formerr} FORMERR, ${s.truncated} truncated, ${s.rateLimited} over the rate)\n`,
  )
  return 0
}

export const dnsVerb: Verb = {
  name: 'dns',
  summary: 'serve the lab zone (SRV records for KMS discovery) over DNS, or print it for a real server',
  help: HELP,
  options: OPTIONS,
  async run(argv, io) {
    try {
      return await run(argv, io)
    } catch (err) {
      const code =
        err instanceof ZoneError || err instanceof UsageError ? 64 : err instanceof ConfigError ? 78 : 0
      if (code === 0) throw err
      const message = (err as Error).message
      io.stderr.write(`${message.startsWith('kmslab') ? '' : 'kmslab dns: '}${message}\n`)
      return code
    }
  },
}
