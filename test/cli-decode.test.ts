// `kmslab decode` run in-process through its Verb with collected stdout/stderr.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { decodeCapture } from '../src/capture/index.js'
import { decodeVerb } from '../src/cli/decode.js'
import { UsageError } from '../src/errors.js'
import { runVerb } from './fixtures/cli-io.js'
import { allCaptureNames, PCAPS_DIR } from './fixtures/pcap.js'

const run = (argv: string[], stderrIsTty = false) => runVerb(decodeVerb, argv, stderrIsTty)

const pcap = (name: string) => join(PCAPS_DIR, name.includes('.pcap') ? name : `${name}.pcap`)
const ALL = allCaptureNames().map(pcap)
const REQUIRED = ['file', 'client', 'server', 'callId', 'transferSyntax', 'request', 'response', 'errors']
const REQUEST_KEYS = [
  'version',
  'vm',
  'licenseStatus',
  'graceMinutes',
  'appId',
  'skuId',
  'kmsId',
  'cmid',
  'previousCmid',
  'requiredCount',
  'clientTime',
  'workstation',
  'verified',
]
const RESPONSE_KEYS = [
  'hresult',
  'version',
  'epid',
  'hwid',
  'cmid',
  'clientTime',
  'currentCount',
  'activationInterval',
  'renewalInterval',
  'verified',
]

const tmp = mkdtempSync(join(tmpdir(), 'kmslab-decode-'))
t.teardown(() => rmSync(tmp, { recursive: true, force: true }))

t.test('--json over every capture: JSON lines only on stdout, exit 0', async (t) => {
  const { code, out, err } = await run(['--json', ...ALL])
  t.equal(code, 0)
  t.equal(err, '', 'nothing to report on stderr (not a terminal, no file problems)')
  const lines = out.trimEnd().split('\n')
  const expected = ALL.reduce((n, f) => n + decodeCapture(readFileSync(f), f).exchanges.length, 0)
  t.equal(lines.length, expected, 'one line per record')
  for (const line of lines) {
    const o = JSON.parse(line)
    for (const k of REQUIRED) t.ok(k in o, `${o.file}: ${k}`)
    t.ok(Array.isArray(o.errors))
    if (o.request) for (const k of REQUEST_KEYS) t.ok(k in o.request, `request.${k}`)
    if (o.response) for (const k of RESPONSE_KEYS) t.ok(k in o.response, `response.${k}`)
    if (o.response) t.type(o.response.hresult, 'number')
  }
  const files = new Set(lines.map((l) => JSON.parse(l).file))
  t.equal(files.size, ALL.length, 'every file yields at least one record')
  const refused = lines
    .map((l) => JSON.parse(l))
    .find((o) => o.file.endsWith('srvK3_retail_kmsid_refused.pcap'))
  t.equal(refused.response.hresult, 3221549122, '0xC004F042 as a number')
  t.equal(refused.response.version, '6.0')
})

t.test(
  'a file that is not a capture: one stderr line naming it, exit 1, the others still decoded',
  async (t) => {
    const notes = join(tmp, 'notes.txt')
    writeFileSync(notes, 'not a capture at all\n')
    const missing = join(tmp, 'missing.pcap')
    const { code, out, err } = await run([
      '--json',
      pcap('vlmcsd_v4_win10ent'),
      notes,
      missing,
      pcap('vlmcsd_v5_win10ent'),
    ])
    t.equal(code, 1)
    const errLines = err.trimEnd().split('\n')
    t.equal(errLines.length, 2)
    t.match(errLines[0], `kmslab decode: ${notes}: not a pcap or pcapng file`)
    t.match(errLines[1], `kmslab decode: ${missing}: no such file`)
    const records = out
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l))
    t.same(
      records.map((r) => [r.file, r.request.version, r.response.verified]),
      [
        [pcap('vlmcsd_v4_win10ent'), '4.0', true],
        [pcap('vlmcsd_v5_win10ent'), '5.0', true],
      ],
    )
    const text = await run([notes, pcap('vlmcsd_v6_win10ent')])
    t.equal(text.code, 1)
    t.match(text.out, /Windows 10\/11 Enterprise/)
    const dir = await run([tmp])
    t.equal(dir.code, 1)
    t.match(dir.err, /is a directory/)
  },
)

t.test('text output: one block per exchange, product names, refusals and findings', async (t) => {
  const { code, out, err } = await run([
    pcap('vlmcsd_v6_win10ent'),
    pcap('vlmcsd_v6_office2016pp'),
    pcap('srvK3_retail_kmsid_refused'),
    pcap('raw_vlmcsd_request_without_bind'),
    pcap('raw_vlmcsd_http'),
    pcap('vlmcsd_multi_5req_1conn'),
  ])
  t.equal(code, 0)
  t.equal(err, '')
  t.match(out, /SKU ID\s+73111121-5638-40f6-bc11-f1d7b0d64300 {2}Windows 10\/11 Enterprise/)
  t.match(out, /Office Professional Plus 2016/)
  t.match(out, /KMS host HWID\s+3A1C049600B60076/)
  t.match(out, /refused: 0xC004F042 \(SL_E_VL_KEY_MANAGEMENT_SERVICE_ID_MISMATCH/)
  t.match(out, /FAULT: 0x1C010003 nca_s_unk_if/)
  t.match(out, /not DCE-RPC: first byte 0x47/)
  t.equal(out.match(/^exchange /gm)?.length, 1 + 1 + 1 + 1 + 5)
  t.equal(out.match(/^connection \d+ .*no KMS exchange/gm)?.length, 1)
  t.match(out, /^== .*vlmcsd_multi_5req_1conn\.pcap: pcap, \d+ packets, 1 TCP connection, 5 KMS exchanges$/m)
})

t.test('progress on a terminal only, when the work is long', async (t) => {
  const many = ALL.slice(0, 10)
  const tty = await run(['--json', ...many], true)
  t.equal(tty.code, 0)
  t.match(tty.err, /\r\x1b\[Kkmslab decode: 10\/10 /)
  t.ok(tty.err.endsWith('\r\x1b[K'), 'the progress line is cleared at the end')
  for (const line of tty.out.trimEnd().split('\n')) JSON.parse(line)
  const few = await run(['--json', ...ALL.slice(0, 2)], true)
  t.equal(few.err, '', 'two small files: no progress')
})

t.test('usage', async (t) => {
  await t.rejects(run([]), UsageError)
  await t.rejects(run(['--bogus', pcap('vlmcsd_v4_win10ent')]), UsageError)
  t.match(decodeVerb.help, /--json/)
  t.match(decodeVerb.help, /Exit codes: 0 [\s\S]*\b1 [\s\S]*\b64 usage\s+error/)
  t.equal(decodeVerb.name, 'decode')
})

t.test('--json numbers connections as the text output does, from 1', async (t) => {
  const files = ALL.filter((f) => /multi_5req|raw_vlmcsd_http|3req_reconnects|newconn_3req/.test(f))
  for (const file of files) {
    const text = await run([file])
    const json = await run(['--json', file])
    const fromText = [...text.out.matchAll(/^(?:exchange .*\bconnection (\d+),|connection (\d+) )/gm)].map(
      (m) => Number(m[1] ?? m[2]),
    )
    const fromJson = json.out
      .trimEnd()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l).connection)
    t.same(fromJson, fromText, file)
    t.ok(fromJson.length > 0 && fromJson.every((n) => n >= 1), `${file}: numbered from 1`)
  }
})
