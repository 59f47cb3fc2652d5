#!/usr/bin/env node
// Micro-benchmark of src/capture, run against the build (npx tsc -p tsconfig.build.json): MB/s of
// capturePdus (file -> packets -> TCP streams -> DCE-RPC PDUs) over the recorded captures held
// in memory. Two shapes: every file of pcaps/ decoded one after another (small files, per-call
// overhead counts), and one large classic pcap made by concatenating the records of all the
// .pcap files several times over (many connections in one pass). Each figure is the median of
// 5 samples of ~200 ms after a warm-up. This script prints numbers only; targets are judged elsewhere.
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { loadDist, median, SAMPLE_MS, SAMPLES, sample } from './micro.mjs'

const MERGED_TARGET_BYTES = 8 * 1024 * 1024
const PCAPS = join(dirname(fileURLToPath(import.meta.url)), '..', 'pcaps')

function captures() {
  return readdirSync(PCAPS)
    .filter((n) => /\.pcap(ng)?$/.test(n))
    .sort()
    .map((n) => ({ name: n, bytes: new Uint8Array(readFileSync(join(PCAPS, n))) }))
}

/**
 * One classic pcap holding the records of every .pcap file whose header matches the first one
 * (all of ours: little-endian, microseconds, Ethernet), repeated up to `target` bytes. Repeated
 * connections reuse their 4-tuples; their SYN after the earlier copy's FIN starts a new one.
 */
function merged(files, target) {
  const classic = files.filter((f) => f.name.endsWith('.pcap'))
  const header = classic[0].bytes.subarray(0, 24)
  const same = classic.filter((f) => Buffer.compare(f.bytes.subarray(0, 24), header) === 0)
  const records = same.map((f) => f.bytes.subarray(24))
  const round = records.reduce((n, r) => n + r.length, 0)
  const copies = Math.max(1, Math.floor((target - 24) / round))
  const out = new Uint8Array(24 + copies * round)
  out.set(header, 0)
  let at = 24
  for (let i = 0; i < copies; i++) {
    for (const r of records) {
      out.set(r, at)
      at += r.length
    }
  }
  return { bytes: out, files: same.length, copies }
}

/** MB/s (10^6 bytes) of wall time for ~`ms` of `batch`, which processes `bytesPerBatch`. */
const megabytesPerSec = (batch, bytesPerBatch, ms) => sample(batch, bytesPerBatch, ms).wall / 1e6

function measure(name, batch, bytesPerBatch, extra) {
  megabytesPerSec(batch, bytesPerBatch, 100) // warm-up, so the JIT has settled before samples count
  const samples = []
  for (let i = 0; i < SAMPLES; i++) samples.push(+megabytesPerSec(batch, bytesPerBatch, SAMPLE_MS).toFixed(2))
  return { name, unit: 'MB/s', opsPerSec: median(samples), samples, ...extra }
}

/** Runs every measurement; returns rows of { name, unit, opsPerSec (here MB/s), samples, ... }. */
export async function run() {
  const c = await loadDist('capture/index.js')
  const files = captures()
  const total = files.reduce((n, f) => n + f.bytes.length, 0)
  let pdus = 0
  for (const f of files)
    for (const x of c.capturePdus(f.bytes)) pdus += x.clientPdus.length + x.serverPdus.length
  const big = merged(files, MERGED_TARGET_BYTES)
  const bigConnections = c.capturePdus(big.bytes).length
  return [
    measure(
      `capturePdus, ${files.length} files one by one (${(total / 1024).toFixed(0)} KiB)`,
      () => {
        for (const f of files) c.capturePdus(f.bytes)
      },
      total,
      { files: files.length, bytes: total, pdus },
    ),
    measure(
      `capturePdus, ${big.files} files x ${big.copies} merged (${(big.bytes.length / 1048576).toFixed(1)} MiB)`,
      () => c.capturePdus(big.bytes),
      big.bytes.length,
      { bytes: big.bytes.length, connections: bigConnections },
    ),
  ]
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const rows = await run()
  const width = Math.max(...rows.map((r) => r.name.length))
  for (const r of rows) {
    console.log(`${r.name.padEnd(width)}  ${r.opsPerSec.toFixed(1).padStart(8)} ${r.unit}`)
  }
}
