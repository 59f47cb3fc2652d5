import type { Catalog } from '../catalog/index.js'
import { type ActivateOptions, activate } from '../client/activate.js'
import { parseTarget } from '../client/discover.js'
import { serverResolver } from '../client/server-resolver.js'
import { formatResult, progressLine, resultRecord } from '../client/text.js'
import { cryptoRandom } from '../crypto/random.js'
import { ConfigError, UsageError } from '../errors.js'
import { type CliIo, intOption, type OptionSpec, parseCliArgs, type Verb } from './args.js'
import { formatHelp } from './help.js'
import { catalogFor } from './products.js'

const VERB = 'activate'
const U32 = 0xffffffff

const PRODUCT = 'Product (default: Windows 11 Enterprise)'
const REQUEST = 'Request'
const RPC = 'RPC'
const OUTPUT = 'Output'

const OPTIONS = {
  product: {
    type: 'string',
    short: 'l',
    arg: 'NAME',
    section: PRODUCT,
    help: 'a catalogue product: name, alias, SKU id or GVLK (kmslab products)',
  },
  app: { type: 'string', arg: 'GUID', section: PRODUCT, help: 'raw application id' },
  sku: { type: 'string', arg: 'GUID', section: PRODUCT, help: 'raw SKU (activation) id' },
  kms: { type: 'string', arg: 'GUID', section: PRODUCT, help: 'raw KMS counted id' },
  products: {
    type: 'string',
    arg: 'FILE',
    section: PRODUCT,
    help: 'lay FILE over the product catalogue (as kmslab products)',
  },
  protocol: {
    type: 'string',
    arg: '4|5|6',
    section: REQUEST,
    help: "KMS protocol version (default: the product's)",
  },
  cmid: {
    type: 'string',
    arg: 'GUID',
    section: REQUEST,
    help: 'client machine id (default: a random v4 UUID per request)',
  },
  'previous-cmid': {
    type: 'string',
    arg: 'GUID',
    section: REQUEST,
    help: 'previous client machine id (default: all zero)',
  },
  workstation: {
    type: 'string',
    arg: 'NAME',
    section: REQUEST,
    help: 'workstation name (default: a random plausible DNS name)',
  },
  'required-count': {
    type: 'string',
    arg: 'N',
    section: REQUEST,
    help: "N count policy (default: the product's, 25 / 5 / 5)",
  },
  vm: { type: 'boolean', section: REQUEST, help: 'claim to be a virtual machine' },
  'license-status': {
    type: 'string',
    arg: 'N',
    section: REQUEST,
    help: 'licensing status (default 2, OOB grace)',
  },
  'grace-minutes': {
    type: 'string',
    arg: 'N',
    section: REQUEST,
    help: 'remaining grace time in minutes (default 43200)',
  },
  time: {
    type: 'string',
    arg: 'ISO',
    section: REQUEST,
    help: "request time, e.g. 2026-01-01T00:00:00Z (probe a host's clock check)",
  },
  'no-ndr64': { type: 'boolean', section: RPC, help: 'do not offer NDR64' },
  'no-btfn': { type: 'boolean', section: RPC, help: 'do not offer bind-time feature negotiation' },
  'no-multiplex': { type: 'boolean', section: RPC, help: 'bind without PFC_CONC_MPX' },
  requests: {
    type: 'string',
    short: 'n',
    arg: 'N',
    section: RPC,
    help: 'requests to send over one connection (default 1)',
  },
  'new-connection': {
    type: 'boolean',
    section: RPC,
    help: 'a new TCP connection (and bind) for each request',
  },
  charge: {
    type: 'boolean',
    section: RPC,
    help:
      "new CMIDs until the host counts the product's threshold (at most --requests, default twice " +
      'the threshold); progress on stderr',
  },
  timeout: {
    type: 'string',
    arg: 'T',
    section: RPC,
    help: 'for the connection and each answer: 10s, 2.5s, 500ms or plain milliseconds (default 10s)',
  },
  'dns-server': {
    type: 'string',
    arg: 'IP[:PORT]',
    section: RPC,
    help:
      "DNS server for .DOMAIN: the SRV records and their targets' addresses (its answer's additional " +
      "section, else A/AAAA queries) all come from it (default: the system's resolver for both)",
  },
  verbose: {
    type: 'boolean',
    short: 'v',
    section: OUTPUT,
    help: 'every field of each request and answer, like vlmcs -v',
  },
  json: {
    type: 'boolean',
    section: OUTPUT,
    help:
      'one JSON object per request on stdout: host (the one that answered), address (the IP ' +
      'connected to), attempts (hosts passed over: host, port, address, failure, error), request, ' +
      'response, verdict, warnings, error (request/response as kmslab decode --json)',
  },
  help: { type: 'boolean', short: 'h', section: OUTPUT, help: 'this help' },
} satisfies OptionSpec

const HELP = formatHelp(
  {
    usage: 'kmslab activate [HOST[:PORT] | [IPV6]:PORT | .DOMAIN] [options]',
    intro: `Sends KMS activation requests to a host (default 127.0.0.1:1688) the way vlmcs does and checks
every answer: RPC framing, NDR, the KMS cryptography (hash, HMAC, IV rules, XorSalts) and echoes.
.DOMAIN finds hosts through the _vlmcs._tcp.DOMAIN SRV record (priority, then weight order).`,
    exitCodes: [
      [0, 'every request activated'],
      [2, 'count below the required count (0xC004F038)'],
      [3, 'host refused (HRESULT)'],
      [4, 'an answer failed verification'],
      [5, 'connection, DNS or RPC failure'],
      [64, 'usage error or unusable products file'],
    ],
    exitNote: 'When requests end differently the highest wins.',
  },
  OPTIONS,
)

function parseTimeout(text: string | undefined): number | undefined {
  if (text === undefined) return undefined
  const m = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(text.trim())
  const ms = m ? Number(m[1]) * (m[2] === 's' ? 1000 : 1) : Number.NaN
  if (!(ms >= 1 && ms <= 3_600_000)) {
    throw new UsageError(
      `--timeout takes 10s, 500ms or milliseconds (1 ms to 1 h), got ${JSON.stringify(text)}`,
      'timeout',
    )
  }
  return Math.round(ms)
}

function parseProtocol(text: string | undefined): number | undefined {
  if (text === undefined) return undefined
  if (!/^[456]$/.test(text.trim()))
    throw new UsageError(`--protocol takes 4, 5 or 6, got ${JSON.stringify(text)}`, 'protocol')
  return Number(text)
}

function parseTime(text: string | undefined): Date | undefined {
  if (text === undefined) return undefined
  const d = new Date(text)
  if (!/^\d{4}-\d\d-\d\d/.test(text) || Number.isNaN(d.getTime())) {
    throw new UsageError(
      `--time takes an ISO date and time such as 2026-01-01T00:00:00Z, got ${JSON.stringify(text)}`,
      'time',
    )
  }
  return d
}

/** Usage errors are one line: a catalogue's candidate list is folded into it. */
function oneLine(message: string): string {
  const [first, ...rest] = message.split('\n').map((l) => l.trim())
  const head = first.startsWith('kmslab') ? first : `kmslab ${VERB}: ${first}`
  if (rest.length === 0) return head
  const shown = rest.filter(Boolean).slice(0, 8)
  const more = rest.filter(Boolean).length - shown.length
  return `${head} ${shown.join('; ')}${more > 0 ? `; ... ${more} more (kmslab products lists them)` : ''}`
}

async function run(argv: string[], io: CliIo): Promise<number> {
  const { values: v, positionals } = parseCliArgs(VERB, argv, OPTIONS)
  if (v.help) {
    io.stdout.write(HELP)
    return 0
  }
  if (positionals.length > 1) throw new UsageError(`only one host may be given, got ${positionals.join(' ')}`)
  const target = parseTarget(positionals[0] ?? '')
  if (v.json && v.verbose) throw new UsageError('--json and --verbose do not mix')
  if (v.charge && v.cmid) throw new UsageError('--charge needs a new CMID per request; drop --cmid')
  if (v['dns-server'] && target.kind !== 'srv') throw new UsageError('--dns-server needs a .DOMAIN target')
  const catalog: Catalog = catalogFor(VERB, v.products)
  const requests = intOption(VERB, 'requests', v.requests, 1, 1_000_000)
  const options: ActivateOptions = {
    catalog,
    product: v.product,
    appId: v.app,
    skuId: v.sku,
    kmsId: v.kms,
    protocol: parseProtocol(v.protocol),
    cmid: v.cmid,
    previousCmid: v['previous-cmid'],
    workstation: v.workstation,
    requiredCount: intOption(VERB, 'required-count', v['required-count'], 0, U32),
    vm: v.vm,
    licenseStatus: intOption(VERB, 'license-status', v['license-status'], 0, U32),
    graceMinutes: intOption(VERB, 'grace-minutes', v['grace-minutes'], 0, U32),
    time: parseTime(v.time),
    ndr64: !v['no-ndr64'],
    btfn: !v['no-btfn'],
    multiplex: !v['no-multiplex'],
    requests,
    newConnection: v['new-connection'],
    charge: v.charge,
    timeoutMs: parseTimeout(v.timeout),
  }
  if (v['dns-server']) {
    // The SRV records and their targets' addresses both come from the server asked.
    const lab = serverResolver(v['dns-server'], options.timeoutMs ?? 10_000, cryptoRandom)
    options.resolveSrv = lab.resolveSrv
    options.resolveAddresses = lab.resolveAddresses
  }
  const total = v.charge ? undefined : (requests ?? 1)
  // The progress line is erased before each result line and redrawn after it (onProgress follows).
  let progress = false
  // --charge in text: the requests that charge the pool are progress (stderr); stdout gets the
  // last answer, the one that tells whether the host now activates. --json keeps every record.
  let charging: string | null = null
  options.onResult = (r) => {
    if (progress) io.stderr.write('\r\x1b[K')
    if (v.json) io.stdout.write(`${JSON.stringify(resultRecord(r))}\n`)
    else if (!v.charge) io.stdout.write(formatResult(r, { verbose: v.verbose, names: catalog, total }))
    else {
      if (charging !== null) io.stderr.write(charging)
      charging = formatResult(r, { verbose: v.verbose, names: catalog, total })
    }
  }
  if (v.charge && io.stderrIsTty) {
    options.onProgress = (p) => {
      progress = true
      io.stderr.write(`\r\x1b[K${progressLine(p)}`)
    }
  }
  const report = await activate(positionals[0] ?? '', options)
  if (progress) io.stderr.write('\r\x1b[K')
  if (charging !== null) io.stdout.write(charging)
  return report.exitCode
}

export const activateVerb: Verb = {
  name: VERB,
  summary: 'activate against a KMS host as a verifying client (test, charge, probe)',
  help: HELP,
  options: OPTIONS,
  async run(argv, io) {
    try {
      return await run(argv, io)
    } catch (err) {
      if (err instanceof UsageError) {
        io.stderr.write(`${oneLine(err.message)}\n`)
        return 64
      }
      if (err instanceof ConfigError) {
        io.stderr.write(`${oneLine(err.message)}\n`)
        return 78
      }
      throw err
    }
  },
}
