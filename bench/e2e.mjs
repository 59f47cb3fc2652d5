#!/usr/bin/env node
// End-to-end benchmark: `kmslab serve` as a child process (state in memory, then in a SQLite file
// in a temp dir), driven by `kmslab bench --json` as another child process, in the shapes below.
// Every run starts a fresh host, so its peak RSS (VmHWM) belongs to that shape; the host's CPU time
// (utime + stime from /proc) is sampled every 50 ms and cut to the bench's measured window. Each
// figure is the median of RUNS runs. Linux only (/proc). Host and load share this machine's cores,
// as they would on a one-box lab; the load average is recorded with every shape.
// Environment: KMSLAB_BENCH_DURATION (s per run, default 2), KMSLAB_BENCH_RUNS (default 3),
// KMSLAB_BENCH_STATES (memory,sqlite,workers2; also postgres), KMSLAB_BENCH_SHAPES (comma list of shape names),
// KMSLAB_BENCH_PG_URL (postgres://USER@HOST:PORT/DB: adds the postgres state's rows; a scratch database),
// KMSLAB_BENCH_HOST_BIN (another build's dist/cli/bin.js as the host, to compare two builds),
// KMSLAB_BENCH_CPU_REQUESTS (activations per run of the CPU matrix, default 20000),
// KMSLAB_BENCH_CPU_PROF (a directory: every host writes its V8 .cpuprofile there as it exits),
// KMSLAB_BENCH_HOST_ARGS (more `kmslab serve` flags for every host, space-separated: --http 127.0.0.1:0).
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { shebangNodeFlags } from './node-flags.mjs'

const BIN = fileURLToPath(new URL('../dist/cli/bin.js', import.meta.url))
const HOST_BIN = process.env.KMSLAB_BENCH_HOST_BIN ?? BIN
const DIST_BENCH = new URL('../dist/cli/bench.js', import.meta.url).href
const DIST_ARGS = new URL('../dist/cli/args.js', import.meta.url).href
const DURATION = Number(process.env.KMSLAB_BENCH_DURATION ?? 2)
const RUNS = Number(process.env.KMSLAB_BENCH_RUNS ?? 3)
// long enough for a fresh host to reach steady state (JIT, young generation size): 0.5 s left the
// new-connection shape ~15% below the rate the same host gives once warm
const WARMUP = 2
const CLK_TCK = 100
const IDLE_CONNECTIONS = 10_000
const CPU_REQUESTS = Number(process.env.KMSLAB_BENCH_CPU_REQUESTS ?? 20_000)
const CPU_PROF_DIR = process.env.KMSLAB_BENCH_CPU_PROF || null
const EXTRA_HOST_ARGS = (process.env.KMSLAB_BENCH_HOST_ARGS ?? '').split(' ').filter((a) => a !== '')

/** The issue's figures for this machine (2 cores shared by host and load), V6, state in memory. */
export const TARGETS = [
  { state: 'memory', shape: 'serial', metric: 'activationsPerSec', min: 10_000 },
  { state: 'memory', shape: 'new-conn', metric: 'activationsPerSec', min: 4_600 },
  { state: 'memory', shape: 'conn-4', metric: 'activationsPerSec', min: 25_000 },
  { state: 'sqlite', shape: 'conn-64', metric: 'activationsPerSec', min: 10_000 },
  { state: 'memory', shape: 'idle-10k', metric: 'hostPeakRssMb', max: 150 },
  { state: 'memory', shape: 'rate-half', metric: 'p99Ms', max: 5 },
]

/** name, what, bench arguments (rate shapes get --rate from the closed-loop maximum). */
const SHAPES = [
  { name: 'serial', what: '1 connection, serial', args: ['-c', '1'] },
  { name: 'serial-bp', what: '1 connection, serial, bench busy-polling', args: ['-c', '1', '--busy-poll'] },
  { name: 'conn-4', what: '4 connections', args: ['-c', '4'] },
  { name: 'conn-64', what: '64 connections', args: ['-c', '64'] },
  { name: 'new-conn', what: 'new connection per activation', args: ['--new-connection', '-c', '1'] },
  {
    name: 'new-conn-bp',
    what: 'new connection per activation, bench busy-polling',
    args: ['--new-connection', '-c', '1', '--busy-poll'],
  },
  { name: 'new-conn-16', what: 'new connection, 16 at a time', args: ['--new-connection', '-c', '16'] },
  {
    name: 'rate-half',
    what: 'open loop at half the maximum, 64 conns (host warmed first)',
    args: ['-c', '64'],
    rate: 0.5,
    warmHost: true,
  },
  {
    name: 'idle-10k',
    what: `${IDLE_CONNECTIONS} idle connections, 1 activation each`,
    args: ['-c', String(IDLE_CONNECTIONS), '-n', String(IDLE_CONNECTIONS), '--timeout', '30000'],
    fixed: true,
  },
]

/**
 * The CPU matrix: host CPU per activation, serial on one connection, a fixed number of activations
 * after a warm-up, with busy-poll off (what the work itself costs), for each protocol version; and
 * V6 once more with the host's default busy-poll, to show what the spin adds.
 */
export const CPU_SHAPES = [
  ...[4, 5, 6].map((v) => ({
    name: `cpu-v${v}`,
    what: `V${v}, 1 connection, serial, busy-poll off, ${CPU_REQUESTS} activations`,
    args: ['-c', '1', '--protocol', String(v), '-n', String(CPU_REQUESTS)],
    hostArgs: ['--busy-poll', '0'],
    fixed: true,
    warmHost: ['-c', '1', '-n', '5000', '--protocol', String(v)],
  })),
  {
    name: 'cpu-v6-bp',
    what: `V6, 1 connection, serial, default busy-poll, ${CPU_REQUESTS} activations`,
    args: ['-c', '1', '--protocol', '6', '-n', String(CPU_REQUESTS)],
    hostArgs: [],
    fixed: true,
    warmHost: ['-c', '1', '-n', '5000', '--protocol', '6'],
  },
]

/**
 * The states a host runs with: memory, SQLite, `--workers 2` (memory state in the primary) and
 * PostgreSQL (when KMSLAB_BENCH_PG_URL names a database). Scale-out states run the shapes the
 * scale-out issue names only.
 */
const PG_URL = process.env.KMSLAB_BENCH_PG_URL || null
const STATE_SETUP = {
  memory: { state: () => 'memory', args: [] },
  sqlite: { state: (dir) => join(dir, 'state.db'), args: [], dir: true },
  workers2: {
    state: () => 'memory',
    args: ['--workers', '2'],
    shapes: ['serial', 'conn-4', 'conn-64', 'new-conn'],
  },
  postgres: { state: () => PG_URL, args: [], shapes: ['serial', 'conn-64'] },
}
const defaultStates = () => `memory,sqlite,workers2${PG_URL ? ',postgres' : ''}`

// ---- /proc ----

/** The child processes of `pid` (the workers of a --workers host). */
function childrenOf(pid) {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number)
  } catch {
    return []
  }
}

/** CPU seconds of `pid` and its children; `per` holds each child's. */
function treeCpuSeconds(pid) {
  const own = cpuSeconds(pid)
  if (own === null) return null
  const per = {}
  let total = own
  for (const c of childrenOf(pid)) {
    const x = cpuSeconds(c)
    if (x === null) continue
    per[c] = x
    total += x
  }
  return { total, per }
}

function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(f[11]) + Number(f[12])) / CLK_TCK
  } catch {
    return null
  }
}

function peakRssMb(pid) {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Math.round(Number(m[1]) / 102.4) / 10 : null
  } catch {
    return null
  }
}

/** CPU seconds at Unix time `t` (ms), interpolated between samples [{ t, cpu }]. */
function cpuAt(samples, t) {
  let prev = samples[0]
  for (const s of samples) {
    if (s.t >= t) {
      if (s === prev || s.t === prev.t) return s.cpu
      return prev.cpu + ((s.cpu - prev.cpu) * (t - prev.t)) / (s.t - prev.t)
    }
    prev = s
  }
  return prev.cpu
}

// ---- children ----

/**
 * Spawns `node [the script's #! flags] script ...` with a raised open-file limit (the idle shape
 * needs 10,000 sockets on each side): a child runs as the installed `kmslab` command would.
 */
function spawnNode(args, nodeFlags = []) {
  const flags = [...(args[0]?.endsWith('.js') ? shebangNodeFlags(args[0]) : []), ...nodeFlags]
  return spawn(
    'sh',
    ['-c', 'ulimit -n 65536 2>/dev/null || true; exec "$0" "$@"', process.execPath, ...flags, ...args],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
}

/** A child's stdout and stderr so far, as text. */
function collect(child) {
  const io = { out: '', err: '' }
  child.stdout.on('data', (d) => {
    io.out += d
  })
  child.stderr.on('data', (d) => {
    io.err += d
  })
  return io
}

/** `kmslab bench` as the user runs it; before the lead registers the verb, the verb module itself. */
function benchArgs(args) {
  const registered = readFileSync(fileURLToPath(new URL('../dist/cli/verbs.js', import.meta.url)), 'utf8')
  if (registered.includes('benchVerb')) return [BIN, 'bench', ...args]
  const script = `import { benchVerb } from '${DIST_BENCH}'; import { processIo } from '${DIST_ARGS}';
    benchVerb.run(process.argv.slice(1), processIo).then((c) => { process.exitCode = c })`
  return ['--input-type=module', '-e', script, ...args]
}

async function startHost(state, hostArgs = [], profName = 'host') {
  const prof = CPU_PROF_DIR
    ? [
        '--cpu-prof',
        '--cpu-prof-dir',
        CPU_PROF_DIR,
        '--cpu-prof-name',
        `${profName}-${Date.now()}.cpuprofile`,
      ]
    : []
  const child = spawnNode(
    [
      HOST_BIN,
      'serve',
      '--quiet',
      '--listen',
      '127.0.0.1:0',
      '--state',
      state,
      '--max-connections',
      '20000',
      '--idle-timeout',
      '60',
      ...hostArgs,
      ...EXTRA_HOST_ARGS,
    ],
    prof,
  )
  const io = collect(child)
  const exited = new Promise((r) => child.on('exit', (code, signal) => r(code ?? signal)))
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`kmslab serve did not start: ${io.err}`)), 15_000)
    const check = () => {
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(io.out)
      if (m && /HWID/.test(io.out)) {
        clearTimeout(timer)
        resolve(Number(m[1]))
      }
    }
    child.stdout.on('data', check)
    exited.then((code) => {
      clearTimeout(timer)
      reject(new Error(`kmslab serve exited ${code}: ${io.err}`))
    })
  })
  return {
    pid: child.pid,
    port,
    stderr: () => io.err,
    async stop() {
      child.kill('SIGTERM')
      const t = setTimeout(() => child.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(t)
    },
  }
}

/** Runs one bench child against `host`, sampling the host's CPU meanwhile. */
async function runBench(host, args) {
  const samples = []
  const sample = () => {
    const tree = treeCpuSeconds(host.pid)
    if (tree !== null) samples.push({ t: Date.now(), cpu: tree.total, per: tree.per })
  }
  sample()
  const timer = setInterval(sample, 50)
  const child = spawnNode(benchArgs([`127.0.0.1:${host.port}`, ...args, '--json']))
  const io = collect(child)
  const code = await new Promise((r) => child.on('exit', (c, s) => r(c ?? s)))
  clearInterval(timer)
  sample()
  let report
  try {
    report = JSON.parse(io.out)
  } catch {
    throw new Error(
      `kmslab bench ${args.join(' ')} exited ${code} without a JSON summary: ${io.err || io.out}`,
    )
  }
  const [from, to] = report.measureWindowEpochMs
  const hostCpuS = cpuAt(samples, to) - cpuAt(samples, from)
  // each worker's part of the workers' CPU over the run: both serve when neither takes most of it
  const first = samples[0]?.per ?? {}
  const last = samples.at(-1)?.per ?? {}
  const used = Object.keys(last).map((c) => last[c] - (first[c] ?? 0))
  const sum = used.reduce((a, b) => a + b, 0)
  const workerMaxShare = used.length > 1 && sum > 0 ? Math.max(...used) / sum : null
  return { report, hostCpuS, workerMaxShare, exitCode: code }
}

// ---- shapes ----

const median = (xs) => {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b)
  return v.length === 0 ? null : v[v.length >> 1]
}
const round = (x, d = 1) => (x === null ? null : Math.round(x * 10 ** d) / 10 ** d)

async function runShape(stateName, shape, rate, log) {
  const runs = []
  const load = [loadavg()[0]]
  for (let i = 0; i < RUNS; i++) {
    const setup = STATE_SETUP[stateName]
    const dir = setup.dir ? mkdtempSync(join(tmpdir(), 'kmslab-bench-')) : null
    const host = await startHost(
      setup.state(dir),
      [...setup.args, ...(shape.hostArgs ?? [])],
      `${stateName}-${shape.name}-run${i + 1}`,
    )
    try {
      // an open loop holds a fresh host's JIT warm-up against it as a backlog: warm the host first
      if (shape.warmHost)
        await runBench(
          host,
          Array.isArray(shape.warmHost) ? shape.warmHost : ['-c', '4', '-d', '1', '--warmup', '0'],
        )
      const args = shape.fixed
        ? [...shape.args]
        : [...shape.args, '-d', String(DURATION), '--warmup', String(WARMUP)]
      if (rate !== undefined) args.push('--rate', String(rate))
      const r = await runBench(host, args)
      const rep = r.report
      runs.push({
        activationsPerSec: rep.activationsPerSec,
        activations: rep.activations,
        requests: rep.requests,
        p50Ms: rep.latencyMs.p50,
        p90Ms: rep.latencyMs.p90,
        p99Ms: rep.latencyMs.p99,
        maxMs: rep.latencyMs.max,
        errors: rep.errors,
        errorsByKind: rep.errorsByKind,
        warmupErrorsByKind: rep.warmupErrorsByKind,
        durationS: rep.durationS,
        hostCpuS: round(r.hostCpuS, 3),
        hostCpuPct: round((100 * r.hostCpuS) / rep.durationS),
        hostCpuUsPerActivation: rep.activations > 0 ? round((1e6 * r.hostCpuS) / rep.activations) : null,
        benchCpuPct: round((100 * rep.benchCpuS) / rep.durationS),
        benchCpuUsPerActivation: rep.activations > 0 ? round((1e6 * rep.benchCpuS) / rep.activations) : null,
        hostPeakRssMb: peakRssMb(host.pid),
        workerMaxShare: round(r.workerMaxShare, 2),
        sendLagP99Ms: rep.sendLagMs?.p99 ?? null,
        benchExit: r.exitCode,
      })
    } finally {
      await host.stop()
      if (dir) rmSync(dir, { recursive: true, force: true })
    }
    load.push(loadavg()[0])
  }
  const pick = (k) => median(runs.map((r) => r[k]))
  const errorsByKind = {}
  for (const r of runs)
    for (const [k, n] of Object.entries({ ...r.errorsByKind })) errorsByKind[k] = (errorsByKind[k] ?? 0) + n
  const row = {
    state: stateName,
    shape: shape.name,
    what: shape.what,
    rate: rate ?? null,
    runs: runs.length,
    activationsPerSec: pick('activationsPerSec'),
    p50Ms: pick('p50Ms'),
    p90Ms: pick('p90Ms'),
    p99Ms: pick('p99Ms'),
    maxMs: pick('maxMs'),
    errors: runs.reduce((n, r) => n + r.errors, 0),
    errorsByKind,
    hostPeakRssMb: pick('hostPeakRssMb'),
    hostCpuPct: pick('hostCpuPct'),
    hostCpuUsPerActivation: pick('hostCpuUsPerActivation'),
    workerMaxShare: pick('workerMaxShare'),
    benchCpuPct: pick('benchCpuPct'),
    benchCpuUsPerActivation: pick('benchCpuUsPerActivation'),
    sendLagP99Ms: pick('sendLagP99Ms'),
    loadAvg1m: { min: round(Math.min(...load), 2), max: round(Math.max(...load), 2) },
    samples: runs,
  }
  log?.(row)
  return row
}

/** The CPU matrix for each state (rows as run() gives them). */
export async function runCpu({ log } = {}) {
  const states = (process.env.KMSLAB_BENCH_STATES ?? 'memory,sqlite')
    .split(',')
    .filter((s) => !STATE_SETUP[s]?.shapes)
  const rows = []
  for (const state of states)
    for (const shape of CPU_SHAPES) rows.push(await runShape(state, shape, undefined, log))
  return rows
}

/** One line per state: host CPU µs per activation of each CPU-matrix shape. */
export function cpuSummary(rows) {
  const states = [...new Set(rows.map((r) => r.state))]
  return states.map((state) => {
    const cell = (name) =>
      rows.find((r) => r.state === state && r.shape === name)?.hostCpuUsPerActivation ?? '-'
    return `host CPU µs/activation, ${state.padEnd(6)} (serial, busy-poll off): V4 ${cell('cpu-v4')}  V5 ${cell('cpu-v5')}  V6 ${cell('cpu-v6')};  V6 with default busy-poll ${cell('cpu-v6-bp')}`
  })
}

/** Runs every shape for each state; returns the rows (medians, with every run in `samples`). */
export async function run({ log } = {}) {
  const states = (process.env.KMSLAB_BENCH_STATES ?? defaultStates()).split(',')
  const only = process.env.KMSLAB_BENCH_SHAPES?.split(',')
  const rows = []
  for (const state of states) {
    if (!STATE_SETUP[state]) throw new Error(`KMSLAB_BENCH_STATES: unknown state ${state}`)
    if (state === 'postgres' && !PG_URL) throw new Error('the postgres state needs KMSLAB_BENCH_PG_URL')
    let max = 0
    for (const shape of SHAPES) {
      if (only && !only.includes(shape.name)) continue
      if (STATE_SETUP[state].shapes && !STATE_SETUP[state].shapes.includes(shape.name)) continue
      let rate
      if (shape.rate !== undefined) {
        if (max === 0) continue
        rate = Math.round(max * shape.rate)
      }
      const row = await runShape(state, shape, rate, log)
      if (
        !shape.rate &&
        !shape.fixed &&
        !shape.args.includes('--new-connection') &&
        !shape.args.includes('--busy-poll')
      )
        max = Math.max(max, row.activationsPerSec ?? 0)
      rows.push(row)
    }
  }
  return rows
}

/** Each target with the measured value and whether it holds. */
export function judge(rows) {
  return TARGETS.map((t) => {
    const row = rows.find((r) => r.state === t.state && r.shape === t.shape)
    const value = row ? row[t.metric] : null
    const ok = value === null ? null : t.min !== undefined ? value >= t.min : value <= t.max
    return { ...t, value, ok }
  })
}

const COLUMNS = [
  ['state', (r) => r.state],
  ['shape', (r) => r.shape + (r.rate ? ` @${r.rate}/s` : '')],
  ['act/s', (r) => r.activationsPerSec?.toLocaleString('en-US')],
  ['p50 ms', (r) => r.p50Ms],
  ['p90 ms', (r) => r.p90Ms],
  ['p99 ms', (r) => r.p99Ms],
  ['max ms', (r) => r.maxMs],
  ['errors', (r) => r.errors],
  ['host RSS MB', (r) => r.hostPeakRssMb],
  ['host CPU %', (r) => r.hostCpuPct],
  ['host µs/act', (r) => r.hostCpuUsPerActivation],
  ['max worker share', (r) => r.workerMaxShare],
  ['bench CPU %', (r) => r.benchCpuPct],
  ['bench µs/act', (r) => r.benchCpuUsPerActivation],
  ['load 1m', (r) => `${r.loadAvg1m.min}-${r.loadAvg1m.max}`],
]

/** The rows as a plain-text table. */
export function table(rows) {
  const cells = rows.map((r) => COLUMNS.map(([, f]) => String(f(r) ?? '-')))
  const widths = COLUMNS.map(([h], i) => Math.max(h.length, ...cells.map((c) => c[i].length)))
  const line = (c) => c.map((x, i) => (i < 2 ? x.padEnd(widths[i]) : x.padStart(widths[i]))).join('  ')
  return [line(COLUMNS.map(([h]) => h)), ...cells.map(line)].join('\n')
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const rows = await run({ log: (r) => console.error(`${r.state} ${r.shape}: ${r.activationsPerSec}/s`) })
  console.log(table(rows))
  for (const j of judge(rows))
    console.log(
      `${j.ok ? 'ok  ' : 'MISS'} ${j.state} ${j.shape} ${j.metric} ${j.value} (${j.min !== undefined ? `>= ${j.min}` : `<= ${j.max}`})`,
    )
  for (const r of rows)
    if (r.errors > 0) console.log(`errors ${r.state} ${r.shape}: ${JSON.stringify(r.errorsByKind)}`)
}
