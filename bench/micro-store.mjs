#!/usr/bin/env node
// Micro-benchmarks of src/kms/counter and src/store, run against the build (npx tsc -p
// tsconfig.build.json). Figures: counter records/s; SQLite commits at batch sizes 1, 16 and 64
// (one row of history + one pool upsert per request) with synchronous NORMAL (the default: safe
// against kill -9) and FULL (fsync per commit: safe against power loss too); the group committer
// fed by 64 concurrent "connections" that each wait for their commit before the next request,
// which is the host's shape without the network; and the cost of the quick_check at open. Each
// figure is the median of 3 samples of ~300 ms, every SQLite sample on a fresh file in a temp dir.
// This script prints numbers only; targets are judged elsewhere.
import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { loadDist, median, sample } from './micro.mjs'

const SAMPLES = 3
const SAMPLE_MS = 300
const T0 = Date.UTC(2024, 0, 15, 12, 0, 0)
const W = '55c92734-d682-4d71-983e-d6ec3f16059f'

const cmidOf = (i) => `6f1e0a52-7c3d-4b8e-9a10-${i.toString(16).padStart(12, '0')}`

function row(i) {
  return {
    time: T0 + i,
    clientAddress: '192.0.2.10:49712',
    workstation: 'kmslab-client.example',
    cmid: cmidOf(i),
    previousCmid: '00000000-0000-0000-0000-000000000000',
    appId: W,
    skuId: '2de67392-b7a7-462a-b1ca-108dd189f588',
    kmsId: '58e2134f-8e11-4d17-9cb2-91069c151148',
    requiredCount: 25,
    reportedCount: 50,
    hresult: 0,
    protocol: '6.0',
    vm: false,
    licenseStatus: 2,
    clientTime: T0,
    graceMinutes: 43200,
    epid: '03612-00206-556-123727-03-1033-17763.0000-2972018',
    rules: [],
  }
}

function batchOf(from, size) {
  const history = []
  const upserts = []
  for (let i = from; i < from + size; i++) {
    history.push(row(i))
    upserts.push({ appId: W, cmid: cmidOf(i % 5000), lastSeen: T0 + i })
  }
  return { history, upserts, removals: [] }
}

/** Operations per second of wall time for ~ms of `step(done)`, which does `per` operations. */
const sampleSync = (step, per, ms = SAMPLE_MS) => sample(step, per, ms).wall

function measure(name, unit, sample) {
  const samples = []
  for (let i = 0; i < SAMPLES; i++) samples.push(Math.round(sample()))
  return { name, unit, opsPerSec: median(samples), samples }
}

async function measureAsync(name, unit, sample) {
  const samples = []
  for (let i = 0; i < SAMPLES; i++) samples.push(Math.round(await sample()))
  return { name, unit, opsPerSec: median(samples), samples }
}

function withTempDir(fn) {
  const dir = mkdtempSync(join(tmpdir(), 'kmslab-bench-'))
  try {
    return fn(dir)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

async function withTempDirAsync(fn) {
  const dir = mkdtempSync(join(tmpdir(), 'kmslab-bench-'))
  try {
    return await fn(dir)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

function counterRows(m) {
  const cmids = Array.from({ length: 100_000 }, (_, i) => cmidOf(i))
  const churn = () => {
    const c = new m.ActivationCounter()
    c.record(W, cmids[0], 25, T0) // warm
    return sampleSync((n) => c.record(W, cmids[n % cmids.length], 25, T0 + n), 1)
  }
  const refresh = () => {
    const c = new m.ActivationCounter()
    return sampleSync((n) => c.record(W, cmids[n % 50], 25, T0 + n), 1)
  }
  return [
    measure('counter.record, new CMIDs (pool full, one dropped each)', 'records/s', churn),
    measure('counter.record, 50 CMIDs renewing', 'records/s', refresh),
  ]
}

function commitRows(m) {
  const rows = []
  for (const synchronous of ['normal', 'full']) {
    for (const size of [1, 16, 64]) {
      rows.push(
        measure(`SQLite commit, ${synchronous.toUpperCase()}, batch ${size}`, 'rows/s', () =>
          withTempDir((dir) => {
            const s = m.openStateStore(join(dir, 'state.db'), { synchronous })
            try {
              return sampleSync((n) => s.commit(batchOf(n, size)), size)
            } finally {
              s.close()
            }
          }),
        ),
      )
    }
  }
  for (const size of [1, 64]) {
    rows.push(
      measure(`memory commit, batch ${size}`, 'rows/s', () => {
        const s = m.openStateStore('memory')
        return sampleSync((n) => s.commit(batchOf(n, size)), size)
      }),
    )
  }
  return rows
}

/** 64 loops, each: counter.record, submit its batch, await the commit, next request. */
async function groupSample(m, store, ms = SAMPLE_MS) {
  const counter = new m.ActivationCounter()
  const g = new m.GroupCommitter(store)
  let n = 0
  const start = performance.now()
  const client = async () => {
    while (performance.now() - start < ms) {
      const i = n++
      const o = counter.record(W, cmidOf(i % 5000), 25, T0 + i)
      await g.submit({
        history: [row(i)],
        upserts: [{ appId: o.appId, cmid: o.cmid, lastSeen: o.lastSeen }],
        removals: o.removed,
      })
    }
  }
  await Promise.all(Array.from({ length: 64 }, client))
  const rate = n / ((performance.now() - start) / 1000)
  await g.close()
  return rate
}

async function groupRows(m) {
  const rows = []
  for (const synchronous of ['normal', 'full']) {
    rows.push(
      await measureAsync(`group commit, 64 clients, SQLite ${synchronous.toUpperCase()}`, 'requests/s', () =>
        withTempDirAsync(async (dir) => {
          const s = m.openStateStore(join(dir, 'state.db'), { synchronous })
          try {
            return await groupSample(m, s)
          } finally {
            s.close()
          }
        }),
      ),
    )
  }
  rows.push(
    await measureAsync('group commit, 64 clients, memory', 'requests/s', () =>
      groupSample(m, m.openStateStore('memory')),
    ),
  )
  return rows
}

/** Opening a state file whose history holds 200,000 rows, with and without quick_check. */
function openRows(m) {
  return withTempDir((dir) => {
    const path = join(dir, 'state.db')
    const s = m.openStateStore(path)
    for (let i = 0; i < 200_000; i += 1000) s.commit(batchOf(i, 1000))
    s.close()
    const mb = Math.round(statSync(path).size / 1e6)
    const opensPerSec = (check) => () => {
      const start = performance.now()
      m.openStateStore(path, { check }).close()
      return 1000 / (performance.now() - start)
    }
    return [
      measure(`open, 200k history rows (${mb} MB), quick_check`, 'opens/s', opensPerSec(true)),
      measure(`open, 200k history rows (${mb} MB), no check`, 'opens/s', opensPerSec(false)),
    ]
  })
}

/** Runs every measurement; returns rows of { name, unit, opsPerSec, samples }. */
export async function run() {
  const m = await loadDist('store/index.js', 'kms/counter.js')
  return [...counterRows(m), ...commitRows(m), ...(await groupRows(m)), ...openRows(m)]
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const rows = await run()
  const width = Math.max(...rows.map((r) => r.name.length))
  for (const r of rows) {
    const ms = r.unit === 'opens/s' ? `  (${(1000 / r.opsPerSec).toFixed(1)} ms each)` : ''
    console.log(`${r.name.padEnd(width)}  ${r.opsPerSec.toLocaleString('en-US').padStart(12)} ${r.unit}${ms}`)
  }
}
