// The decoder against what the peer programs printed: every value written in each capture's .txt
// (vlmcs' "request/response (client view)" blocks, vlmcsd's "Incoming KMS request / Sending
// response" log blocks, py-kms' client and server lines and its request dictionary) must equal
// what decodeCapture reads from the bytes, in order, per exchange. Frame numbers, call ids and
// context ids are checked against the tshark summary.
import t, { type Test } from 'tap'
import { decodeCapture, type ExchangeRecord } from '../src/capture/index.js'
import { filetimeIso } from '../src/kms/report.js'
import { readGuid } from '../src/wire/bytes.js'
import { allCaptureNames, loadCaptureBytes, loadCaptureText } from './fixtures/pcap.js'

type Block = { kind: 'request' | 'response'; view: 'client' | 'server'; fields: Map<string, string> }

function section(text: string, title: string): string {
  return text.split(`\n== ${title}`)[1]?.split('\n== ')[0] ?? ''
}

/** The vlmcs/vlmcsd blocks of "Key decoded values": `Label   : value` lines under a `--` heading. */
function vlmcsBlocks(text: string): Block[] {
  const blocks: Block[] = []
  let cur: Block | null = null
  for (const line of section(text, 'Key decoded values').split('\n')) {
    const head =
      /^ {2}-- (server: )?(?:(request \(client view\)|<<< Incoming KMS request)|(response \(client view\)|>>> Sending response))/.exec(
        line,
      )
    if (head) {
      cur = { kind: head[2] ? 'request' : 'response', view: head[1] ? 'server' : 'client', fields: new Map() }
      blocks.push(cur)
      continue
    }
    const m = /^ {5}(server: )?(\S.*?)\s*: (.*)$/.exec(line)
    if (cur && m && (m[1] ? 'server' : 'client') === cur.view) cur.fields.set(m[2], m[3])
    else cur = null
  }
  return blocks
}

/** py-kms' one-line facts ("client: KMS Host ePID: ..."), per label in order. */
function pykmsLines(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>()
  for (const m of section(text, 'Key decoded values').matchAll(
    /^ {5}(client|server): ([A-Za-z ]+?): (.*)$/gm,
  )) {
    const key = `${m[1]}: ${m[2]}`
    out.set(key, [...(out.get(key) ?? []), m[3]])
  }
  return out
}

/** A Python bytes literal as py-kms logs it: b'...' or b"..." with \xNN and backslash escapes. */
function pyBytes(literal: string): Uint8Array {
  const body = literal.slice(2, -1)
  const out: number[] = []
  const esc: Record<string, number> = { n: 10, r: 13, t: 9, '\\': 92, "'": 39, '"': 34 }
  for (let i = 0; i < body.length; i++) {
    if (body[i] !== '\\') out.push(body.charCodeAt(i))
    else if (body[i + 1] === 'x') {
      out.push(Number.parseInt(body.slice(i + 2, i + 4), 16))
      i += 3
    } else out.push(esc[body[++i]])
  }
  return Uint8Array.from(out)
}

/** py-kms client's "Request Base Dictionary" dumps, one per request. */
function pykmsDicts(text: string): Map<string, string>[] {
  const client = section(text, 'Client output, verbatim')
  return client
    .split('Request Base Dictionary')
    .slice(1)
    .map((part) => {
      const dict = part.split('Sending RPC activation request')[0]
      const fields = new Map<string, string>()
      for (const m of dict.matchAll(/^\s+(\w+): \{(\d+)\}$/gm)) fields.set(m[1], m[2])
      for (const m of dict.matchAll(/^\s+(\w+):\{\s*raw: \{(b(['"]).*\3)\}/gm)) {
        fields.set(m[1], readGuid(pyBytes(m[2]), 0))
      }
      return fields
    })
}

const guid = (v: string) => v.split(' ')[0]
const int = (v: string) => Number.parseInt(v, 10)
/** vlmcs prints whole seconds, no ISO "T", and no "+0" padding for years past 9999. */
const second = (iso: string | null) =>
  (iso ?? '')
    .replace(/^\+0*/, '')
    .replace('T', ' ')
    .replace(/\.\d+Z$/, '')

function checkRequest(t: Test, r: ExchangeRecord, f: Map<string, string>, where: string, name: string) {
  const q = r.request!
  const checks: [string, unknown, unknown][] = [
    ['Protocol version', q.version, f.get('Protocol version')],
    ['Client is a virtual machine', q.vm ? 'Yes' : 'No', f.get('Client is a virtual machine')],
    ['Licensing status', q.licenseStatus, int(f.get('Licensing status') ?? '')],
    // vlmcsd prints GraceTime as a signed int
    ['Remaining time', q.graceMinutes | 0, int(f.get('Remaining time (0 = forever)') ?? '')],
    ['Application ID', q.appId, guid(f.get('Application ID') ?? '')],
    ['SKU ID', q.skuId, guid(f.get('SKU ID (aka Activation ID)') ?? '')],
    ['KMS ID', q.kmsId, guid(f.get('KMS ID (aka KMS counted ID)') ?? '')],
    ['Client machine ID', q.cmid, f.get('Client machine ID')],
    ['Previous client machine ID', q.previousCmid, f.get('Previous client machine ID')],
    ['Client request timestamp', second(q.clientTime), f.get('Client request timestamp (UTC)')],
    ['N count policy', q.requiredCount, int(f.get('N count policy (minimum clients)') ?? '')],
  ]
  // vlmcsd prints a workstation name without NUL past the field and mangles lone surrogates
  if (name !== 'raw_vlmcsd_garbage_request_body')
    checks.push(['Workstation name', q.workstation, f.get('Workstation name')])
  for (const [label, got, want] of checks) t.equal(got, want, `${where}: ${label}`)
}

function checkResponse(t: Test, r: ExchangeRecord, f: Map<string, string>, where: string) {
  const a = r.response!
  t.equal(a.version, f.get('Protocol version'), `${where}: Protocol version`)
  t.equal(a.epid, f.get('KMS host extended PID'), `${where}: KMS host extended PID`)
  t.equal(a.hwid, f.get('KMS host Hardware ID') ?? null, `${where}: KMS host Hardware ID`)
  t.equal(a.cmid, f.get('Client machine ID'), `${where}: Client machine ID`)
  t.equal(second(a.clientTime), f.get('Client request timestamp (UTC)'), `${where}: Client request timestamp`)
  t.equal(
    a.currentCount,
    int(f.get('KMS host current active clients') ?? ''),
    `${where}: current active clients`,
  )
  t.equal(a.renewalInterval, int(f.get('Renewal interval policy') ?? ''), `${where}: Renewal interval policy`)
  t.equal(
    a.activationInterval,
    int(f.get('Activation interval policy') ?? ''),
    `${where}: Activation interval`,
  )
}

const pcaps = allCaptureNames().filter((n) => n.endsWith('.pcap'))

for (const file of pcaps) {
  const name = file.replace(/\.pcap$/, '')
  t.test(name, async (t) => {
    const text = loadCaptureText(name)
    const records = decodeCapture(loadCaptureBytes(file), file).exchanges
    const withRequest = records.filter((r) => r.request)
    const answered = records.filter((r) => r.response?.epid)
    let compared = 0
    for (const view of ['client', 'server'] as const) {
      const blocks = vlmcsBlocks(text).filter((b) => b.view === view)
      const requests = blocks.filter((b) => b.kind === 'request')
      const responses = blocks.filter((b) => b.kind === 'response')
      if (requests.length > 0) t.equal(withRequest.length, requests.length, `${view} view: request count`)
      if (responses.length > 0) t.equal(answered.length, responses.length, `${view} view: response count`)
      requests.forEach((b, i) => {
        if (withRequest[i]) checkRequest(t, withRequest[i], b.fields, `${view} request ${i + 1}`, name)
      })
      responses.forEach((b, i) => {
        if (answered[i]) checkResponse(t, answered[i], b.fields, `${view} response ${i + 1}`)
      })
      compared += requests.length + responses.length
    }

    const py = pykmsLines(text)
    const each = (
      key: string,
      got: (r: ExchangeRecord) => unknown,
      want: (v: string) => unknown,
      list = answered,
    ) => {
      const values = py.get(key) ?? []
      if (values.length === 0) return
      t.equal(list.length, values.length, `${key}: count`)
      values.forEach((v, i) => {
        if (list[i]) t.equal(got(list[i]), want(v), `${key} ${i + 1}`)
      })
      compared += values.length
    }
    each(
      'client: KMS Host HWID',
      (r) => r.response!.hwid,
      (v) => v,
    )
    each(
      'client: KMS Host ePID',
      (r) => r.response!.epid,
      (v) => v,
    )
    each('client: KMS Host Current Client Count', (r) => r.response!.currentCount, int)
    each('client: KMS VL Activation Interval', (r) => r.response!.activationInterval, int)
    each('client: KMS VL Renewal Interval', (r) => r.response!.renewalInterval, int)
    each(
      'server: Server ePID',
      (r) => r.response!.epid,
      (v) => v,
    )
    each(
      'server: Machine Name',
      (r) => r.request!.workstation,
      (v) => v,
      withRequest,
    )
    each(
      'server: Client Machine ID',
      (r) => r.request!.cmid,
      (v) => v,
      withRequest,
    )
    each(
      'server: Request Time',
      (r) => `${second(r.request!.clientTime)} UTC`,
      (v) => v.split(' (')[0],
      withRequest,
    )
    // py-kms names products from its own database: the SKU names agree with the catalogue, the
    // application names do not ("Office 2013 / 2016 / ..." there, "Office 2013+" here)
    each(
      'server: SKU ID',
      (r) => r.products?.sku,
      (v) => v,
      withRequest,
    )

    pykmsDicts(text).forEach((d, i) => {
      const q = withRequest[i]?.request
      if (!q) {
        t.fail(`py-kms request dictionary ${i + 1} has no decoded request`)
        return
      }
      const where = `py-kms request dictionary ${i + 1}`
      t.equal(q.version, `${d.get('versionMajor')}.${d.get('versionMinor')}`, `${where}: version`)
      t.equal(q.vm, d.get('isClientVm') !== '0', `${where}: isClientVm`)
      t.equal(q.licenseStatus, int(d.get('licenseStatus')!), `${where}: licenseStatus`)
      t.equal(q.graceMinutes, int(d.get('graceTime')!), `${where}: graceTime`)
      t.equal(q.requiredCount, int(d.get('requiredClientCount')!), `${where}: requiredClientCount`)
      // the exact FILETIME, to the millisecond
      t.equal(q.clientTime, filetimeIso(BigInt(d.get('requestTime')!)), `${where}: requestTime`)
      t.equal(q.appId, d.get('applicationId'), `${where}: applicationId`)
      t.equal(q.skuId, d.get('skuId'), `${where}: skuId`)
      t.equal(q.kmsId, d.get('kmsCountedId'), `${where}: kmsCountedId`)
      t.equal(q.cmid, d.get('clientMachineId'), `${where}: clientMachineId`)
      compared++
    })

    // the tshark summary names the PDU each frame completes: our frames, call ids and contexts
    const summary = new Map<number, string>()
    for (const m of section(text, 'DCE-RPC / TCP summary').matchAll(
      /^(\d+) \S+\s+\S+\s+\d+ \d+ DCERPC (.*)$/gm,
    ))
      summary.set(Number(m[1]), m[2])
    for (const r of records.filter((x) => x.callId !== null)) {
      const req = summary.get(r.requestFrame!)
      t.match(
        req,
        new RegExp(`^Request: call_id: ${r.callId},.*Ctx: ${r.contextId}\\b`),
        `request frame ${r.requestFrame}`,
      )
      if (r.responseFrame !== null) {
        const res = summary.get(r.responseFrame)
        t.match(
          res,
          new RegExp(`^(Response|Fault): call_id: ${r.callId},.*Ctx: ${r.contextId}\\b`),
          `answer frame ${r.responseFrame}`,
        )
      }
    }
    if (withRequest.length > 0 && !/^raw_/.test(name)) t.ok(compared > 0, 'the .txt gave values to compare')
  })
}
