// `npx kmslab serve &` then `kill -TERM $!` must stop the host and free its port: npx runs the bin
// through `sh -c`, and only that shell hears the signal. Run here through a real npx, from a
// project that has kmslab installed (a link to this checkout), as the README's example does.
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)))

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

async function until(what: string, ok: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

function portFree(port: number): Promise<boolean> {
  return new Promise((done) => {
    const s = createServer()
    s.once('error', () => done(false))
    s.listen({ host: '127.0.0.1', port, exclusive: true }, () => s.close(() => done(true)))
  })
}

/** A project that depends on kmslab: its node_modules/.bin/kmslab is what npx runs. */
function project(dir: string): string {
  writeFileSync(join(dir, 'package.json'), '{"name":"uses-kmslab","version":"1.0.0","private":true}\n')
  mkdirSync(join(dir, 'node_modules', '.bin'), { recursive: true })
  symlinkSync(ROOT, join(dir, 'node_modules', 'kmslab'), 'dir')
  symlinkSync('../kmslab/dist/cli/bin.js', join(dir, 'node_modules', '.bin', 'kmslab'))
  return dir
}

t.test('npx kmslab serve, SIGTERM to npx: the host stops, the port is free, the pid file gone', async (t) => {
  const dir = project(t.testdir())
  const pidFile = join(dir, 'kmslab.pid')
  // a stale file from a crash is replaced
  writeFileSync(pidFile, '999999\n')
  let out = ''
  const npx: ChildProcess = spawn(
    'npx',
    ['--no', 'kmslab', 'serve', '--state', 'memory', '--listen', '127.0.0.1:0', '--pid-file', pidFile],
    {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, npm_config_update_notifier: 'false', npm_config_cache: join(dir, '.npm') },
    },
  )
  npx.stdout!.on('data', (d) => {
    out += d
  })
  npx.stderr!.on('data', (d) => {
    out += d
  })
  const npxExit = new Promise<void>((done) => npx.on('exit', () => done()))
  let hostPid = 0
  t.teardown(() => {
    if (hostPid && alive(hostPid)) process.kill(hostPid, 'SIGKILL')
    if (npx.exitCode === null) npx.kill('SIGKILL')
  })
  await until(
    'the banner',
    () => {
      if (npx.exitCode !== null) throw new Error(`npx exited ${npx.exitCode} before listening: ${out}`)
      return /listening on 127\.0\.0\.1:\d+ \(pid \d+\)/.test(out)
    },
    60_000,
  )
  const [, port, pid] = /listening on 127\.0\.0\.1:(\d+) \(pid (\d+)\)/.exec(out)!.map(Number)
  hostPid = pid
  t.not(hostPid, npx.pid, 'npx is not the process that listens')
  t.equal(readFileSync(pidFile, 'utf8'), `${hostPid}\n`, 'the pid file names the listening process')
  t.equal(await portFree(port), false, 'the host holds its port')

  npx.kill('SIGTERM')
  await npxExit
  await until('the host to stop', () => !alive(hostPid), 10_000)
  t.ok(await portFree(port), 'the port is free again')
  t.notOk(existsSync(pidFile), 'the pid file is removed at a clean stop')
  t.match(out, /stopping/)
})

t.test('kill "$(cat PIDFILE)" stops a host started through npx', async (t) => {
  const dir = project(t.testdir())
  const pidFile = join(dir, 'kmslab.pid')
  const npx = spawn(
    'npx',
    ['--no', 'kmslab', 'serve', '--state', 'memory', '--listen', '127.0.0.1:0', '--pid-file', pidFile],
    {
      cwd: dir,
      stdio: 'ignore',
      env: { ...process.env, npm_config_update_notifier: 'false', npm_config_cache: join(dir, '.npm') },
    },
  )
  const npxExit = new Promise<number | null>((done) => npx.on('exit', (code) => done(code)))
  let hostPid = 0
  t.teardown(() => {
    if (hostPid && alive(hostPid)) process.kill(hostPid, 'SIGKILL')
    if (npx.exitCode === null) npx.kill('SIGKILL')
  })
  await until('the pid file', () => existsSync(pidFile), 60_000)
  hostPid = Number(readFileSync(pidFile, 'utf8'))
  process.kill(hostPid, 'SIGTERM')
  t.equal(await npxExit, 0, 'npx exits 0 with the host')
  t.notOk(alive(hostPid))
  t.notOk(existsSync(pidFile))
})
