#!/usr/bin/env node
// Checks that every module under src/ imports only from its own folder or from a lower layer,
// so the house stays layered: bytes below crypto below protocol logic below I/O below the CLI.
// A same-rank sibling (say server -> store) is refused too: the API layer composes them. Inside a
// layer, imports form no cycle (type-only imports included).
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const src = join(root, 'src')

// rank of each top-level unit of src/ (a folder, or a file directly in src/)
const RANK = {
  'errors.ts': 0,
  wire: 1,
  crypto: 2,
  catalog: 3,
  kms: 4,
  capture: 5,
  store: 5,
  client: 5,
  server: 5,
  load: 5,
  http: 5,
  dns: 5,
  host: 6,
  'index.ts': 7,
  cli: 8,
}

function unitOf(file) {
  const rel = relative(src, file).split(/[\\/]/)
  return rel[0]
}

function walk(dir, out = []) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) walk(p, out)
    else if (p.endsWith('.ts')) out.push(p)
  }
  return out
}

const problems = []
/** Every module's imports of other modules under src/ (type-only ones too): for the cycle check. */
const graph = new Map()
for (const file of walk(src)) {
  const edges = []
  graph.set(file, edges)
  const from = unitOf(file)
  if (!(from in RANK)) {
    problems.push(
      `${relative(root, file)}: src/${from} is not a known layer (add it to scripts/check-layers.mjs)`,
    )
    continue
  }
  const text = readFileSync(file, 'utf8')
  const re = /(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g
  for (const m of text.matchAll(re)) {
    const spec = m[1] ?? m[2]
    if (!spec.startsWith('.')) continue
    const target = resolve(dirname(file), spec)
    if (!target.startsWith(src)) continue
    edges.push(target.replace(/\.js$/, '.ts'))
    const to = unitOf(target.replace(/\.js$/, '.ts'))
    if (to === from) continue
    if (!(to in RANK)) {
      problems.push(`${relative(root, file)}: imports unknown layer src/${to}`)
    } else if (RANK[to] >= RANK[from]) {
      problems.push(`${relative(root, file)} (${from}) imports ${spec} (${to}): layers import only downward`)
    }
  }
}

// No module may reach itself through its imports, type-only imports included: a cycle makes the
// order of evaluation matter and two files that cannot be understood one without the other.
// Depth-first search with three colours; each cycle is reported once, from its first module.
const state = new Map() // file -> 'open' while on the path, 'done' after
const path = []
const seenCycles = new Set()
function visit(file) {
  state.set(file, 'open')
  path.push(file)
  for (const next of graph.get(file) ?? []) {
    if (!graph.has(next)) continue
    const s = state.get(next)
    if (s === 'open') {
      const cycle = path.slice(path.indexOf(next)).map((f) => relative(root, f))
      const key = [...cycle].sort().join(' ')
      if (!seenCycles.has(key)) {
        seenCycles.add(key)
        problems.push(`import cycle: ${[...cycle, cycle[0]].join(' -> ')}`)
      }
    } else if (s === undefined) visit(next)
  }
  path.pop()
  state.set(file, 'done')
}
for (const file of [...graph.keys()].sort()) if (!state.has(file)) visit(file)

if (problems.length > 0) {
  for (const p of problems) console.error(p)
  process.exit(1)
}
console.log('layers: every import points downward, and no module imports itself through others')
