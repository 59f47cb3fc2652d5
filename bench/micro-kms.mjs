#!/usr/bin/env node
// Micro-benchmarks of the protocol core (src/kms over src/wire and src/crypto), run against the
// build (npx tsc -p tsconfig.build.json). For V4, V5 and V6: the host's handling of one request
// (decodeKmsRequest + buildKmsResponse, and the whole answerKmsRequest with the counter for V6)
// and the client's verification of one answer (verifyKmsResponse); plus the raw V6 block cipher.
// Each figure is the median of 5 samples of ~200 ms after a warm-up, per second of this process's
// CPU time (what one core does; steadier than wall time on a shared machine). Prints numbers;
// `npm run bench` (bench/run.mjs) sets them against the targets.
import { pathToFileURL } from 'node:url'
import { loadDist, measureOps as measure } from './micro.mjs'

/** The figure for V6 host-side handling on one core. */
export const V6_HOST_TARGET = 50_000

const BASE = {
  versionMinor: 0,
  isClientVm: 0,
  licenseStatus: 2,
  graceTime: 43200,
  appId: '55c92734-d682-4d71-983e-d6ec3f16059f',
  skuId: '2de67392-b7a7-462a-b1ca-108dd189f588',
  kmsId: '58e2134f-8e11-4d17-9cb2-91069c151148',
  cmid: '6f1e0a52-7c3d-4b8e-9a10-3e4c5d6e7f80',
  requiredCount: 25,
  previousCmid: '00000000-0000-0000-0000-000000000000',
  workstation: 'ws-0412.eng.contoso.com',
}
const FIELDS = {
  epid: '03612-00206-556-123727-03-1033-17763.0000-2972018',
  hwid: Uint8Array.of(0x3a, 0x1c, 0x04, 0x96, 0x00, 0xb6, 0x00, 0x76),
  currentCount: 50,
  activationInterval: 120,
  renewalInterval: 10080,
}

function versionRows(k, major) {
  // the host sees a new request time every call in real life, but the V6 HMAC key only changes
  // every ~4 h, so one time is representative
  const base = { ...BASE, versionMajor: major, requestTime: 133497936000000000n }
  const sent = k.buildKmsRequest(base, k.cryptoRandom)
  const answer = k.buildKmsResponse(k.decodeKmsRequest(sent.payload), FIELDS, k.cryptoRandom)
  k.verifyKmsResponse(sent, answer)
  const batch = 16
  const rows = [
    measure(
      `V${major} host: decodeKmsRequest + buildKmsResponse`,
      'requests/s',
      () => {
        for (let i = 0; i < batch; i++)
          k.buildKmsResponse(k.decodeKmsRequest(sent.payload), FIELDS, k.cryptoRandom)
      },
      batch,
      major === 6
        ? { target: V6_HOST_TARGET, version: major, side: 'host' }
        : { version: major, side: 'host' },
    ),
    measure(
      `V${major} client: verifyKmsResponse`,
      'answers/s',
      () => {
        for (let i = 0; i < batch; i++) k.verifyKmsResponse(sent, answer)
      },
      batch,
      { version: major, side: 'client' },
    ),
  ]
  return rows
}

/** The whole host answer, policy and counter included (charged mode, a new CMID every request). */
function answerRow(k) {
  const counter = new k.ActivationCounter({ mode: k.parseCounterMode('charged') })
  const ctx = {
    now: Date.UTC(2024, 0, 15),
    random: k.cryptoRandom,
    counter,
    strict: false,
    activationInterval: 120,
    renewalInterval: 10080,
    hwid: FIELDS.hwid,
    epidFor: () => FIELDS.epid,
    kmsIdStatus: () => 'volume',
  }
  const payloads = []
  for (let i = 0; i < 64; i++) {
    const cmid = `6f1e0a52-7c3d-4b8e-9a10-${i.toString(16).padStart(12, '0')}`
    const base = { ...BASE, cmid, versionMajor: 6, requestTime: 133497936000000000n }
    payloads.push(k.buildKmsRequest(base, k.cryptoRandom).payload)
  }
  let i = 0
  return measure(
    'V6 host: answerKmsRequest (decode, policy, counter, answer)',
    'requests/s',
    () => {
      for (let j = 0; j < 16; j++) k.answerKmsRequest(k.decodeKmsRequest(payloads[i++ & 63]), ctx)
    },
    16,
    { version: 6, side: 'host' },
  )
}

function blockRows(k) {
  const buf = k.cryptoRandom(4096)
  const blocks = buf.length / 16
  return [
    measure(
      'V6 block cipher: encryptBlock',
      'blocks/s',
      () => {
        for (let o = 0; o < buf.length; o += 16) k.V6_CIPHER.encryptBlock(buf, o, buf, o)
      },
      blocks,
    ),
    measure(
      'V6 block cipher: decryptBlock',
      'blocks/s',
      () => {
        for (let o = 0; o < buf.length; o += 16) k.V6_CIPHER.decryptBlock(buf, o, buf, o)
      },
      blocks,
    ),
  ]
}

/** Runs every measurement; rows of { name, unit, opsPerSec, wallOpsPerSec, samples, [target] }. */
export async function run() {
  const k = await loadDist(
    'kms/verify.js',
    'kms/request.js',
    'kms/response.js',
    'kms/answer.js',
    'kms/counter.js',
    'crypto/index.js',
  )
  const rows = []
  for (const major of [4, 5, 6]) rows.push(...versionRows(k, major))
  rows.push(answerRow(k), ...blockRows(k))
  return rows
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const rows = await run()
  const width = Math.max(...rows.map((r) => r.name.length))
  for (const r of rows) {
    const target = r.target === undefined ? '' : `  (target >= ${r.target.toLocaleString('en-US')})`
    console.log(
      `${r.name.padEnd(width)}  ${r.opsPerSec.toLocaleString('en-US').padStart(12)} ${r.unit}${target}`,
    )
  }
}
