#!/usr/bin/env node
// Micro-benchmarks of src/crypto, run against the build (npx tsc -p tsconfig.build.json). Each
// figure is the median of 5 samples of ~200 ms after a short warm-up, counted per second of CPU
// time of this process (wall-clock rates are returned too, as wallOpsPerSec). Block figures are set against
// node:crypto aes-128-ecb measured in the same process two ways: one update() per 16-byte block
// (what a caller handling one small message at a time pays) and 4 KiB per update() (OpenSSL's bulk
// speed with AES-NI, the ceiling). This script prints numbers only; targets are judged elsewhere.
import { createCipheriv, createDecipheriv } from 'node:crypto'
import { pathToFileURL } from 'node:url'
import { loadDist, measureOps } from './micro.mjs'

const BUF_BLOCKS = 256
/** The §9.1 request time; one HMAC slot. */
const T = 133497936000000000n
const C1 = 0x00000022816889bdn

/** A short warm-up (50 ms) is enough for the block and hash loops. */
const measure = (name, unit, batch, opsPerBatch = 1) => measureOps(name, unit, batch, opsPerBatch, {}, 50)

function blockRows(label, cipher, buf) {
  return [
    measure(
      `${label} encryptBlock`,
      'blocks/s',
      () => {
        for (let o = 0; o < buf.length; o += 16) cipher.encryptBlock(buf, o, buf, o)
      },
      BUF_BLOCKS,
    ),
    measure(
      `${label} decryptBlock`,
      'blocks/s',
      () => {
        for (let o = 0; o < buf.length; o += 16) cipher.decryptBlock(buf, o, buf, o)
      },
      BUF_BLOCKS,
    ),
  ]
}

function nodeRows(key, buf) {
  const enc = createCipheriv('aes-128-ecb', key, null).setAutoPadding(false)
  const dec = createDecipheriv('aes-128-ecb', key, null).setAutoPadding(false)
  const block = buf.subarray(0, 16)
  const perCall = (c) => () => {
    for (let i = 0; i < 64; i++) c.update(block)
  }
  return {
    encCall: measure('node aes-128-ecb encrypt, 16 B per update', 'blocks/s', perCall(enc), 64),
    decCall: measure('node aes-128-ecb decrypt, 16 B per update', 'blocks/s', perCall(dec), 64),
    encBulk: measure(
      'node aes-128-ecb encrypt, 4 KiB per update',
      'blocks/s',
      () => enc.update(buf),
      BUF_BLOCKS,
    ),
    decBulk: measure(
      'node aes-128-ecb decrypt, 4 KiB per update',
      'blocks/s',
      () => dec.update(buf),
      BUF_BLOCKS,
    ),
  }
}

function messageRows(c) {
  const msg236 = c.cryptoRandom(236)
  const msg232 = c.cryptoRandom(232)
  let t = T
  return [
    measure('v4Mac, 236 bytes', 'ops/s', () => c.v4Mac(msg236)),
    measure('V6 HMAC key + mac, 232 bytes (same slot)', 'ops/s', () => c.v6Hmac(c.v6HmacKey(T), msg232)),
    measure('V6 HMAC key + mac, 232 bytes (new slot each)', 'ops/s', () => {
      t += C1
      c.v6Hmac(c.v6HmacKey(t), msg232)
    }),
  ]
}

/** All the cryptography of one V6 exchange on the host (§4.5, §4.7), without the byte layouts. */
function v6HostRow(c) {
  const iv = c.cryptoRandom(16)
  const request = c.encryptPadded(c.V6_CIPHER, iv, c.cryptoRandom(236))
  const payload = new Uint8Array(232)
  return measure('V6 host crypto: request decode + response build', 'ops/s', () => {
    c.decryptPadded(c.V6_CIPHER, iv, request)
    const d = c.decryptBlockOf(c.V6_CIPHER, iv)
    const r = c.cryptoRandom(16)
    const h = c.sha256(r)
    for (let i = 0; i < 16; i++) r[i] ^= d[i]
    payload.set(r, 144)
    payload.set(h, 160)
    payload.set(d, 200)
    const ivr = c.cryptoRandom(16)
    const message = new Uint8Array(232)
    message.set(c.decryptBlockOf(c.V6_CIPHER, ivr))
    message.set(payload.subarray(0, 216), 16)
    payload.set(c.v6Hmac(c.v6HmacKey(T), message), 216)
    c.encryptPadded(c.V6_CIPHER, ivr, payload)
  })
}

/** Runs every measurement; rows of { name, unit, opsPerSec, wallOpsPerSec, samples, [vsNode…] }. */
export async function run() {
  const c = await loadDist('crypto/index.js')
  const buf = c.cryptoRandom(16 * BUF_BLOCKS)
  const node = nodeRows(c.V5_KEY, buf)
  const rows = []
  for (const [label, cipher] of [
    ['V4', c.V4_CIPHER],
    ['V5', c.V5_CIPHER],
    ['V6', c.V6_CIPHER],
  ]) {
    for (const row of blockRows(label, cipher, buf)) {
      const enc = row.name.endsWith('encryptBlock')
      row.vsNodePerCall = +(row.opsPerSec / (enc ? node.encCall : node.decCall).opsPerSec).toFixed(2)
      row.vsNodeBulk = +(row.opsPerSec / (enc ? node.encBulk : node.decBulk).opsPerSec).toFixed(3)
      rows.push(row)
    }
  }
  rows.push(node.encCall, node.decCall, node.encBulk, node.decBulk, ...messageRows(c), v6HostRow(c))
  return rows
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const rows = await run()
  const width = Math.max(...rows.map((r) => r.name.length))
  for (const r of rows) {
    const vs =
      r.vsNodePerCall === undefined ? '' : `  ×${r.vsNodePerCall} node per-call, ×${r.vsNodeBulk} node bulk`
    console.log(`${r.name.padEnd(width)}  ${r.opsPerSec.toLocaleString('en-US').padStart(12)} ${r.unit}${vs}`)
  }
}
