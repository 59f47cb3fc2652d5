// `kmslab serve --rules FILE` and `--seed` as users run them (dist/, a child process): a malformed
// rules file stops the start with exit 64; SIGHUP re-reads the file, and a malformed one then
// leaves the old rules in force and says so.
import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { activate } from '../src/client/activate.js'
import { HRESULT } from '../src/kms/hresult.js'
import { BIN, type ServeProcess, startServe } from './fixtures/serve-process.js'

function serveFails(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      [BIN, 'serve', '--listen', '127.0.0.1:0', '--state', 'memory', ...args],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    )
    let stderr = ''
    child.stderr!.on('data', (d) => {
      stderr += d
    })
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
    child.on('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, stderr })
    })
  })
}

async function waitStderr(serve: ServeProcess, re: RegExp, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms
  while (!re.test(serve.stderr()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
}

t.test('a malformed rules file is a clear error: exit 64 at start', async (t) => {
  const dir = t.testdir({
    'not-json.json': '[{"action": {"refuse": 1}',
    'unknown.json': JSON.stringify([
      { name: 'x', action: { refuse: '0xC004F042' } },
      { action: { explode: 1 } },
    ]),
    'conflict.json': JSON.stringify([{ action: { fault: 1, count: 3 } }]),
  })
  const cases: [string, RegExp][] = [
    ['not-json.json', /rules file .*not-json\.json: not JSON/],
    ['unknown.json', /rules file .*unknown\.json: rule #2: action\.explode: unknown action/],
    [
      'conflict.json',
      /rules file .*conflict\.json: rule #1: action\.count: changes an answer, but fault sends none/,
    ],
    ['missing.json', /rules file .*missing\.json: cannot read: ENOENT/],
  ]
  for (const [file, message] of cases) {
    const { code, stderr } = await serveFails(['--rules', join(dir, file)])
    t.equal(code, 64, `${file}: exit 64`)
    t.match(stderr, message)
  }
})

t.test(
  '--seed says so in the banner; SIGHUP re-reads the rules, keeps them when the file is bad',
  async (t) => {
    const dir = t.testdir()
    const rules = join(dir, 'rules.json')
    writeFileSync(rules, JSON.stringify([{ name: 'busy', action: { refuse: '0xC004F042' } }]))
    const serve = await startServe([
      '--state',
      'memory',
      '--counter',
      'charged',
      '--seed',
      'ci',
      '--rules',
      rules,
    ])
    t.teardown(() => {
      serve.child.kill('SIGKILL')
    })
    // stderr and stdout are separate pipes: the warning may come after the banner's last line.
    await waitStderr(serve, /deterministic mode \(--seed\)/)
    t.match(serve.stderr(), /deterministic mode \(--seed\)/)
    const client = async () =>
      (await activate({ host: '127.0.0.1', port: serve.port }, { timeoutMs: 3000 })).results[0]
    t.equal((await client()).hresult, HRESULT.KMS_ID_MISMATCH, 'the rule from the file')

    writeFileSync(rules, JSON.stringify([{ name: 'skewed', action: { refuse: '0xC004F06C' } }]))
    serve.child.kill('SIGHUP')
    await serve.waitOutput(/rules re-read from/)
    t.equal((await client()).hresult, HRESULT.INVALID_TIMESTAMP, 'the new rule after SIGHUP')

    writeFileSync(rules, '[{"action": {"refuse": "nope"}}]')
    serve.child.kill('SIGHUP')
    await waitStderr(serve, /the old rules stay/)
    t.match(serve.stderr(), /rule #1: action\.refuse: not a 32-bit code: "nope"; the old rules stay/)
    t.equal((await client()).hresult, HRESULT.INVALID_TIMESTAMP, 'still the last good rules')

    writeFileSync(rules, '[]')
    serve.child.kill('SIGHUP')
    await serve.waitOutput(/rules re-read from[\s\S]*rules re-read from/)
    t.equal((await client()).verdict, 'activated', 'no rules: a plain answer')
    serve.child.kill('SIGTERM')
    t.equal(await serve.exited, 0)
  },
)
