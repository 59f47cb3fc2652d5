// The dashboard in a real browser (Debian's chromium driven by playwright-core) against a real
// host: pool tiles, an activation appearing live over server-sent events, the clients table and
// its filters, the products and connect views, the token prompt, and the README's screenshot.
import { existsSync } from 'node:fs'
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type Browser, chromium, type Page } from 'playwright-core'
import t, { type Test } from 'tap'
import { type ActivateOptions, activate } from '../src/client/activate.js'
import { startHost } from '../src/host/host.js'
import type { FaultRule } from '../src/host/rules.js'

const CHROMIUM = '/usr/bin/chromium'
const SCREENSHOT = fileURLToPath(new URL('../docs/dashboard.png', import.meta.url))
const UNKNOWN_APP = '8e2b5c1a-3f4d-4b6e-9a7c-1d2e3f4a5b6c'

/** What the page's sessionStorage offers (the test compiles without the DOM types). */
interface BrowserStorage {
  sessionStorage: { getItem(key: string): string | null }
}

/** A host with its HTTP port on loopback; its clock can be set back to give requests a past. */
async function startDashboardHost(o: { token?: string; rules?: FaultRule[] } = {}) {
  let backMs = 0
  const host = await startHost({
    http: { listen: '127.0.0.1:0', token: o.token },
    rules: o.rules,
    now: () => new Date(Date.now() - backMs),
  })
  return {
    url: host.httpUrl!,
    kmsPort: host.port,
    setClockBack: (ms: number) => {
      backMs = ms
    },
    close: () => host.close(),
  }
}

if (!existsSync(CHROMIUM)) {
  if (process.env.CI === 'true')
    t.fail(`${CHROMIUM} is missing: CI must install chromium (apt-get install chromium)`)
  else t.plan(0, `${CHROMIUM} is absent: install Debian's chromium to run the dashboard tests`)
} else {
  await run()
}

async function run() {
  t.setTimeout(110_000)
  const browser: Browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 30_000,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-quic',
      '--no-first-run',
    ],
  })
  t.teardown(() => browser.close())

  // `errors` collects the page's script errors: each subtest checks it is empty at its end.
  const openPage = async (t: Test, url: string): Promise<{ page: Page; errors: string[] }> => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
    page.setDefaultTimeout(15_000)
    const errors: string[] = []
    page.on('pageerror', (e) => errors.push(e.message))
    t.teardown(() => page.close())
    await page.goto(url)
    return { page, errors }
  }

  t.test('pools, live activations, clients, products, connect', async (t) => {
    const host = await startDashboardHost()
    t.teardown(() => host.close())
    const kms = { host: '127.0.0.1', port: host.kmsPort }
    const activateOne = (options: ActivateOptions) => activate(kms, { timeoutMs: 5000, ...options })

    const { page, errors } = await openPage(t, host.url)
    for (const app of ['windows', 'office2010', 'office2013']) {
      const count = page.locator(`#pools article[data-app="${app}"] .count-value`)
      t.equal(await count.textContent(), '0', `${app} pool tile shows 0`)
    }
    t.equal(await page.locator('#dlv').getByText('Total requests received').count(), 1)
    await page.waitForSelector('#live-state[data-state="live"]')
    // A reload would lose this mark: it proves the row came over the event stream.
    await page.evaluate(() => {
      ;(globalThis as unknown as { stayed: boolean }).stayed = true
    })

    const report = await activateOne({ product: 'Windows 11 Pro', workstation: 'lab-pc-01.corp.lan' })
    t.equal(report.results[0].answer?.base.currentCount, 1)
    const row = page.locator('#recent tbody tr', { hasText: 'lab-pc-01.corp.lan' })
    await row.waitFor()
    t.match(await row.textContent(), /Windows 10\/11 Pro.*1 \/ 25.*0xC004F038/)
    await page.locator('#pools article[data-app="windows"] .count-value', { hasText: /^1$/ }).waitFor()
    t.equal(
      await page.evaluate(() => (globalThis as unknown as { stayed?: boolean }).stayed),
      true,
      'no reload',
    )

    await activateOne({ product: 'Office LTSC Professional Plus 2021', workstation: 'finance-07.corp.lan' })
    await activateOne({ product: 'Office Professional Plus 2010', workstation: 'legacy-02.corp.lan' })
    await page.locator('#recent tbody tr', { hasText: 'legacy-02.corp.lan' }).waitFor()
    await page.locator('#pools article[data-app="office2013"] .count-value', { hasText: /^1$/ }).waitFor()
    await page.locator('#pools article[data-app="office2010"] .count-value', { hasText: /^1$/ }).waitFor()
    t.equal(await page.locator('#recent tbody tr').count(), 3, 'three activations listed, newest first')
    // The plot took the three from the event stream too.
    const plot = page.locator('#plot svg[aria-label*="3 requests"]')
    t.match(await plot.getAttribute('aria-label'), /last 24 hours: 3 requests, 0 activating, 3 not/)
    // One bar, or two when the half hour turned between the requests.
    const lowBars = await page.locator('#plot svg rect.bar-low').count()
    t.ok(lowBars === 1 || lowBars === 2, `below-threshold bars: ${lowBars}`)
    const total = page.locator('#dlv dt:text-is("Total requests received") + dd')
    await total.filter({ hasText: /^3$/ }).waitFor()
    t.equal(await page.locator('#dlv dt:text-is("Initial grace period") + dd').textContent(), '3')
    t.match(await page.locator('#recent tbody tr').first().textContent(), /legacy-02/)

    await page.click('nav a[href="#/clients"]')
    const clientRows = page.locator('#clients tbody tr')
    await clientRows.nth(2).waitFor()
    t.equal(await clientRows.count(), 3, 'three clients in the pools')
    await page.fill('#clients-text', 'finance')
    t.equal(await clientRows.count(), 1, 'text filter')
    t.match(
      await clientRows.first().textContent(),
      /finance-07\.corp\.lan.*Office LTSC Professional Plus 2021/,
    )
    await page.fill('#clients-text', '')
    await page.selectOption('#clients-app', 'windows')
    await page.locator('#clients-count', { hasText: /^1 of 1 client$/ }).waitFor()
    t.match(await clientRows.first().textContent(), /lab-pc-01\.corp\.lan/, 'application filter')
    t.equal(new URL(page.url()).hash, '#/clients')

    await page.click('nav a[href="#/products"]')
    await page.locator('#products tbody tr').nth(100).waitFor()
    t.ok((await page.locator('#products tbody tr').count()) > 200, 'the whole catalogue is listed')
    await page.fill('#products-text', 'windows 10/11 pro')
    const pro = page.locator('#products tbody tr', { hasText: /^Windows 10\/11 Pro/ })
    t.match(await pro.first().textContent(), /W269N-WFGWX-YVC9B-4J6C9-T83GX/, 'GVLK shown')

    await page.click('nav a[href="#/connect"]')
    const connect = page.locator('#connect')
    await connect.getByText('slmgr /skms').waitFor()
    const text = (await connect.textContent()) ?? ''
    t.match(text, new RegExp(`slmgr /skms 127\\.0\\.0\\.1:${host.kmsPort}`))
    t.match(text, /ospp\.vbs \/sethst:127\.0\.0\.1/)
    t.match(text, new RegExp(`ospp\\.vbs /setprt:${host.kmsPort}`))
    t.match(text, new RegExp(`_vlmcs\\._tcp.* SRV .*${host.kmsPort}`))
    t.same(errors, [], 'no script error')
  })

  t.test('a token-protected host: 401, one prompt, then live events with the token', async (t) => {
    const token = 'lab-secret-42'
    const host = await startDashboardHost({ token })
    t.teardown(() => host.close())
    t.equal((await fetch(new URL('/api/status', host.url))).status, 401, 'the API wants the token')
    // A browser cannot send the token to load the page that asks for it: the page and its files
    // hold no data, so they must load without it (every data endpoint still asks).
    t.equal((await fetch(host.url)).status, 200, 'the page loads without the token')
    t.equal((await fetch(new URL('/web/app.js', host.url))).status, 200, 'and its files')

    const { page, errors } = await openPage(t, host.url)
    const dialog = page.locator('#token-dialog')
    await dialog.waitFor({ state: 'visible' })
    await page.fill('#token-input', 'wrong')
    await page.click('#token-form button[type="submit"]')
    await page.locator('#token-why', { hasText: 'refused' }).waitFor()
    t.ok(await dialog.isVisible(), 'a wrong token asks again')
    await page.fill('#token-input', token)
    await page.click('#token-form button[type="submit"]')
    await dialog.waitFor({ state: 'hidden' })
    await page.locator('#pools article[data-app="windows"] .count-value').waitFor()
    t.equal(
      await page.evaluate(() =>
        (globalThis as unknown as BrowserStorage).sessionStorage.getItem('kmslab.token'),
      ),
      token,
      'kept for the tab',
    )
    await page.waitForSelector('#live-state[data-state="live"]')

    await activate({ host: '127.0.0.1', port: host.kmsPort }, { workstation: 'secured-01', timeoutMs: 5000 })
    await page.locator('#recent tbody tr', { hasText: 'secured-01' }).waitFor()
    await page.reload()
    await page.locator('#recent tbody tr', { hasText: 'secured-01' }).waitFor()
    t.notOk(await dialog.isVisible(), 'no second prompt in the same tab')
    t.same(errors, [], 'no script error')
  })

  t.test('screenshot of a host with some history', async (t) => {
    // One machine the host turns away (as a genuine host refuses a retail key): a refused request.
    const rules = [{ name: 'rogue', match: { workstation: 'rogue-*' }, action: { refuse: '0xC004F042' } }]
    const host = await startDashboardHost({ rules })
    t.teardown(() => host.close())
    const kms = { host: '127.0.0.1', port: host.kmsPort }
    // A working day of a small lab: products interleaved, requests spread over the last 20 hours.
    const plan: [string, string | undefined, number][] = [
      ['Windows 11 Pro', undefined, 14],
      ['Windows 11 Enterprise', undefined, 6],
      ['Windows Server 2022 Standard', undefined, 6],
      ['Office LTSC Professional Plus 2021', undefined, 7],
      ['Office Professional Plus 2010', undefined, 3],
      ['Windows 11 Pro', UNKNOWN_APP, 1],
    ]
    const sends = plan
      .flatMap(([product, appId, count]) =>
        Array.from({ length: count }, (_, i) => ({ product, appId, order: (i + 0.5) / count })),
      )
      .sort((a, b) => a.order - b.order)
    const names = ['lab-pc', 'finance', 'build-agent', 'hr-laptop', 'sql-node', 'kiosk']
    for (const [n, { product, appId }] of sends.entries()) {
      // Denser towards now, as a lab fills up, rather than one every half hour.
      const hoursAgo = 20 * (1 - n / sends.length) ** 1.5
      host.setClockBack(hoursAgo * 3_600_000)
      const workstation = `${names[n % names.length]}-${String(10 + n).padStart(2, '0')}.corp.lan`
      // Mostly new machines in their grace period, some renewals, a few out of it.
      const licenseStatus = n % 4 === 3 ? 1 : n % 9 === 4 ? 5 : n % 11 === 6 ? 0 : 2
      await activate(kms, { product, appId, workstation, licenseStatus, timeoutMs: 5000 })
    }
    host.setClockBack(0)
    await activate(kms, { workstation: 'rogue-01.guest.lan', timeoutMs: 5000 })
    const { page, errors } = await openPage(t, host.url)
    await page.locator('#pools article[data-app="windows"] .count-value', { hasText: /^26$/ }).waitFor()
    await page.locator('#pools article.tile-unknown').waitFor()
    const rogue = page.locator('#recent tbody tr', { hasText: 'rogue-01.guest.lan' })
    t.match(await rogue.textContent(), /refused 0xC004F042/, 'a refusal is shown as such')
    t.equal(await page.locator('#dlv dt:text-is("Failed requests received") + dd').textContent(), '1')
    t.match(await page.locator('#plot svg').getAttribute('aria-label'), /: 38 requests, \d+ activating/)
    t.ok((await page.locator('#plot svg rect').count()) > 20, 'the history drawn over the day')
    await page.waitForSelector('#live-state[data-state="live"]')
    const dir = await mkdtemp(join(tmpdir(), 'kmslab-dashboard-'))
    t.teardown(() => rm(dir, { recursive: true, force: true }))
    const file = join(dir, 'dashboard.png')
    await page.screenshot({ path: file, fullPage: true })
    const png = await readFile(file)
    t.same([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'a PNG')
    // The README's picture is refreshed on request only, so a test run leaves the tree clean.
    if (process.env.KMSLAB_UPDATE_SCREENSHOT === '1') await copyFile(file, SCREENSHOT)
    t.same(errors, [], 'no script error')
  })
}
