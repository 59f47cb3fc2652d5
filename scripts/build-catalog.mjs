#!/usr/bin/env node
// Regenerates data/products.json from py-kms' KmsDataBase.xml plus the hand-kept data/overlay.json:
//   node scripts/build-catalog.mjs ../shared/reference/KmsDataBase.xml [--out FILE]
// The project keeps its own JSON rather than the XML; this script is how the JSON is derived, so
// its output must be deterministic (same inputs, same bytes) and the committed file must equal it.
// Warnings about the XML (dangling references, keys Microsoft publishes differently) go to stderr
// and into the file's "notes", so every deviation from the XML is written down next to the data.
import { createHash } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { basename, dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

// The canonical name form is the one lookups use (src/catalog/names.ts), taken from the build so
// the aliases kept here and the collision checks at load time can never disagree.
const { canon } = await import('../dist/catalog/names.js').catch(() => {
  console.error('build-catalog: dist/catalog/names.js is missing; run `npm run build` first')
  process.exit(1)
})

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const OFFICE_APPS =
  'Access|Excel|Groove|InfoPath|Lync|OneNote|Outlook|PowerPoint|Project|Publisher|Skype for Business|Visio|Word'

// --- a reader for this one file shape: elements with double-quoted attributes, no text content ---

const ENTITIES = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }

/** Elements in document order as { name, attrs } (attribute names lower-cased); comments dropped. */
export function readElements(xml) {
  const body = xml.replace(/<!--[\s\S]*?-->/g, '').replace(/<\?[\s\S]*?\?>/g, '')
  const out = []
  const stack = []
  for (const m of body.matchAll(/<(\/?)([A-Za-z][\w:.-]*)((?:\s+[\w:.-]+\s*=\s*"[^"]*")*)\s*(\/?)>/g)) {
    const [, closing, name, attrText, selfClosing] = m
    if (closing) {
      if (stack.pop() !== name) throw new Error(`unbalanced </${name}> at offset ${m.index}`)
      continue
    }
    const attrs = {}
    for (const a of attrText.matchAll(/([\w:.-]+)\s*=\s*"([^"]*)"/g)) {
      // case-insensitive names: the XML has one DefaultKmsprotocol among the DefaultKmsProtocols
      attrs[a[1].toLowerCase()] = a[2].replace(/&(\w+);/g, (e, n) => ENTITIES[n] ?? e).trim()
    }
    out.push({ name, attrs })
    if (!selfClosing) stack.push(name)
  }
  if (stack.length) throw new Error(`unclosed <${stack.at(-1)}>`)
  return out
}

const guid = (s) => (s ?? '').replace(/[{}]/g, '').toLowerCase()
const bool = (s) => /^true$/i.test(s ?? '')
const int = (s) => (s === undefined || s === '' ? undefined : Number.parseInt(s, 10))
const day = (s) => (s ? s.slice(0, 10) : undefined)
const protocol = (s) => Number.parseInt(s ?? '6.0', 10)

// --- aliases: forms people type that the exact names do not cover ---

function generatedAliases(name) {
  const forms = new Set([name])
  const add = (v) => forms.add(v.replace(/\s+/g, ' ').trim())
  for (const v of [...forms]) {
    if (v.includes('Windows 10/11 ')) {
      for (const r of ['Windows 10 ', 'Windows 11 ', 'Windows ']) add(v.replace('Windows 10/11 ', r))
    }
  }
  for (const v of [...forms]) {
    const app = new RegExp(`^Office (${OFFICE_APPS}) (.*)$`, 'i').exec(v)
    if (app) add(`${app[1]} ${app[2]}`)
  }
  for (const v of [...forms]) {
    if (/^Office /i.test(v) || new RegExp(`^(${OFFICE_APPS}) `, 'i').test(v)) add(v.replace(/ LTSC /, ' '))
  }
  for (const v of [...forms]) {
    const suite = new RegExp(`^Office (?!(?:${OFFICE_APPS}) )(.+) ((?:19|20)\\d\\d)$`, 'i').exec(v)
    if (suite) add(`Office ${suite[2]} ${suite[1]}`)
  }
  forms.delete(name)
  return [...forms]
}

// --- the build: one step per table, in the order the later ones depend on ---

const SRC = ['py-kms-db']
const addNote = (entry, text) => {
  entry.note = entry.note ? `${entry.note}; ${text}` : text
}

/** Apps, KMS ids and SKUs from the AppItem > KmsItem > SkuItem nesting. */
function readProducts(els, overlay) {
  const apps = []
  const kmsIds = []
  const skus = []
  let app
  let kms
  for (const { name, attrs } of els) {
    if (name === 'AppItem') {
      const o = overlay.apps[guid(attrs.id)]
      app = { id: guid(attrs.id), name: o?.name ?? attrs.displayname, aliases: [], source: [...SRC] }
      if (o) {
        app.aliases = [attrs.displayname, ...o.aliases].filter((a) => a !== app.name)
        app.source.push(...o.source)
      }
      apps.push(app)
    } else if (name === 'KmsItem') {
      kms = kmsEntry({
        id: guid(attrs.id),
        name: attrs.displayname,
        appId: app.id,
        requiredCount: int(attrs.ncountpolicy) ?? 25,
        defaultProtocol: protocol(attrs.defaultkmsprotocol),
        retail: bool(attrs.isretail),
        preview: bool(attrs.ispreview),
        source: [...SRC],
      })
      kmsIds.push(kms)
    } else if (name === 'SkuItem') {
      const sku = { id: guid(attrs.id), name: attrs.displayname, aliases: [], appId: app.id, kmsId: kms.id }
      Object.assign(sku, { gvlk: attrs.gvlk, source: [...SRC] })
      if (bool(attrs.isgeneratedgvlk)) sku.gvlkGenerated = true
      skus.push(sku)
    }
  }
  return { apps, kmsIds, skus }
}

/** A KMS id with its fields in file order; family, aliases and ePID family are filled in later. */
function kmsEntry({ id, name, appId, requiredCount, defaultProtocol, retail, preview, source, note }) {
  const k = { id, name, aliases: [], appId, family: '', requiredCount, defaultProtocol, retail, preview }
  return Object.assign(k, { epidFamily: 'windows', source: [...source] }, note ? { note } : {})
}

/** KMS ids the XML lacks or gets wrong: added, SKUs moved off placeholders, placeholders renamed. */
function fixKmsIds({ apps, kmsIds, skus }, overlay) {
  for (const x of overlay.extraKmsIds) {
    const k = kmsEntry(x)
    kmsIds.push(k)
    for (const s of skus.filter((s) => x.takesOver && s.kmsId === x.takesOver)) {
      s.kmsId = k.id
      s.source.push(...x.source)
    }
  }
  const byId = new Map(kmsIds.map((k) => [k.id, k]))
  for (const [id, r] of Object.entries(overlay.renamedKmsIds)) Object.assign(byId.get(id), r)
  for (const k of kmsIds) {
    const split = k.name.includes('Windows 10/11')
      ? ['Windows 10', 'Windows 11'].map((w) => k.name.replace('Windows 10/11', w))
      : []
    k.aliases = [...split, ...(overlay.kmsAliases[k.id] ?? [])]
    const appName = apps.find((a) => a.id === k.appId).name
    const year = /(?:19|20)\d\d/.exec(k.name)?.[0]
    if (appName === 'Windows') k.family = /server/i.test(k.name) ? 'windows-server' : 'windows-client'
    else if (appName === 'Office 2010') k.family = 'office-2010'
    else if (year) k.family = `office-${year}`
    else throw new Error(`no product family for KMS id ${k.id} (${k.name})`)
  }
  return byId
}

/** CSVLKs: a repeated id merged, activations fixed or (when dangling) dropped with a note. */
function readCsvlks(els, overlay, kmsById, warn) {
  const csvlks = new Map()
  let csvlk
  for (const { name, attrs } of els) {
    if (name === 'CsvlkItem') {
      const id = guid(attrs.id)
      csvlk = id ? csvlks.get(id) : undefined
      if (!id) warn(`CSVLK "${attrs.displayname}" skipped: it has no id (nor group id or key range)`)
      else if (csvlk) addNote(csvlk, `listed twice in the XML (also as "${attrs.displayname}"), merged`)
      else {
        csvlk = { id, name: attrs.displayname, groupId: int(attrs.groupid), minKeyId: int(attrs.minkeyid) }
        Object.assign(csvlk, { maxKeyId: int(attrs.maxkeyid), releaseDate: day(attrs.releasedate) })
        Object.assign(csvlk, { lab: bool(attrs.islab), preview: bool(attrs.ispreview), activates: [] })
        csvlk.source = [...SRC]
        const date = overlay.csvlkReleaseDates[id]
        if (date && !csvlk.releaseDate) {
          Object.assign(csvlk, { releaseDate: date.releaseDate, note: date.note })
          csvlk.source.push(...date.source)
        }
        csvlks.set(id, csvlk)
      }
    } else if (name === 'Activate' && csvlk) {
      const fix = overlay.activationFixes.find((f) => f.from === guid(attrs.kmsitem))
      const target = fix?.to ?? guid(attrs.kmsitem)
      const successors = overlay.extraKmsIds.filter((x) => x.takesOver === target).map((x) => x.id)
      for (const t of [target, ...successors]) {
        if (kmsById.has(t)) {
          if (!csvlk.activates.includes(t)) csvlk.activates.push(t)
          continue
        }
        warn(`CSVLK "${csvlk.name}" activates ${t}, which no KMS id defines: reference dropped`)
        addNote(csvlk, `activates ${t} in the XML, an id no KmsItem defines`)
      }
      if (fix && !csvlk.source.includes(fix.source[0])) {
        csvlk.source.push(...fix.source)
        addNote(csvlk, fix.note)
      }
    }
  }
  for (const c of csvlks.values()) for (const k of Object.keys(c)) if (c[k] === undefined) delete c[k]
  return csvlks
}

/** Each family answers the KMS ids its CSVLK activates; every other id answers as Windows. */
function epidFamiliesOf(overlay, csvlks, kmsById) {
  const families = overlay.epidFamilies.map((f) => {
    const { id, groupId, minKeyId, maxKeyId, releaseDate } = csvlks.get(f.csvlkId)
    const { minHostBuild } = f
    return {
      id: f.id,
      name: f.name,
      csvlkId: id,
      groupId,
      minKeyId,
      maxKeyId,
      releaseDate,
      minHostBuild,
      source: f.source,
    }
  })
  for (const f of families.filter((f) => f.id !== 'windows')) {
    for (const id of csvlks.get(f.csvlkId).activates) kmsById.get(id).epidFamily = f.id
  }
  return families
}

/** Microsoft's tables win where they disagree; returns the names they give each SKU. */
function checkGvlks(skus, overlay, warn) {
  for (const fix of overlay.gvlkFixes) {
    const s = skus.find((s) => s.id === fix.skuId)
    if (s.gvlk !== fix.was) throw new Error(`gvlk fix for ${s.id}: the XML has ${s.gvlk}, not ${fix.was}`)
    Object.assign(s, { gvlk: fix.gvlk, note: fix.note })
  }
  const msNames = new Map()
  for (const [key, rows] of Object.entries(overlay.msGvlks)) {
    for (const [gvlk, ...names] of rows) {
      const s = skus.find((s) => s.gvlk === gvlk)
      if (!s) {
        warn(`${key} lists ${gvlk} (${names[0]}), which no SKU of the XML has`)
        continue
      }
      if (!s.source.includes(key)) s.source.push(key)
      msNames.set(s.id, [...(msNames.get(s.id) ?? []), ...names.filter((n) => !n.includes('('))])
    }
  }
  return msNames
}

/** Hand-kept aliases must be unique (else the build fails); generated ones that collide are dropped. */
function assignAliases(skus, overlay, msNames, warn) {
  const claims = new Map()
  const claim = (text, id, hand) => {
    const key = canon(text)
    const c = claims.get(key) ?? { ids: new Set(), hand: new Set() }
    c.ids.add(id)
    if (hand) c.hand.add(id)
    claims.set(key, c)
  }
  const candidates = (s) => [...(msNames.get(s.id) ?? []), ...generatedAliases(s.name)]
  for (const s of skus) claim(s.name, s.id, true)
  for (const [id, list] of Object.entries(overlay.skuAliases)) for (const a of list) claim(a, id, true)
  for (const s of skus) for (const a of candidates(s)) claim(a, s.id, false)
  for (const [key, c] of claims) {
    if (c.hand.size > 1)
      throw new Error(`"${key}" is the name or hand-kept alias of ${[...c.hand].join(', ')}`)
  }
  for (const s of skus) {
    const hand = overlay.skuAliases[s.id] ?? []
    const seen = new Set([canon(s.name)])
    for (const a of [...candidates(s), ...hand]) {
      const key = canon(a)
      const c = claims.get(key)
      if (seen.has(key)) continue
      if (!(hand.includes(a) || c.hand.has(s.id) || (c.ids.size === 1 && c.hand.size === 0))) {
        if (c.hand.size === 0) warn(`alias "${a}" dropped: ${c.ids.size} SKUs would answer to it`)
        continue
      }
      seen.add(key)
      s.aliases.push(a)
    }
    if (hand.length > 0) s.source.push('kmslab')
  }
}

function readHostBuilds(els) {
  return els
    .filter((e) => e.name === 'WinBuild')
    .map(({ attrs }) => {
      const b = { build: int(attrs.buildnumber), name: attrs.displayname, platformId: int(attrs.platformid) }
      if (attrs.releasedate) b.releaseDate = day(attrs.releasedate)
      const flags = { useForEpid: bool(attrs.useforepid), mayBeServer: bool(attrs.maybeserver) }
      return Object.assign(b, flags, { usesNdr64: bool(attrs.usesndr64), source: [...SRC] })
    })
}

export function buildCatalog(xmlText, overlay, xmlName = 'KmsDataBase.xml') {
  const notes = []
  const warn = (text) => {
    notes.push(text)
    process.stderr.write(`build-catalog: ${text}\n`)
  }
  const els = readElements(xmlText)
  const products = readProducts(els, overlay)
  const kmsById = fixKmsIds(products, overlay)
  const csvlks = readCsvlks(els, overlay, kmsById, warn)
  const epidFamilies = epidFamiliesOf(overlay, csvlks, kmsById)
  assignAliases(products.skus, overlay, checkGvlks(products.skus, overlay, warn), warn)
  return {
    schema: 1,
    generatedBy: 'scripts/build-catalog.mjs from the XML below and data/overlay.json',
    generatedFrom: { file: xmlName, sha256: createHash('sha256').update(xmlText).digest('hex') },
    sources: overlay.sources,
    notes,
    ...products,
    csvlks: [...csvlks.values()],
    hostBuilds: readHostBuilds(els),
    epidFamilies,
  }
}

/** JSON with one table entry per line: small diffs when one product changes. */
export function formatCatalog(data) {
  const lines = Object.entries(data).map(([key, value]) => {
    const k = JSON.stringify(key)
    if (Array.isArray(value)) {
      if (value.length === 0) return `  ${k}: []`
      return `  ${k}: [\n${value.map((v) => `    ${JSON.stringify(v)}`).join(',\n')}\n  ]`
    }
    if (value && typeof value === 'object' && key === 'sources') {
      const rows = Object.entries(value).map(([n, v]) => `    ${JSON.stringify(n)}: ${JSON.stringify(v)}`)
      return `  ${k}: {\n${rows.join(',\n')}\n  }`
    }
    return `  ${k}: ${JSON.stringify(value)}`
  })
  return `{\n${lines.join(',\n')}\n}\n`
}

function main(argv) {
  const args = [...argv]
  let out = join(root, 'data', 'products.json')
  const at = args.indexOf('--out')
  if (at >= 0) [, out] = args.splice(at, 2)
  if (args.length !== 1 || !out) {
    process.stderr.write('usage: node scripts/build-catalog.mjs KmsDataBase.xml [--out FILE]\n')
    return 64
  }
  const xml = readFileSync(args[0], 'utf8')
  const overlay = JSON.parse(readFileSync(join(root, 'data', 'overlay.json'), 'utf8'))
  const data = buildCatalog(xml, overlay, basename(args[0]))
  writeFileSync(out, formatCatalog(data))
  const n = (t) => data[t].length
  process.stdout.write(
    `${out}: ${n('apps')} apps, ${n('kmsIds')} KMS ids, ${n('skus')} SKUs, ${n('csvlks')} CSVLKs, ` +
      `${n('hostBuilds')} host builds, ${n('epidFamilies')} ePID families\n`,
  )
  return 0
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = main(process.argv.slice(2))
}
