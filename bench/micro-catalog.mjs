#!/usr/bin/env node
// Micro-benchmark of src/catalog, run against the build (npx tsc -p tsconfig.build.json). What
// counts is start-up: loadCatalog() (read data/products.json, check every field, merge, index) in a
// fresh process, where nothing is warm yet; it is measured in 9 child processes and the median
// reported, beside the module import and a warm reload in this process. Lookups (exact alias,
// substring search) are the median of 5 samples of ~200 ms. Target: a cold load under 20 ms.
// This script prints numbers only; targets are judged elsewhere.
import { execFileSync } from 'node:child_process'
import { pathToFileURL } from 'node:url'
import { loadDist, median, SAMPLE_MS, SAMPLES, sample } from './micro.mjs'

const CHILDREN = 9
const DIST = new URL('../dist/catalog/index.js', import.meta.url)

const round = (x) => +x.toFixed(2)

/** One fresh process: ms to import the module, then ms of the first loadCatalog(). */
function coldOnce() {
  const code = `
    const t0 = performance.now()
    const m = await import(${JSON.stringify(DIST.href)})
    const t1 = performance.now()
    m.loadCatalog()
    const t2 = performance.now()
    process.stdout.write(JSON.stringify({ importMs: t1 - t0, loadMs: t2 - t1 }))`
  return JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8' }))
}

function opsPerSec(fn) {
  const hundred = () => {
    for (let i = 0; i < 100; i++) fn()
  }
  const rates = []
  for (let s = 0; s < SAMPLES; s++) rates.push(sample(hundred, 100, SAMPLE_MS).wall)
  return { value: Math.round(median(rates)), samples: rates.map(Math.round) }
}

/** Runs every measurement; returns rows of { name, unit, value, samples[, targetMs] }. */
export async function run() {
  const c = await loadDist('catalog/index.js')
  const cold = Array.from({ length: CHILDREN }, coldOnce)
  for (let i = 0; i < 3; i++) c.loadCatalog()
  const warm = Array.from({ length: 15 }, () => {
    const t = performance.now()
    c.loadCatalog()
    return performance.now() - t
  })
  const catalog = c.defaultCatalog()
  return [
    {
      name: 'loadCatalog, cold (fresh process)',
      unit: 'ms',
      value: round(median(cold.map((x) => x.loadMs))),
      samples: cold.map((x) => round(x.loadMs)),
      targetMs: 20,
    },
    {
      name: 'import dist/catalog, cold',
      unit: 'ms',
      value: round(median(cold.map((x) => x.importMs))),
      samples: cold.map((x) => round(x.importMs)),
    },
    { name: 'loadCatalog, warm', unit: 'ms', value: round(median(warm)), samples: warm.map(round) },
    { name: "findSku('win11 pro') (alias)", unit: 'ops/s', ...opsPerSec(() => catalog.findSku('win11 pro')) },
    {
      name: "searchSkus('server') (substring)",
      unit: 'ops/s',
      ...opsPerSec(() => catalog.searchSkus('server')),
    },
    {
      name: 'epidFamilyForKmsId',
      unit: 'ops/s',
      ...opsPerSec(() => catalog.epidFamilyForKmsId('a8973cb5-bf03-0a4c-9cef-703099645ab3')),
    },
  ]
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const rows = await run()
  const width = Math.max(...rows.map((r) => r.name.length))
  for (const r of rows) {
    const target = r.targetMs === undefined ? '' : `  (target < ${r.targetMs} ms)`
    console.log(`${r.name.padEnd(width)}  ${r.value.toLocaleString('en-US').padStart(12)} ${r.unit}${target}`)
  }
}
