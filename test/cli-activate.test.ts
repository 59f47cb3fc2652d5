// `kmslab activate` as a command: usage errors (exit 64, one line), text, --verbose and --json
// output, exit codes, the charge progress line.
import t from 'tap'
import { activateVerb } from '../src/cli/activate.js'
import { HRESULT } from '../src/kms/hresult.js'
import { runVerb } from './fixtures/cli-io.js'
import { startDnsStub } from './fixtures/dns-stub.js'
import { kmsScript, startStubHost } from './fixtures/stub-host.js'

async function cli(argv: string[], stderrIsTty = false) {
  const { code, out, err } = await runVerb(activateVerb, argv, stderrIsTty)
  return { code, stdout: out, stderr: err }
}

t.test('usage errors: exit 64, one line on stderr, nothing on stdout', async (t) => {
  const cases: [string[], RegExp][] = [
    [['--bogus'], /^kmslab activate: Unknown option '--bogus'/],
    [['--protocol', '7'], /--protocol takes 4, 5 or 6, got "7"/],
    [['--cmid', 'not-a-guid'], /--cmid takes a GUID, got "not-a-guid"/],
    [['--app', '1234'], /--app takes a GUID/],
    [['--product', 'no such thing at all'], /no product matches "no such thing at all"/],
    [
      ['--product', 'windows'],
      /"windows" matches \d+ products; name one exactly: .+\(.+\); .*more \(kmslab products lists them\)/,
    ],
    [['127.0.0.1:99999'], /not a TCP port/],
    [['--timeout', 'soon'], /--timeout takes/],
    [['--time', 'yesterday'], /--time takes an ISO date/],
    [['--requests', '0'], /--requests must be between 1 and/],
    [['--required-count', '-1'], /--required-count/],
    [['--json', '--verbose'], /--json and --verbose do not mix/],
    [['--charge', '--cmid', '8b5e3ed7-0173-43df-9d2f-dc35aed7dc52'], /--charge needs a new CMID/],
    [['--dns-server', '127.0.0.1:53'], /--dns-server needs a \.DOMAIN target/],
    [['.example.test', '--dns-server', 'dns.example.test'], /--dns-server takes an IP address/],
    [['a', 'b'], /only one host/],
    [['--workstation', 'x'.repeat(64)], /more than 63 characters/],
  ]
  for (const [argv, message] of cases) {
    const r = await cli(argv)
    t.equal(r.code, 64, argv.join(' '))
    t.match(r.stderr, message, argv.join(' '))
    t.equal(r.stderr.trimEnd().split('\n').length, 1, `${argv.join(' ')}: one line`)
    t.equal(r.stdout, '')
  }
})

t.test('an unusable products file is a usage error: exit 64, one line', async (t) => {
  const r = await cli(['--products', '/nonexistent/products.json'])
  t.equal(r.code, 64)
  t.match(
    r.stderr,
    /^kmslab activate: --products \/nonexistent\/products\.json: cannot be read \(ENOENT\)\n$/,
  )
})

t.test('--help names the default product and the exit codes', async (t) => {
  const r = await cli(['--help'])
  t.equal(r.code, 0)
  t.match(r.stdout, /default: Windows 11 Enterprise/)
  t.match(r.stdout, /Exit codes: 0 .*\b2 .*\b3 .*\b4 .*\b5 /s)
})

t.test('--json: stdout is JSON lines only, one object per request', async (t) => {
  const stub = await startStubHost(kmsScript())
  t.teardown(() => stub.close())
  const r = await cli([
    stub.target,
    '--json',
    '-n',
    '3',
    '--product',
    'Windows Server 2019 Standard',
    '--vm',
    '--timeout',
    '2s',
  ])
  t.equal(r.code, 0)
  t.equal(r.stderr, '')
  const lines = r.stdout.trimEnd().split('\n')
  t.equal(lines.length, 3)
  const objects = lines.map((l) => JSON.parse(l))
  for (const o of objects) {
    t.same(Object.keys(o), [
      'host',
      'address',
      'attempts',
      'request',
      'response',
      'verdict',
      'warnings',
      'error',
    ])
    t.same(Object.keys(o.request), [
      'version',
      'vm',
      'licenseStatus',
      'graceMinutes',
      'appId',
      'skuId',
      'kmsId',
      'cmid',
      'previousCmid',
      'requiredCount',
      'clientTime',
      'workstation',
      'verified',
    ])
    t.match(o, {
      host: stub.target,
      request: {
        version: '6.0',
        vm: true,
        licenseStatus: 2,
        graceMinutes: 43200,
        requiredCount: 5,
        verified: true,
      },
      response: {
        hresult: 0,
        version: '6.0',
        epid: String,
        hwid: '3A1C049600B60076',
        currentCount: 10,
        activationInterval: 120,
        renewalInterval: 10080,
        verified: true,
      },
      verdict: 'activated',
      warnings: [],
      error: null,
    })
    t.equal(o.response.cmid, o.request.cmid)
    t.equal(o.response.clientTime, o.request.clientTime)
    t.match(o.request.cmid, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
  }
  t.equal(new Set(objects.map((o) => o.request.cmid)).size, 3, 'a random CMID per request')
})

t.test('--json for refusals, failures and DNS discovery', async (t) => {
  const refusing = await startStubHost(kmsScript({ hresult: HRESULT.KMS_ID_MISMATCH }))
  const broken = await startStubHost(kmsScript({ corrupt: 'cmid' }))
  t.teardown(() => Promise.all([refusing.close(), broken.close()]))
  const refused = await cli([refusing.target, '--json'])
  t.equal(refused.code, 3)
  t.match(JSON.parse(refused.stdout), {
    verdict: 'refused',
    response: { hresult: 0xc004f042, epid: null, verified: false },
    error: /^host refused: 0xC004F042 \(SL_E_VL_KEY_MANAGEMENT_SERVICE_ID_MISMATCH/,
  })
  const failed = await cli([broken.target, '--json', '--protocol', '5'])
  t.equal(failed.code, 4)
  const f = JSON.parse(failed.stdout)
  t.match(f, {
    verdict: 'verification-failed',
    response: { version: '5.0', verified: false },
    error: /CMID echo/,
  })
  t.not(f.response.cmid, f.request.cmid, 'the unverified answer still shows what it says')
  const dns = await startDnsStub({
    '_vlmcs._tcp.cli.test': [{ priority: 0, weight: 0, port: broken.port, target: '127.0.0.1' }],
  })
  t.teardown(() => dns.close())
  const found = await cli(['.cli.test', '--dns-server', dns.server, '--json'])
  t.equal(JSON.parse(found.stdout).host, broken.target)
  const missing = await cli(['.other.test', '--dns-server', dns.server, '--json'])
  t.equal(missing.code, 5)
  t.match(JSON.parse(missing.stdout), {
    host: '_vlmcs._tcp.other.test',
    response: null,
    verdict: 'rpc-error',
    error: /no KMS host found/,
  })
})

t.test('text output: one line per request, warnings under it; --verbose shows every field', async (t) => {
  const stub = await startStubHost(kmsScript({ corrupt: 'iv-rule' }))
  t.teardown(() => stub.close())
  const r = await cli([
    stub.target,
    '-n',
    '2',
    '--workstation',
    'ws1.example.test',
    '--cmid',
    'd7c3a4d7-bb3f-4f1e-b40d-650c63a6020d',
  ])
  t.equal(r.code, 0)
  t.same(r.stdout.trimEnd().split('\n'), [
    `1/2 ${stub.target} V6 NDR32: activated, count 50/25, ePID 06401-00206-568-844243-03-10249-9600.0000-1602020, HWID 3A1C049600B60076`,
    '  warning: host uses an IV following KMSv5 rules in KMSv6 protocol',
    `2/2 ${stub.target} V6 NDR64: activated, count 50/25, ePID 06401-00206-568-844243-03-10249-9600.0000-1602020, HWID 3A1C049600B60076`,
    '  warning: host uses an IV following KMSv5 rules in KMSv6 protocol',
  ])
  const v = await cli([
    stub.target,
    '-v',
    '--time',
    '2026-11-25T13:27:03Z',
    '--product',
    'Office Professional Plus 2016',
  ])
  for (const line of [
    'Protocol version                : 6.0',
    'Client is a virtual machine     : No',
    'Licensing status                : 2 (OOB grace)',
    'Remaining time (0 = forever)    : 43200 minutes',
    'Application ID                  : 0ff1ce15-a989-479d-af46-f275c6370663 (Office 2013+)',
    'SKU ID (aka Activation ID)      : d450596f-894d-49e0-966a-fd39ed4c4c64 (Office Professional Plus 2016)',
    'KMS ID (aka KMS counted ID)     : 85b5f61b-320b-4be3-814a-b76b2bfafc82 (Office 2016)',
    'Client request timestamp (UTC)  : 2026-11-25 13:27:03',
    'N count policy (minimum clients): 5',
    'RPC bind: NDR32 rejected, NDR64 accepted (ctx 1), BTFN acknowledged (features 0x3)',
    'RPC alter_context: NDR32 accepted (ctx 0)',
    'Size of KMS Response            : 260 (0x104)',
    'KMS host Hardware ID            : 3A1C049600B60076',
    'KMS host current active clients : 10',
    'Renewal interval policy         : 10080',
    'Activation interval policy      : 120',
  ]) {
    t.ok(v.stdout.includes(line), line)
  }
})

t.test('errors are one line, never a stack trace', async (t) => {
  const stub = await startStubHost(kmsScript({ hresult: HRESULT.INVALID_DATA }))
  t.teardown(() => stub.close())
  const r = await cli([stub.target, '--protocol', '4'])
  t.equal(r.code, 3)
  t.same(r.stdout.trimEnd().split('\n'), [
    `1/1 ${stub.target} V4 NDR32: refused 0x8007000D (ERROR_INVALID_DATA: the host cannot use this request (version, size, padding, MAC or count))`,
  ])
  const silent = await startStubHost(() => null)
  t.teardown(() => silent.close())
  const s = await cli([silent.target, '--timeout', '100ms'])
  t.equal(s.code, 5)
  t.same(s.stdout.trimEnd().split('\n'), [
    `1/1 ${silent.target} V6: RPC error (timeout): no bind_ack within 100 ms`,
  ])
})

t.test(
  '--charge: progress on stderr (a line rewritten with \\r on a terminal), the last answer on stdout',
  async (t) => {
    const stub = await startStubHost(kmsScript({ count: (n) => n + 1 }))
    t.teardown(() => stub.close())
    const r = await cli([stub.target, '--charge', '--required-count', '3'], true)
    t.equal(r.code, 0)
    const numbered = (text: string) =>
      text
        .split(/[\n\r]/)
        .map((l) => l.replace(/^\x1b\[K/, ''))
        .filter((l) => /^\d/.test(l))
        .map((l) => l.replace(/,.*/, ''))
    t.same(numbered(r.stdout), [`3 ${stub.target} V6 NDR64: activated`], 'stdout: the answer that counts')
    t.same(numbered(r.stderr), [
      `1 ${stub.target} V6 NDR32: not enough clients`,
      `2 ${stub.target} V6 NDR64: not enough clients`,
    ])
    t.match(r.stderr, /^\r\x1b\[Kcharging: 1 sent, count 1\/3 \(at most 6 requests\)/)
    t.ok(r.stderr.includes('\r\x1b[Kcharging: 3 sent, count 3/3'))
    t.ok(r.stderr.endsWith('\r\x1b[K'), 'the progress line is erased at the end')
    const stub2 = await startStubHost(kmsScript({ count: (n) => n + 1 }))
    t.teardown(() => stub2.close())
    const quiet = await cli([stub2.target, '--charge', '--required-count', '3'], false)
    t.same(numbered(quiet.stdout), [`3 ${stub2.target} V6 NDR64: activated`])
    t.notMatch(quiet.stderr, /charging:/, 'no progress line when stderr is not a terminal')
    t.same(numbered(quiet.stderr).length, 2, 'the charging answers go to stderr')
    const stub3 = await startStubHost(kmsScript({ count: (n) => n + 1 }))
    t.teardown(() => stub3.close())
    const json = await cli([stub3.target, '--charge', '--required-count', '3', '--json'], true)
    t.same(
      json.stdout
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l).verdict),
      ['not-enough-count', 'not-enough-count', 'activated'],
      '--json: every record on stdout, nothing else',
    )
    t.match(json.stderr, /charging: 3 sent/, '--json keeps the progress line on a terminal')
  },
)
