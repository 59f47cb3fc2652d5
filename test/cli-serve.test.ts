// `kmslab serve` as a first-time user meets it: usage errors, the restart banner, the activation
// log (text and JSON), and a host identity that hangs together. Child processes run dist/.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import t from 'tap'
import { main } from '../src/cli/main.js'
import { explainIdentity } from '../src/host/identity.js'
import { activate, startHost } from '../src/index.js'
import { startServe } from './fixtures/serve-process.js'

async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = ''
  let err = ''
  const sink = (add: (s: string) => void) =>
    new Writable({
      write(chunk, _enc, done) {
        add(String(chunk))
        done()
      },
    })
  const code = await main(argv, {
    stdout: sink((s) => {
      out += s
    }),
    stderr: sink((s) => {
      err += s
    }),
    stderrIsTty: false,
  })
  return { code, out, err }
}

t.test('usage errors: exit 64, one line naming the flag and the value, one prefix', async (t) => {
  const dir = t.testdir({ 'bad.json': '{\n  "listen": ["127.0.0.1:0"],\n  oops\n}\n' })
  const quiet = ['--state', 'memory', '--listen', '127.0.0.1:0']
  const cases: [string[], RegExp][] = [
    [['serve', '--listen', 'nonsense'], /^kmslab serve: --listen nonsense: "nonsense" is neither an IP/],
    [['serve', '--history-days', '-3'], /^kmslab serve: --history-days must be between 1 and 36500, got -3$/],
    [['serve', '--history-days=-3'], /^kmslab serve: --history-days must be between 1 and 36500, got -3$/],
    [['serve', ...quiet, '--epid', 'windows=123'], /^kmslab serve: --epid windows=123: not an ePID \(/],
    [['serve', ...quiet, '--epid', 'nt4=123'], /^kmslab serve: --epid nt4=123: unknown family/],
    [
      ['serve', '--listen', '--allow', '10.0.0.0/8'],
      /^kmslab serve: --listen needs a value, but the next word "--allow"/,
    ],
    [
      ['serve', '--config', join(dir, 'bad.json')],
      /^kmslab serve: --config .*bad\.json: not JSON: .* at line 3, column 3 \(near "oops\\n}\\n"\)$/,
    ],
    [
      ['decode', '--products', '/nonexistent/p.json', 'x.pcap'],
      /^kmslab decode: --products \/nonexistent\/p\.json: /,
    ],
    [
      ['bench', '-c', '-2', '127.0.0.1'],
      /^kmslab bench: --connections must be between 1 and 100000, got -2$/,
    ],
  ]
  for (const [argv, re] of cases) {
    const r = await cli(argv)
    t.equal(r.code, 64, argv.join(' '))
    t.equal(r.out, '', 'nothing on stdout')
    t.equal(r.err.split('\n').length, 2, `one line: ${r.err}`)
    t.match(r.err.trimEnd(), re)
  }
})

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/
const CMID_A = '0c1d2e3f-4a5b-4c6d-8e7f-00000000000a'
const CMID_B = '0c1d2e3f-4a5b-4c6d-8e7f-00000000000b'

t.test(
  'JSON log: time, level, event and msg on every line; each activation says new or renewal',
  async (t) => {
    const state = join(t.testdir(), 'state.db')
    const host = await startServe(['--state', state, '--log-format', 'json'])
    t.teardown(() => host.child.kill('SIGKILL'))
    const target = { host: '127.0.0.1', port: host.port }
    await activate(target, { cmid: CMID_A })
    await activate(target, { cmid: CMID_B })
    await activate(target, { cmid: CMID_A })
    await activate(target, { cmid: CMID_B, product: 'office 2024 proplus' })
    await host.waitOutput(/("event":"activation".*){4}/s)
    host.child.kill('SIGTERM')
    t.equal(await host.exited, 0)
    const lines = host
      .stdout()
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l))
    for (const l of lines) {
      t.match(l.time, ISO, `${l.event}: ISO time`)
      t.equal(l.level, 'info')
      t.type(l.msg, 'string')
      t.ok(l.msg.length > 0, `${l.event}: a msg`)
    }
    const acts = lines.filter((l) => l.event === 'activation')
    t.same(
      acts.map((l) => [l.cmid, l.cmidSeen, l.newClient]),
      [
        [CMID_A, 'new', true],
        [CMID_B, 'new', true],
        [CMID_A, 'renewal', false],
        [CMID_B, 'new', true],
      ],
    )
    t.match(acts[2].msg, /\(renewal: already in the pool\)/)
    t.same(lines.map((l) => l.event).slice(0, 4), ['listening', 'mode', 'state', 'rpc'])

    // The restart: the banner says what came back and what a new client gets now.
    const again = await startServe(['--state', state])
    t.teardown(() => again.child.kill('SIGKILL'))
    const banner = again.stdout()
    t.notMatch(banner, /starts empty/)
    t.match(
      banner,
      /counter real: pools restored from the state \(clients seen in the last 30 days\): Windows 2, Office 2010 0, Office 2013\+ 1\n/,
    )
    t.match(
      banner,
      /a new client now gets: Windows client 3\/25 \(0xC004F038\), Windows server 3\/5 \(0xC004F038\), Office 2010 1\/5 \(0xC004F038\), Office 2013\+ 2\/5 \(0xC004F038\)\n/,
    )
    t.match(
      banner,
      /host build \d+ \(.+\): offers NDR64 like this host, and can hold every CSVLK served, up to Office LTSC 2024/,
    )
    await activate({ host: '127.0.0.1', port: again.port }, { cmid: CMID_A })
    await again.waitOutput(
      /cmid=0c1d2e3f-4a5b-4c6d-8e7f-00000000000a \(renewal: already in the pool\) count 2\/25/,
    )
    again.child.kill('SIGTERM')
    t.equal(await again.exited, 0)
  },
)

t.test('--counter fixed:N above 50 is warned about: no genuine host reports it', async (t) => {
  const host = await startServe(['--state', 'memory', '--counter', 'fixed:60'])
  t.teardown(() => host.child.kill('SIGKILL'))
  host.child.kill('SIGTERM')
  t.equal(await host.exited, 0)
  t.match(host.stderr(), /warning: --counter fixed:60: a genuine host never reports more than 50/)
  const ok = await startServe(['--state', 'memory', '--counter', 'fixed:50'])
  t.teardown(() => ok.child.kill('SIGKILL'))
  ok.child.kill('SIGTERM')
  await ok.exited
  t.notMatch(ok.stderr(), /fixed:50/)
})

t.test('the host identity hangs together: RPC flavour, CSVLKs and build', async (t) => {
  for (const seed of ['a', 'b', 'c', 'd', 'e', 'f']) {
    const host = await startHost({ seed })
    await host.close()
    const build = host.catalog.hostBuilds.find((b) => b.build === host.identity.hostBuild)!
    t.ok(build.usesNdr64, `seed ${seed}: build ${build.build} offers NDR64 like the host`)
    t.ok(build.build >= 14393, `seed ${seed}: build ${build.build} can hold Office LTSC 2024's CSVLK`)
    t.same(explainIdentity(host.identity, host.catalog, true).problems, [], `seed ${seed}: nothing to doubt`)
  }
  // NDR32 only: no such Windows can hold the newest CSVLKs; the RPC flavour wins, and it is said.
  const old = await startHost({ seed: 'a', ndr64: false })
  await old.close()
  t.equal(old.identity.hostBuild, 7601)
  for (const epid of Object.values(old.identity.epids)) t.match(epid, /^55041-\d{5}-.*-7601\.0000-/)
  const why = explainIdentity(old.identity, old.catalog, false)
  t.match(why.text, /host build 7601 \(Windows 7 \/ Server 2008 R2 SP1\): lacks NDR64 like this host/)
  t.match(
    why.problems.join('\n'),
    /older than the CSVLKs of .*Office LTSC 2024 \(needs 14393\+\).*no NDR32-only Windows build/,
  )
  // An explicit build that does not fit is kept, and doubted aloud.
  const forced = await startHost({ seed: 'a', hostBuild: 6002 })
  await forced.close()
  const doubts = explainIdentity(forced.identity, forced.catalog, true).problems.join('\n')
  t.match(doubts, /host build 6002 .* lacks NDR64, but this host offers it/)
  t.match(doubts, /Office LTSC 2024 \(needs 14393\+\)/)
})

t.test('a config file with a JSON mistake names where, without dumping the file', async (t) => {
  const dir = t.testdir()
  const path = join(dir, 'c.json')
  writeFileSync(path, `nonsense\n${'x'.repeat(500)}\n`)
  const r = await cli(['serve', '--config', path])
  t.equal(r.code, 64)
  t.equal(r.err.split('\n').length, 2)
  t.ok(r.err.length < 300, 'the raw text is quoted in part, not dumped')
  t.match(
    r.err,
    /^kmslab serve: --config .*c\.json: not JSON: Unexpected token .* \(the text begins "nonsense\\nxxx/,
  )
})

t.test(
  'a --pid-file that cannot be written stops the start: exit 78, one line, the port released',
  async (t) => {
    const r = await cli([
      'serve',
      '--state',
      'memory',
      '--listen',
      '127.0.0.1:0',
      '--pid-file',
      '/nonexistent/dir/k.pid',
    ])
    t.equal(r.code, 78)
    t.equal(r.err, 'kmslab serve: --pid-file /nonexistent/dir/k.pid: cannot be written (ENOENT)\n')
  },
)
