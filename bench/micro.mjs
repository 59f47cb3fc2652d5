// What the micro benchmarks share: loading the build, and the sampling loop (run a batch for a
// while and count, a few times, and take the median).

export const SAMPLES = 5
export const SAMPLE_MS = 200

/** The named dist/ modules as one namespace, or an error saying to build first. */
export async function loadDist(...paths) {
  try {
    const modules = await Promise.all(paths.map((p) => import(new URL(`../dist/${p}`, import.meta.url).href)))
    return Object.assign({}, ...modules)
  } catch (e) {
    const names = paths.map((p) => `dist/${p}`).join(', ')
    throw new Error(`cannot load ${names} (build first: npx tsc -p tsconfig.build.json): ${e.message}`)
  }
}

export const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1]

const cpuMicros = () => {
  const u = process.cpuUsage()
  return u.user + u.system
}

/**
 * Calls `batch(done)` (which performs `perBatch` operations; `done` counts those before it) for
 * ~`ms` of wall time. Returns the rate per second of this process's CPU time (what one core can
 * do, and steadier than wall time when other work shares the machine) and per second of wall time.
 */
export function sample(batch, perBatch, ms) {
  let done = 0
  const cpu0 = cpuMicros()
  const start = performance.now()
  let now = start
  while (now - start < ms) {
    batch(done)
    done += perBatch
    now = performance.now()
  }
  const cpu = Math.max(1, cpuMicros() - cpu0)
  return { cpu: (done * 1e6) / cpu, wall: done / ((now - start) / 1000) }
}

/**
 * A row of operations per CPU second: the median of SAMPLES samples, after a warm-up so the JIT
 * has settled before samples count; the wall-time rate beside it.
 */
export function measureOps(name, unit, batch, opsPerBatch = 1, extra = {}, warmupMs = 100) {
  sample(batch, opsPerBatch, warmupMs)
  const runs = []
  for (let i = 0; i < SAMPLES; i++) runs.push(sample(batch, opsPerBatch, SAMPLE_MS))
  const samples = runs.map((r) => Math.round(r.cpu))
  return {
    name,
    unit,
    opsPerSec: median(samples),
    wallOpsPerSec: Math.round(median(runs.map((r) => r.wall))),
    samples,
    ...extra,
  }
}
