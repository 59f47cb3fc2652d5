// A bounded `npm run soak`: bench/soak.mjs with 2,000 connections (every kind of hostile input,
// mutations of the captures, valid clients among them) and one kill -9. The script checks every
// answer against the hostile-input table, one log line per hostile event, the host's RSS, and
// the state after SIGTERM and after the kill; this test runs it and reads its JSON summary.
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const SOAK = fileURLToPath(new URL('../bench/soak.mjs', import.meta.url))

t.test('2,000 hostile and valid connections, one kill -9: the host holds', async (t) => {
  const env = { ...process.env }
  delete env.NODE_OPTIONS // tap's hooks have no business in the soak or the host it starts
  const child = spawn(process.execPath, [SOAK, '--connections', '2000', '--kills', '1', '--json'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
  })
  let out = ''
  let err = ''
  child.stdout.on('data', (d) => (out += d))
  child.stderr.on('data', (d) => (err += d))
  const code = await new Promise((resolve) => child.on('close', resolve))
  const summary = JSON.parse(out.trim().split('\n').at(-1) ?? '{}')
  t.same(summary.errors, {}, `no check failed (stderr: ${err.slice(0, 500)})`)
  t.equal(code, 0)
  t.equal(summary.connections, 2000)
  t.ok(Object.keys(summary.byKind).length >= 15, `kinds: ${Object.keys(summary.byKind).join(', ')}`)
  t.ok(summary.valid.activations >= 200, `${summary.valid.activations} verified activations among them`)
  t.equal(summary.valid.afterRunMs.p50 !== null, true, 'valid clients served after the run')
  t.ok(
    summary.rss.withinBudget,
    `RSS ${summary.rss.startMb} -> ${summary.rss.endMb} MB (peak ${summary.rss.peakMb})`,
  )
  t.equal(summary.sigterm.exit, 0)
  t.equal(summary.afterPhase1.integrity, 'ok')
  t.equal(summary.afterPhase1.missing, 0)
  t.equal(summary.kills.length, 1)
  t.match(summary.kills[0], { integrity: 'ok', missing: 0, poolsMatchHistory: true })
  t.equal(summary.final.exit, 0)
})
