import { randomUUID } from 'node:crypto'
import t from 'tap'
import { startHost } from '../src/host/host.js'
import { HRESULT } from '../src/kms/hresult.js'
import { filetimeFromDate } from '../src/wire/bytes.js'
import {
  activateRaw,
  baseRequest,
  OFFICE2010_APP,
  OFFICE2013_APP,
  WINDOWS_APP,
} from './fixtures/raw-activate.js'

const DAY = 86_400_000

t.test('real counter: 1..60 distinct clients give 1..50, then 50', async (t) => {
  const host = await startHost({ state: 'memory' })
  t.teardown(() => host.close())
  const requests = Array.from({ length: 60 }, () => baseRequest())
  const answers = await activateRaw(host.port, requests)
  t.same(
    answers.map((a) => a.count),
    Array.from({ length: 60 }, (_, i) => Math.min(i + 1, 50)),
  )
  const again = await activateRaw(host.port, [baseRequest({ cmid: requests[59].cmid })])
  t.equal(again[0].count, 50, 'a known client does not count twice')
  t.equal(host.pools.read()[WINDOWS_APP].length, 50)
  t.equal(host.history().length, 61)
  const last = host.history().at(-1)!
  t.equal(last.cmid, requests[59].cmid)
  t.equal(last.reportedCount, 50)
  t.equal(last.hresult, 0)
  t.equal(last.protocol, '6.0')
})

t.test('a repeated CMID does not count twice; pools are per application', async (t) => {
  const host = await startHost({ state: 'memory' })
  t.teardown(() => host.close())
  const cmid = randomUUID()
  const office = (app: string) =>
    baseRequest({ appId: app, requiredCount: 5, kmsId: '85b5f61b-320b-4be3-814a-b76b2bfafc82' })
  const answers = await activateRaw(host.port, [
    baseRequest({ cmid }),
    baseRequest({ cmid }),
    baseRequest(),
    office(OFFICE2013_APP),
    office(OFFICE2010_APP),
    office(OFFICE2013_APP),
  ])
  t.same(
    answers.map((a) => a.count),
    [1, 1, 2, 1, 1, 2],
  )
  t.same(Object.keys(host.pools.read()).sort(), [OFFICE2013_APP, OFFICE2010_APP, WINDOWS_APP].sort())
})

t.test('entries expire after 30 days (injected clock)', async (t) => {
  let now = Date.UTC(2026, 0, 1)
  const host = await startHost({ state: 'memory', now: () => new Date(now) })
  t.teardown(() => host.close())
  const at = () => filetimeFromDate(new Date(now))
  const first = await activateRaw(host.port, [
    baseRequest({ requestTime: at() }),
    baseRequest({ requestTime: at() }),
  ])
  t.same(
    first.map((a) => a.count),
    [1, 2],
  )
  now += 20 * DAY
  const mid = await activateRaw(host.port, [baseRequest({ requestTime: at() })])
  t.equal(mid[0].count, 3, 'still counted after 20 days')
  now += 10 * DAY + 1
  const late = await activateRaw(host.port, [baseRequest({ requestTime: at() })])
  t.equal(late[0].count, 2, 'the first two expired after 30 days; the 20-day one and this one count')
})

t.test('charged and fixed modes report what they promise', async (t) => {
  const charged = await startHost({ state: 'memory', counter: 'charged' })
  const a = await activateRaw(charged.port, [
    baseRequest(),
    baseRequest({ requiredCount: 5 }),
    baseRequest({ appId: OFFICE2013_APP, requiredCount: 5 }),
  ])
  t.same(
    a.map((x) => x.count),
    [50, 10, 10],
  )
  await charged.close()
  const fixed = await startHost({ state: 'memory', counter: 'fixed:7' })
  const b = await activateRaw(fixed.port, [baseRequest(), baseRequest()])
  t.same(
    b.map((x) => x.count),
    [7, 7],
  )
  fixed.pools.mode = { kind: 'fixed', count: 30 }
  t.equal((await activateRaw(fixed.port, [baseRequest()]))[0].count, 30, 'mode changed at run time')
  await fixed.close()
})

t.test('strict: foreign KMS ids and clocks more than 4 hours off are refused', async (t) => {
  const now = Date.UTC(2026, 5, 1, 12)
  const host = await startHost({ state: 'memory', strict: true, now: () => new Date(now) })
  t.teardown(() => host.close())
  const at = (offsetMs: number) => filetimeFromDate(new Date(now + offsetMs))
  const answers = await activateRaw(host.port, [
    baseRequest({ requestTime: at(0) }),
    baseRequest({ requestTime: at(0), kmsId: 'e1c51358-fe3e-4203-a4a2-3b6b20c9734e' }),
    baseRequest({ requestTime: at(0), kmsId: '11111111-2222-4333-8444-555555555555' }),
    baseRequest({ requestTime: at(3.9 * 3600_000) }),
    baseRequest({ requestTime: at(-4.1 * 3600_000) }),
  ])
  t.same(
    answers.map((a) => a.hresult),
    [0, HRESULT.KMS_ID_MISMATCH, HRESULT.KMS_ID_MISMATCH, 0, HRESULT.INVALID_TIMESTAMP],
  )
  t.same(
    answers.map((a) => a.count),
    [1, null, null, 2, null],
    'refused requests are not counted',
  )
  const refused = host.history().filter((r) => r.hresult !== 0)
  t.equal(refused.length, 3)
  t.equal(refused[0].reportedCount, null)
})

t.test('the ePID follows the product family; one HWID for all', async (t) => {
  const host = await startHost({ state: 'memory', counter: 'charged' })
  t.teardown(() => host.close())
  const [win, o16, o10] = await activateRaw(host.port, [
    baseRequest(),
    baseRequest({ appId: OFFICE2013_APP, kmsId: '85b5f61b-320b-4be3-814a-b76b2bfafc82', requiredCount: 5 }),
    baseRequest({
      appId: OFFICE2010_APP,
      kmsId: 'e85af946-2e25-47b7-83e1-bebcebeac611',
      requiredCount: 5,
      versionMajor: 4,
    }),
  ])
  t.equal(win.epid, host.identity.epids.windows)
  t.equal(o16.epid, host.identity.epids.office2016)
  t.equal(o10.epid, host.identity.epids.office2010)
  t.equal(o10.hwid, null, 'V4 carries no HWID')
  t.equal(win.hwid, host.identity.hwid)
  t.match(host.identity.epids.office2010, /^\d{5}-00096-(199|2\d\d)-\d{6}-03-\d+-\d+\.0000-\d{7}$/)
})

t.test('busy-poll on or off, the host answers the same', async (t) => {
  for (const busyPollMicros of [0, 5000]) {
    const host = await startHost({ state: 'memory', busyPollMicros })
    const answers = await activateRaw(host.port, [baseRequest(), baseRequest()])
    t.same(
      answers.map((a) => a.count),
      [1, 2],
      `busyPollMicros ${busyPollMicros}`,
    )
    await host.close()
  }
})
