#!/usr/bin/env node
// `npm run bench`: the micro-benchmarks of the protocol core, the state store, the capture reader
// and the catalogue, then the end-to-end shapes (bench/e2e.mjs: `kmslab serve` driven by
// `kmslab bench`). Prints the tables and the targets, and writes everything as JSON to
// bench/results/ (git-ignored): bench-<time>.json and latest.json.
// The host's CPU per activation (serial, V4/V5/V6, memory and SQLite state) ends the run as one
// summary line per state.
// Switches (`npm run bench -- SWITCH`):
//   --only micro|e2e|cpu   one part (also KMSLAB_BENCH_ONLY): the micro-benchmarks, the end-to-end
//                          shapes, or only the CPU-per-activation matrix
//   --cpu-prof[=DIR]       every host started writes its V8 .cpuprofile into DIR (default
//                          bench/results/cpuprofile/), for Chrome DevTools or speedscope
// e2e.mjs documents its own environment variables.
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const MICRO = ['micro-crypto', 'micro-kms', 'micro-store', 'micro-capture', 'micro-catalog']
const { values: argv } = parseArgs({
  options: { only: { type: 'string' }, 'cpu-prof': { type: 'string' } },
  args: process.argv.slice(2).map((a) => (a === '--cpu-prof' ? '--cpu-prof=' : a)),
})
const only = argv.only ?? process.env.KMSLAB_BENCH_ONLY
if (only !== undefined && !['micro', 'e2e', 'cpu'].includes(only)) {
  console.error(`bench: --only takes micro, e2e or cpu, got ${JSON.stringify(only)}`)
  process.exit(64)
}
if (argv['cpu-prof'] !== undefined) {
  const dir = argv['cpu-prof'] || fileURLToPath(new URL('./results/cpuprofile/', import.meta.url))
  mkdirSync(dir, { recursive: true })
  // read by e2e.mjs as it starts each host
  process.env.KMSLAB_BENCH_CPU_PROF = resolve(dir)
}

const t0 = performance.now()
const load = [loadavg()[0]]
const result = {
  startedAt: new Date().toISOString(),
  machine: { cpus: cpus().length, model: cpus()[0]?.model ?? '?', node: process.version },
  micro: {},
  e2e: null,
  cpu: null,
  targets: [],
}

function microLine(r) {
  const value = r.opsPerSec ?? r.value
  const target =
    r.target !== undefined
      ? `  target >= ${r.target.toLocaleString('en-US')}: ${value >= r.target ? 'ok' : 'MISS'}`
      : r.targetMs !== undefined
        ? `  target < ${r.targetMs} ms: ${value < r.targetMs ? 'ok' : 'MISS'}`
        : ''
  return `  ${r.name.padEnd(64)} ${value.toLocaleString('en-US').padStart(14)} ${r.unit}${target}`
}

if (only === undefined || only === 'micro') {
  for (const name of MICRO) {
    const started = performance.now()
    const rows = await (await import(`./${name}.mjs`)).run()
    result.micro[name] = rows
    console.log(`${name} (${((performance.now() - started) / 1000).toFixed(1)} s)`)
    for (const r of rows) console.log(microLine(r))
    for (const r of rows) {
      if (r.target !== undefined)
        result.targets.push({ what: r.name, value: r.opsPerSec, min: r.target, ok: r.opsPerSec >= r.target })
    }
    load.push(loadavg()[0])
  }
}

const e2e = only === 'micro' ? null : await import('./e2e.mjs')
const logRow = (r) => {
  load.push(r.loadAvg1m.max)
  const errors = r.errors > 0 ? `, errors ${JSON.stringify(r.errorsByKind)}` : ''
  console.log(`  ${r.state} ${r.shape}: ${r.activationsPerSec?.toLocaleString('en-US')}/s${errors}`)
}

if (only === undefined || only === 'e2e') {
  console.log(
    '\nend to end: kmslab serve driven by kmslab bench (median of runs; host and bench share the CPUs)',
  )
  const rows = await e2e.run({ log: logRow })
  result.e2e = rows
  console.log(`\n${e2e.table(rows)}`)
  for (const j of e2e.judge(rows)) {
    const bound = j.min !== undefined ? `>= ${j.min.toLocaleString('en-US')}` : `<= ${j.max}`
    result.targets.push({ what: `${j.state} ${j.shape} ${j.metric}`, value: j.value, ...j })
    console.log(`  ${j.ok ? 'ok  ' : 'MISS'} ${j.state} ${j.shape}: ${j.metric} ${j.value} (target ${bound})`)
  }
}

if (e2e && (only === undefined || only === 'cpu')) {
  console.log(
    '\nhost CPU per activation: serial, 1 connection, a fixed number of activations after a warm-up',
  )
  const rows = await e2e.runCpu({ log: logRow })
  result.cpu = rows
  console.log(`\n${e2e.table(rows)}\n`)
  for (const line of e2e.cpuSummary(rows)) console.log(line)
}
if (process.env.KMSLAB_BENCH_CPU_PROF)
  console.log(`host .cpuprofile files in ${process.env.KMSLAB_BENCH_CPU_PROF}`)

load.push(loadavg()[0])
result.loadAvg1m = { min: Math.min(...load), max: Math.max(...load) }
result.seconds = Math.round((performance.now() - t0) / 100) / 10
const dir = fileURLToPath(new URL('./results/', import.meta.url))
mkdirSync(dir, { recursive: true })
const stamp = result.startedAt.replace(/[:.]/g, '-')
const json = `${JSON.stringify(result, null, 2)}\n`
writeFileSync(`${dir}bench-${stamp}.json`, json)
writeFileSync(`${dir}latest.json`, json)
console.log(
  `\n${result.seconds} s, load average (1 min) ${result.loadAvg1m.min.toFixed(2)}-${result.loadAvg1m.max.toFixed(2)} on ${result.machine.cpus} CPUs; written to bench/results/bench-${stamp}.json`,
)
