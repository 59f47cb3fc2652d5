// The kmslab dashboard: plain DOM, no framework, nothing fetched but this host's own /api.
// Every value from the host reaches the page as text (textContent, attributes), never as markup.
// URLs are relative (api/status, not /api/status) so the page also works behind a proxy's path prefix.

const WINDOWS_APP = '55c92734-d682-4d71-983e-d6ec3f16059f'
const OFFICE2010_APP = '59a52881-a989-479d-af46-f275c6370663'
const OFFICE2013_APP = '0ff1ce15-a989-479d-af46-f275c6370663'
const KNOWN_POOLS = [
  { application: 'windows', appId: WINDOWS_APP, name: 'Windows' },
  { application: 'office2010', appId: OFFICE2010_APP, name: 'Office 2010' },
  { application: 'office2013', appId: OFFICE2013_APP, name: 'Office 2013 and later' },
]
// What each kind of client needs the count to reach (its N count policy).
const DEFAULT_THRESHOLDS = {
  windows: [
    { kind: 'Windows Server', count: 5 },
    { kind: 'Windows client', count: 25 },
  ],
  office: [{ kind: 'Office client', count: 5 }],
}
const LICENSE_STATUS = [
  'Unlicensed',
  'Licensed',
  'Initial grace period',
  'License expired or hardware out of tolerance',
  'Non-genuine grace period',
  'Notification',
  'Extended grace period',
]
const HR_BELOW_THRESHOLD = '0xC004F038'
const RECENT_ROWS = 20
const TOKEN_KEY = 'kmslab.token'

const $ = (id) => document.getElementById(id)

/** Builds an element; strings and numbers among the children become text nodes. */
function el(tag, attrs, ...children) {
  const node = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue
    if (k === 'class') node.className = v
    else if (k === 'text') node.textContent = String(v)
    else node.setAttribute(k, v === true ? '' : String(v))
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue
    node.append(typeof c === 'object' ? c : String(c))
  }
  return node
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS('http://www.w3.org/2000/svg', tag)
  for (const [k, v] of Object.entries(attrs ?? {})) node.setAttribute(k, String(v))
  for (const c of children) node.append(typeof c === 'object' ? c : String(c))
  return node
}

// ---------------------------------------------------------------- access: token, fetch, events

let token = sessionStorage.getItem(TOKEN_KEY)
let askingToken = null

/** Shows the token dialog once, however many requests were refused meanwhile. */
function askToken(refused) {
  if (askingToken) return askingToken
  askingToken = new Promise((resolve) => {
    const dialog = $('token-dialog')
    const input = $('token-input')
    $('token-why').textContent = refused
      ? 'The host refused that token. Enter the token the host was started with (--http-token).'
      : 'This host asks for a token (--http-token) to show its figures.'
    input.value = ''
    const done = (event) => {
      event.preventDefault()
      const value = input.value.trim()
      if (!value) return
      $('token-form').removeEventListener('submit', done)
      dialog.close()
      token = value
      sessionStorage.setItem(TOKEN_KEY, token)
      askingToken = null
      resolve(token)
    }
    $('token-form').addEventListener('submit', done)
    // Escape would leave the page without figures: the dialog stays until a token is given.
    dialog.addEventListener('cancel', (e) => e.preventDefault())
    dialog.showModal()
    input.focus()
  })
  return askingToken
}

class HttpError extends Error {
  constructor(path, status, text) {
    super(`${path}: HTTP ${status}${text ? ` ${text}` : ''}`)
    this.status = status
  }
}

/** GETs a JSON endpoint, asking for the token when the host answers 401. */
async function api(path) {
  for (let attempt = 0; ; attempt++) {
    const headers = { Accept: 'application/json' }
    if (token) headers.Authorization = `Bearer ${token}`
    const res = await fetch(path, { headers, cache: 'no-store' })
    if (res.status === 401 && attempt < 5) {
      await askToken(Boolean(token))
      continue
    }
    if (!res.ok) throw new HttpError(path, res.status, (await res.text()).slice(0, 200))
    return res.json()
  }
}

function showError(err) {
  const banner = $('error-banner')
  if (!err) {
    banner.hidden = true
    return
  }
  banner.textContent = `Cannot reach the host: ${err.message ?? err}`
  banner.hidden = false
}

let source = null
let retryMs = 1000
let opened = false

/** Server-sent events carry each activation; EventSource sends no headers, so the token rides in the URL. */
function connectEvents() {
  if (source) source.close()
  const url = token ? `api/events?token=${encodeURIComponent(token)}` : 'api/events'
  source = new EventSource(url)
  setLive('connecting')
  source.onopen = () => {
    retryMs = 1000
    setLive('live')
    // Whatever happened while disconnected is in the history: catch up once.
    if (opened) refreshOverview()
    opened = true
  }
  const onEvent = (e) => {
    let record
    try {
      record = JSON.parse(e.data)
    } catch {
      return
    }
    if (record && typeof record === 'object') onActivation(record)
  }
  for (const type of ['message', 'activation', 'refusal']) source.addEventListener(type, onEvent)
  source.onerror = () => {
    if (source.readyState !== EventSource.CLOSED) {
      setLive('connecting')
      return
    }
    // Closed for good (a 401, or the host went away): find out which through a plain request.
    setLive('offline')
    source = null
    setTimeout(async () => {
      try {
        await api('api/status')
        showError(null)
      } catch (err) {
        showError(err)
      }
      connectEvents()
    }, retryMs)
    retryMs = Math.min(retryMs * 2, 30_000)
  }
}

function setLive(state) {
  $('live-state').dataset.state = state
  $('live-text').textContent = { live: 'live', connecting: 'connecting…', offline: 'offline' }[state]
}

// ---------------------------------------------------------------- shared helpers

let products = new Map() // skuId -> product record

const lower = (s) => String(s ?? '').toLowerCase()

function applicationOf(appIdOrName) {
  const key = lower(appIdOrName)
  return KNOWN_POOLS.find((p) => p.appId === key || p.application === key)
}

function applicationName(appIdOrName) {
  return applicationOf(appIdOrName)?.name ?? `Unknown application ${appIdOrName}`
}

function productName(row) {
  const name = row.product ?? row.productName ?? row.skuName
  if (name) return name
  const known = products.get(lower(row.skuId))
  return known?.name ?? row.skuId ?? 'unknown product'
}

function toDate(value) {
  if (value === undefined || value === null) return null
  const d = typeof value === 'number' ? new Date(value) : new Date(Date.parse(value))
  return Number.isNaN(d.getTime()) ? null : d
}

const timeFormat = new Intl.DateTimeFormat(undefined, { timeStyle: 'medium' })
const dateTimeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' })

function timeCell(value) {
  const d = toDate(value)
  if (!d) return el('td', {}, '—')
  const today = new Date().toDateString() === d.toDateString()
  return el(
    'td',
    { class: 'nowrap' },
    el(
      'time',
      { datetime: d.toISOString(), title: d.toISOString() },
      (today ? timeFormat : dateTimeFormat).format(d),
    ),
  )
}

function hex(hresult) {
  if (typeof hresult === 'string') return hresult
  return `0x${(Number(hresult) >>> 0).toString(16).toUpperCase().padStart(8, '0')}`
}

/** What the request came to for the client: it activates, it is below its threshold, or it was refused. */
function verdict(row) {
  const hr = row.hresultHex ?? row.hresult
  if (row.hresult !== undefined && Number(row.hresult) !== 0 && row.hresult !== '0x00000000') {
    return { kind: 'bad', text: `refused ${hex(hr)}`, title: row.reason ?? '' }
  }
  const activates =
    typeof row.willActivate === 'boolean'
      ? row.willActivate
      : typeof row.activated === 'boolean'
        ? row.activated
        : row.outcome
          ? row.outcome === 'activated'
          : Number(row.reportedCount) >= Number(row.requiredCount)
  return activates
    ? { kind: 'ok', text: 'activates' }
    : { kind: 'low', text: `${HR_BELOW_THRESHOLD} below threshold` }
}

function badge(v) {
  return el('span', { class: `badge badge-${v.kind}`, title: v.title || undefined }, v.text)
}

function replaceRows(tbody, rows) {
  tbody.replaceChildren(...rows)
}

function debounce(fn, ms) {
  let timer = null
  return () => {
    if (timer) return
    timer = setTimeout(() => {
      timer = null
      fn()
    }, ms)
  }
}

// ---------------------------------------------------------------- overview: pools and figures

function thresholdsOf(pool) {
  if (Array.isArray(pool.thresholds)) {
    return pool.thresholds.map((t) => ({
      kind: t.clients ?? t.kind ?? 'client',
      count: Number(t.required ?? t.count),
      newClient: t.newClientGets ?? null,
      activates: t.newClientActivates ?? null,
    }))
  }
  const known = applicationOf(pool.appId ?? pool.application)
  if (!known) return []
  return known.appId === WINDOWS_APP ? DEFAULT_THRESHOLDS.windows : DEFAULT_THRESHOLDS.office
}

function poolsOf(st) {
  const pools = Array.isArray(st?.pools) ? [...st.pools] : []
  for (const known of KNOWN_POOLS) {
    if (!pools.some((p) => lower(p.appId) === known.appId || p.application === known.application))
      pools.push({ ...known, currentCount: 0 })
  }
  const rank = (p) => {
    const i = KNOWN_POOLS.findIndex((k) => k.appId === lower(p.appId) || k.application === p.application)
    return i < 0 ? KNOWN_POOLS.length : i
  }
  return pools.sort((a, b) => rank(a) - rank(b))
}

function renderPools(st) {
  const tiles = poolsOf(st).map((pool) => {
    const count = Number(pool.currentCount ?? pool.count ?? 0)
    const known = applicationOf(pool.appId ?? pool.application)
    const thresholds = thresholdsOf(pool)
    const scale = Math.max(Number(pool.capacity) || 50, count)
    const meter = el(
      'div',
      { class: 'meter', 'aria-hidden': 'true' },
      el('div', { class: 'meter-fill', style: `width:${(100 * Math.min(count, scale)) / scale}%` }),
      thresholds.map((t) =>
        el(
          'span',
          { class: 'meter-mark', style: `left:${(100 * t.count) / scale}%`, title: `${t.kind}: ${t.count}` },
          el('span', { class: 'meter-label' }, String(t.count)),
        ),
      ),
    )
    const items = thresholds.map((t) => {
      // A new client is one more CMID in the pool: it is told the count with itself in it.
      const next = Number(t.newClient ?? count + 1)
      const ok = t.activates ?? next >= t.count
      return el(
        'li',
        { class: ok ? 'ok' : 'low' },
        el(
          'span',
          { class: 'kind' },
          t.kind,
          el('span', { class: 'muted small need' }, `needs ${t.count}, gets ${next}`),
        ),
        el('span', { class: `badge badge-${ok ? 'ok' : 'low'}` }, ok ? 'activates' : HR_BELOW_THRESHOLD),
      )
    })
    return el(
      'article',
      { class: `tile${known ? '' : ' tile-unknown'}`, 'data-app': known?.application ?? pool.appId },
      el(
        'h3',
        {},
        known ? known.name : 'Unknown application',
        known ? null : el('code', { class: 'guid' }, pool.appId ?? pool.application),
      ),
      el(
        'p',
        { class: 'count' },
        el('span', { class: 'count-value', 'data-count': count }, String(count)),
        el('span', { class: 'muted' }, count === 1 ? ' client counted' : ' clients counted'),
      ),
      meter,
      el(
        'p',
        { class: 'muted small caption' },
        items.length
          ? 'A new client now gets:'
          : `Its clients ask for their own threshold; a new one would be told ${count + 1}.`,
      ),
      el('ul', { class: 'thresholds' }, items),
    )
  })
  $('pools').replaceChildren(...tiles)
}

function renderFigures(st) {
  const r = st.requests ?? {}
  const by = r.byLicenseStatus ?? {}
  const rows = [
    ['Total requests received', r.total, 'major'],
    ['Failed requests received', r.failed, 'major'],
    ['Unlicensed', by.unlicensed],
    ['Licensed', by.licensed],
    ['Initial grace period', by.initialGrace],
    ['License expired or Hardware out of tolerance', by.outOfToleranceGrace],
    ['Non-genuine grace period', by.nonGenuineGrace],
    ['Notification', by.notification],
    ['Extended grace period', by.extendedGrace],
  ]
  const dl = $('dlv')
  const figure = ([label, value, kind]) => [
    el('dt', { class: kind ?? 'status' }, label),
    el('dd', { class: kind ?? 'status' }, value === undefined ? '—' : Number(value).toLocaleString()),
  ]
  dl.replaceChildren(
    ...rows.slice(0, 2).flatMap(figure),
    el('dt', { class: 'group' }, 'Requests with License Status'),
    el('dd', { class: 'group' }),
    ...rows.slice(2).flatMap(figure),
  )
  const started = toDate(st.startedAt)
  const host = [
    ['Version', st.version],
    ['Running since', started ? dateTimeFormat.format(started) : null],
    ['KMS listening on', Array.isArray(st.listening) ? st.listening.join(', ') : null, true],
    ['Counter', typeof st.counter === 'object' ? JSON.stringify(st.counter) : st.counter],
    ['State', st.state, true],
    ['Hardware ID', st.identity?.hwid, true],
    ...Object.entries(st.identity?.epids ?? {}).map(([family, epid]) => [`ePID ${family}`, epid, true]),
  ]
  $('host-info').replaceChildren(
    ...host
      .filter(([, value]) => value !== undefined && value !== null && value !== '')
      .flatMap(([label, value, mono]) => [
        el('dt', {}, label),
        el('dd', { class: mono ? 'mono' : '' }, String(value)),
      ]),
  )
}

function listeningText(list) {
  if (!Array.isArray(list) || list.length === 0) return 'KMS host'
  const text = list.map((a) => (typeof a === 'string' ? a : `${a.host}:${a.port}`)).join(', ')
  return `KMS host on ${text}`
}

function renderStatus(st) {
  $('host-version').textContent = st.version ? `v${st.version}` : ''
  $('host-listening').textContent = listeningText(st.listening)
  renderPools(st)
  renderFigures(st)
  fillApplicationFilter(st)
}

async function loadStatus() {
  renderStatus(await api('api/status'))
}

// ---------------------------------------------------------------- overview: newest activations

let recent = []

function recentRow(row, fresh) {
  const v = verdict(row)
  const tr = el(
    'tr',
    { class: fresh ? 'fresh' : '' },
    timeCell(row.time),
    el('td', {}, row.workstation ?? ''),
    el('td', {}, productName(row)),
    el(
      'td',
      { class: 'num' },
      row.reportedCount === null || row.reportedCount === undefined
        ? '—'
        : `${row.reportedCount} / ${row.requiredCount}`,
    ),
    el('td', {}, badge(v)),
    el('td', { class: 'muted mono' }, row.clientAddress ?? ''),
  )
  return tr
}

function renderRecent(freshCount = 0) {
  const tbody = $('recent').tBodies[0]
  if (recent.length === 0) {
    replaceRows(tbody, [
      el('tr', {}, el('td', { colspan: 6, class: 'empty' }, 'No activation yet: point a client here.')),
    ])
    return
  }
  replaceRows(
    tbody,
    recent.map((r, i) => recentRow(r, i < freshCount)),
  )
}

async function loadRecent() {
  const rows = await api(`api/history?format=json&limit=${RECENT_ROWS}`)
  recent = (Array.isArray(rows) ? rows : []).slice(-RECENT_ROWS).reverse()
  renderRecent()
}

// ---------------------------------------------------------------- overview: the plot

const RANGES = {
  '1h': { span: 3_600_000, bucket: 60_000 },
  '24h': { span: 86_400_000, bucket: 1_800_000 },
  '7d': { span: 7 * 86_400_000, bucket: 6 * 3_600_000 },
  '30d': { span: 30 * 86_400_000, bucket: 86_400_000 },
}
let plot = { range: '24h', start: 0, from: 0, buckets: [] }

function bucketOf(row) {
  const kind = verdict(row).kind
  return kind === 'ok' ? 'ok' : kind === 'low' ? 'low' : 'bad'
}

function addToPlot(row) {
  const t = toDate(row.time)?.getTime()
  if (t === undefined) return false
  const { bucket } = RANGES[plot.range]
  const i = Math.floor((t - plot.start) / bucket)
  if (i < 0) return false
  if (i >= plot.buckets.length) return true // the window moved on: redraw from scratch
  plot.buckets[i][bucketOf(row)]++
  return false
}

// The plot reads at most this many rows; on a busier host it starts at the oldest row it got.
const PLOT_ROWS = 50_000

async function loadPlot() {
  const range = RANGES[plot.range]
  const now = Date.now()
  const start = Math.floor((now - range.span) / range.bucket + 1) * range.bucket
  const n = Math.ceil((now + 1 - start) / range.bucket)
  const since = new Date(start).toISOString()
  const got = await api(`api/history?format=json&since=${encodeURIComponent(since)}&limit=${PLOT_ROWS}`)
  const rows = Array.isArray(got) ? got : []
  const from = rows.length >= PLOT_ROWS ? (toDate(rows[0].time)?.getTime() ?? start) : start
  plot = {
    range: plot.range,
    start,
    from,
    buckets: Array.from({ length: n }, () => ({ ok: 0, low: 0, bad: 0 })),
  }
  for (const row of rows) addToPlot(row)
  drawPlot()
}

/** The top of the y axis: four gridlines at whole steps of 1, 2 or 5 times a power of ten. */
function niceMax(v) {
  const raw = Math.max(1, v / 4)
  const p = 10 ** Math.floor(Math.log10(raw))
  const step = [1, 2, 5, 10].map((m) => m * p).find((m) => m >= raw)
  return step * 4
}

function tickLabel(t, range) {
  const d = new Date(t)
  if (range === '1h' || range === '24h')
    return d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', hour12: false })
  return d.toLocaleDateString(undefined, { month: 'short', day: 'numeric' })
}

function drawPlot() {
  if (plot.buckets.length === 0) return
  const W = Math.max(320, Math.round($('plot').clientWidth) || 640)
  const H = 260
  const pad = { l: 36, r: 22, t: 10, b: 26 }
  const { buckets, start, range } = plot
  const { bucket } = RANGES[range]
  const totals = buckets.map((b) => b.ok + b.low + b.bad)
  const sum = totals.reduce((a, b) => a + b, 0)
  const max = niceMax(Math.max(...totals, 0))
  const plotW = W - pad.l - pad.r
  const plotH = H - pad.t - pad.b
  const bw = plotW / buckets.length
  const y = (v) => pad.t + plotH - (v / max) * plotH
  const ok = buckets.reduce((a, b) => a + b.ok, 0)
  const label = `Activations over the ${
    $('plot-range').selectedOptions[0]?.textContent ?? range
  }: ${sum} requests, ${ok} activating, ${sum - ok} not.`
  const root = svg('svg', {
    viewBox: `0 0 ${W} ${H}`,
    role: 'img',
    'aria-label': label,
    class: 'chart',
  })
  root.append(svg('title', {}, label))
  if (plot.from > start) {
    // Only the newest rows were read: the time before the oldest of them is left blank and says so.
    const x = pad.l + ((plot.from - start) / (bucket * buckets.length)) * plotW
    root.append(
      svg('rect', { x: pad.l, y: pad.t, width: x - pad.l, height: plotH, class: 'unloaded' }),
      svg('text', { x: pad.l + 6, y: pad.t + 14, class: 'axis' }, 'older requests not shown'),
    )
  }
  for (let i = 0; i <= 4; i++) {
    const v = (max / 4) * i
    root.append(
      svg('line', { x1: pad.l, x2: W - pad.r, y1: y(v), y2: y(v), class: 'grid' }),
      svg('text', { x: pad.l - 6, y: y(v) + 4, class: 'axis', 'text-anchor': 'end' }, String(Math.round(v))),
    )
  }
  buckets.forEach((b, i) => {
    let base = 0
    const x = pad.l + i * bw + Math.min(1, bw * 0.1)
    const w = Math.max(1, bw - Math.min(2, bw * 0.2))
    for (const kind of ['ok', 'low', 'bad']) {
      const v = b[kind]
      if (!v) continue
      const rect = svg('rect', {
        x,
        y: y(base + v),
        width: w,
        height: y(base) - y(base + v),
        class: `bar-${kind}`,
      })
      const from = new Date(start + i * bucket)
      rect.append(
        svg(
          'title',
          {},
          `${dateTimeFormat.format(from)}: ${v} ${kind === 'ok' ? 'activating' : kind === 'low' ? 'below threshold' : 'refused'}`,
        ),
      )
      root.append(rect)
      base += v
    }
  })
  const ticks = 6
  for (let k = 0; k <= ticks; k++) {
    const i = Math.round((k * (buckets.length - 1)) / ticks)
    const x = pad.l + i * bw + bw / 2
    root.append(
      svg('line', { x1: x, x2: x, y1: pad.t + plotH, y2: pad.t + plotH + 4, class: 'tick' }),
      svg(
        'text',
        { x, y: H - 6, class: 'axis', 'text-anchor': 'middle' },
        tickLabel(start + i * bucket, range),
      ),
    )
  }
  root.append(
    svg('line', { x1: pad.l, x2: W - pad.r, y1: pad.t + plotH, y2: pad.t + plotH, class: 'baseline' }),
  )
  $('plot').replaceChildren(root)
}

// ---------------------------------------------------------------- live activations

const refreshStatusSoon = debounce(() => loadStatus().catch(showError), 400)
const refreshClientsSoon = debounce(() => {
  if (currentView() === 'clients') loadClients().catch(showError)
}, 600)

// A busy host sends thousands of events a second: they are gathered and drawn a few times a second.
let pending = []
let flushTimer = null

function onActivation(record) {
  pending.push(record)
  if (!flushTimer) flushTimer = setTimeout(flushActivations, 200)
}

function flushActivations() {
  flushTimer = null
  const batch = pending
  pending = []
  if (batch.length === 0) return
  const newest = batch.slice(-RECENT_ROWS).reverse()
  recent = [...newest, ...recent].slice(0, RECENT_ROWS)
  renderRecent(newest.length)
  const last = batch[batch.length - 1]
  const more = batch.length > 1 ? ` (and ${batch.length - 1} more)` : ''
  $('recent-note').textContent =
    `New: ${last.workstation ?? ''} ${productName(last)}, ${verdict(last).text}${more}`
  let stale = false
  for (const record of batch) stale = addToPlot(record) || stale
  if (stale) loadPlot().catch(showError)
  else drawPlot()
  refreshStatusSoon()
  refreshClientsSoon()
}

async function refreshOverview() {
  try {
    await Promise.all([loadStatus(), loadRecent(), loadPlot()])
    showError(null)
  } catch (err) {
    showError(err)
  }
}

// ---------------------------------------------------------------- clients

let clients = []

function fillApplicationFilter(st) {
  const select = $('clients-app')
  const chosen = select.value
  const options = poolsOf(st).map((p) => {
    const value = p.application ?? p.appId
    return el(
      'option',
      { value },
      applicationName(value === p.application && !applicationOf(value) ? (p.appId ?? value) : value),
    )
  })
  select.replaceChildren(el('option', { value: '' }, 'all applications'), ...options)
  select.value = chosen
}

function clientMatches(c, text) {
  if (!text) return true
  const hay = [
    c.workstation,
    c.cmid,
    productName(c),
    c.skuId,
    c.application,
    applicationName(c.application ?? c.appId),
  ]
  return hay.some((h) => lower(h).includes(text))
}

function licenseText(value) {
  if (typeof value === 'number') return LICENSE_STATUS[value] ?? `status ${value}`
  return value ?? '—'
}

function renderClients() {
  const text = lower($('clients-text').value.trim())
  const shown = clients.filter((c) => clientMatches(c, text))
  const tbody = $('clients').tBodies[0]
  $('clients-count').textContent =
    `${shown.length} of ${clients.length} client${clients.length === 1 ? '' : 's'}`
  if (shown.length === 0) {
    replaceRows(tbody, [
      el(
        'tr',
        {},
        el(
          'td',
          { colspan: 9, class: 'empty' },
          clients.length ? 'No client matches.' : 'No client in the pools.',
        ),
      ),
    ])
    return
  }
  replaceRows(
    tbody,
    shown.map((c) =>
      el(
        'tr',
        {},
        el('td', {}, applicationName(c.application ?? c.appId)),
        el('td', { class: 'nowrap' }, c.workstation ?? ''),
        el('td', {}, productName(c)),
        el('td', { class: 'mono small cmid', title: c.cmid ?? '' }, c.cmid ?? ''),
        el('td', {}, licenseText(c.licenseStatus)),
        el('td', {}, c.vm === null || c.vm === undefined ? '—' : c.vm ? 'yes' : 'no'),
        el('td', { class: 'num' }, c.requests ?? ''),
        timeCell(c.firstSeen),
        timeCell(c.lastSeen),
      ),
    ),
  )
}

async function loadClients() {
  const app = $('clients-app').value
  const rows = await api(app ? `api/clients?application=${encodeURIComponent(app)}` : 'api/clients')
  clients = Array.isArray(rows) ? rows : []
  renderClients()
}

// ---------------------------------------------------------------- products

let productList = []

async function loadProducts() {
  const rows = await api('api/products')
  productList = Array.isArray(rows) ? rows : (rows?.products ?? [])
  products = new Map(productList.map((p) => [lower(p.skuId ?? p.id), p]))
}

function renderProducts() {
  const words = lower($('products-text').value).split(/\s+/).filter(Boolean)
  const shown = productList.filter((p) => {
    const hay = lower([p.name, p.gvlk, p.family, p.skuId, ...(p.aliases ?? [])].join(' '))
    return words.every((w) => hay.includes(w))
  })
  $('products-count').textContent = `${shown.length} of ${productList.length} products`
  const tbody = $('products').tBodies[0]
  replaceRows(
    tbody,
    shown.map((p) =>
      el(
        'tr',
        {},
        el(
          'td',
          {},
          p.name ?? p.skuId,
          p.retail ? el('span', { class: 'tag' }, 'retail') : null,
          p.preview ? el('span', { class: 'tag' }, 'preview') : null,
        ),
        el('td', { class: 'mono nowrap' }, p.gvlk ?? '—'),
        el('td', { class: 'nowrap' }, p.family ?? ''),
        el('td', { class: 'num' }, p.requiredCount ?? ''),
        el(
          'td',
          { class: 'num' },
          (p.protocol ?? p.defaultProtocol) ? `V${p.protocol ?? p.defaultProtocol}` : '',
        ),
      ),
    ),
  )
}

// ---------------------------------------------------------------- connect

function commandBlock(title, text, note) {
  const code = el('code', {}, text)
  const button = el('button', { type: 'button', class: 'copy', 'aria-label': `Copy: ${title}` }, 'Copy')
  button.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(text)
      button.textContent = 'Copied'
    } catch {
      const range = document.createRange()
      range.selectNodeContents(code)
      getSelection().removeAllRanges()
      getSelection().addRange(range)
      button.textContent = 'Selected'
    }
    setTimeout(() => {
      button.textContent = 'Copy'
    }, 1500)
  })
  return el(
    'section',
    { class: 'command card' },
    el('div', { class: 'card-head' }, el('h2', {}, title), button),
    note ? el('p', { class: 'muted small' }, note) : null,
    el('pre', {}, code),
  )
}

const lines = (v) => (Array.isArray(v) ? v.join('\n') : (v ?? ''))

function targetBlocks(target, several) {
  const c = target.commands ?? {}
  const blocks = [
    [
      'Windows',
      lines([c.windows, c.windowsActivate].filter(Boolean)),
      'Point Windows at this host, then activate now.',
    ],
    [
      'Office',
      lines(c.office),
      'In the Office folder (for example C:\\Program Files\\Microsoft Office\\Office16).',
    ],
    ['DNS SRV record', lines(target.dnsSrv), 'Lets clients find this host by themselves (zone file syntax).'],
  ]
    .filter(([, text]) => text)
    .map(([title, text, note]) => commandBlock(several ? `${title} (${target.address})` : title, text, note))
  return blocks
}

async function loadConnect() {
  const cfg = await api('api/config')
  const targets = Array.isArray(cfg.targets) ? cfg.targets : []
  const several = targets.length > 1
  const intro = el(
    'p',
    {},
    targets.length
      ? [
          'Clients reach this host at ',
          el('strong', { class: 'mono' }, targets.map((t) => t.address).join(', ')),
          '.',
        ]
      : 'This host lists no KMS address.',
  )
  const placeholder = targets.some((t) => t.host === 'HOSTNAME')
    ? el(
        'p',
        { class: 'banner warn' },
        'The host listens on every address: put its DNS name where HOSTNAME stands.',
      )
    : null
  const notes = (cfg.notes ?? []).map((n) => el('li', {}, n))
  $('connect').replaceChildren(
    ...[intro, placeholder, ...targets.flatMap((t) => targetBlocks(t, several))].filter(Boolean),
    notes.length ? el('ul', { class: 'notes muted small' }, notes) : '',
  )
}

// ---------------------------------------------------------------- navigation

const VIEWS = { '': 'overview', clients: 'clients', products: 'products', connect: 'connect' }
const loaded = new Set()

function currentView() {
  const key = location.hash.replace(/^#\/?/, '').split(/[/?]/)[0]
  return VIEWS[key] ?? 'overview'
}

async function show() {
  const view = currentView()
  for (const section of document.querySelectorAll('main > section[data-view]'))
    section.hidden = section.dataset.view !== view
  for (const link of document.querySelectorAll('nav a[data-view]')) {
    if (link.dataset.view === view) link.setAttribute('aria-current', 'page')
    else link.removeAttribute('aria-current')
  }
  const titles = {
    overview: 'Overview',
    clients: 'Clients',
    products: 'Products',
    connect: 'Point clients here',
  }
  document.title = `${titles[view]} · kmslab host`
  try {
    if (view === 'clients') await loadClients()
    if (view === 'products') {
      if (!loaded.has('products')) await loadProducts()
      loaded.add('products')
      renderProducts()
    }
    if (view === 'connect') await loadConnect()
    showError(null)
  } catch (err) {
    showError(err)
  }
}

async function start() {
  new ResizeObserver(debounce(() => drawPlot(), 150)).observe($('plot'))
  $('plot-range').addEventListener('change', (e) => {
    plot.range = e.target.value
    loadPlot().catch(showError)
  })
  $('clients-app').addEventListener('change', () => loadClients().catch(showError))
  $('clients-text').addEventListener('input', renderClients)
  $('products-text').addEventListener('input', renderProducts)
  for (const form of [$('clients-filter'), $('products-filter')])
    form.addEventListener('submit', (e) => e.preventDefault())
  window.addEventListener('hashchange', () => {
    show()
    $('main').focus({ preventScroll: true })
  })
  try {
    // Product names for the tables; the first request also settles the token before events start.
    await loadProducts()
    loaded.add('products')
  } catch (err) {
    showError(err)
  }
  await Promise.all([show(), refreshOverview()])
  connectEvents()
  // The plot's window slides on, and the 30-day expiry changes counts with no request at all.
  setInterval(() => {
    if (!document.hidden) refreshOverview()
  }, 60_000)
}

start()
