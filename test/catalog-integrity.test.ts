import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { EPID_FAMILIES, isGvlk, loadCatalog, PRODUCT_FAMILIES } from '../src/catalog/index.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const XML = join(root, '..', 'shared', 'reference', 'KmsDataBase.xml')
const catalog = loadCatalog()

const unique = <T>(list: T[]) => new Set(list).size === list.length

t.test('every id is unique within its table and across SKUs, KMS ids and apps', async (t) => {
  t.ok(unique(catalog.apps.map((a) => a.id)), 'app ids')
  t.ok(unique(catalog.kmsIds.map((k) => k.id)), 'KMS ids')
  t.ok(unique(catalog.skus.map((s) => s.id)), 'SKU ids')
  t.ok(unique(catalog.csvlks.map((c) => c.id)), 'CSVLK ids')
  t.ok(unique(catalog.hostBuilds.map((b) => b.build)), 'build numbers')
  t.ok(unique(catalog.epidFamilies.map((f) => f.id)), 'ePID family ids')
  t.ok(unique(catalog.skus.map((s) => s.gvlk)), 'GVLKs')
  const all = [...catalog.apps, ...catalog.kmsIds, ...catalog.skus].map((e) => e.id)
  t.ok(unique(all), 'no id is both an app, a KMS id and a SKU')
})

t.test('every reference resolves', async (t) => {
  for (const k of catalog.kmsIds) t.ok(catalog.appById(k.appId), `app of KMS id ${k.name}`)
  for (const s of catalog.skus) {
    const k = catalog.kmsById(s.kmsId)
    if (!k) t.fail(`KMS id of ${s.name}`)
    else t.equal(s.appId, k.appId, `${s.name}: SKU and KMS id agree on the app`)
  }
  for (const c of catalog.csvlks)
    for (const id of c.activates) t.ok(catalog.kmsById(id), `${c.name} activates ${id}`)
  for (const f of catalog.epidFamilies)
    if (f.csvlkId)
      t.ok(
        catalog.csvlks.some((c) => c.id === f.csvlkId),
        f.id,
      )
  const keys = new Set(Object.keys(catalog.sources))
  const entries = [
    ...catalog.apps,
    ...catalog.kmsIds,
    ...catalog.skus,
    ...catalog.csvlks,
    ...catalog.hostBuilds,
  ]
  const unknown = entries.flatMap((e) => e.source).filter((s) => !keys.has(s))
  t.same([...new Set(unknown)], [], 'every source key is described in "sources"')
})

t.test('thresholds, families and protocol versions', async (t) => {
  for (const k of catalog.kmsIds) {
    t.ok((PRODUCT_FAMILIES as readonly string[]).includes(k.family), `${k.name}: family ${k.family}`)
    t.equal(
      k.requiredCount,
      k.family === 'windows-client' ? 25 : 5,
      `${k.name} (${k.family}) needs ${k.requiredCount}`,
    )
    t.ok([4, 5, 6].includes(k.defaultProtocol), `${k.name}: protocol ${k.defaultProtocol}`)
  }
  const byName = (name: string) => catalog.kmsIds.find((k) => k.name === name)!
  t.equal(byName('Windows 7').defaultProtocol, 4)
  t.equal(byName('Windows 8 (Volume)').defaultProtocol, 5)
  t.equal(byName('Office 2013').defaultProtocol, 5)
  t.equal(byName('Office 2010').family, 'office-2010')
  t.equal(byName('Windows 10/11 (Retail)').retail, true)
  t.equal(byName('Windows Server Next (Preview)').preview, true)
  t.equal(
    byName('Windows 10/11 2015 (Volume)').retail || byName('Windows 10/11 2015 (Volume)').preview,
    false,
  )
  t.same(catalog.kmsIds.filter((k) => k.retail).length, 3, 'three retail groups: Windows 8, 8.1 and 10/11')
})

t.test('GVLKs: 5x5 form, at least the 257 SKUs of the XML', async (t) => {
  t.same(
    catalog.skus.filter((s) => !isGvlk(s.gvlk)).map((s) => s.name),
    [],
  )
  t.ok(catalog.skus.filter((s) => isGvlk(s.gvlk)).length >= 257)
})

const noXml = !existsSync(XML) && `${XML} not present`

t.test(
  'no SKU of KmsDataBase.xml is dropped (preview, retail, Azure and IoT included)',
  { skip: noXml },
  async (t) => {
    const xml = readFileSync(XML, 'utf8').replace(/<!--[\s\S]*?-->/g, '')
    const ids = [...xml.matchAll(/<SkuItem\b[^>]*?\sId="\{?([0-9a-fA-F-]{36})\}?"/g)].map((m) =>
      m[1].toLowerCase(),
    )
    t.equal(ids.length, 257)
    const missing = ids.filter((id) => !catalog.skuById(id))
    t.same(missing, [])
    for (const name of [
      'Windows 8.1 Core',
      'Windows Server Preview Datacenter',
      'Windows Server 2025 Azure Core',
    ]) {
      t.ok(
        catalog.skus.some((s) => s.name === name),
        name,
      )
    }
    t.ok(
      catalog.skus.some((s) => s.name.includes('IoT')),
      'IoT',
    )
  },
)

t.test('ids and names the captures print resolve to the same product', async (t) => {
  const dir = join(root, 'pcaps')
  const seen = new Map<string, { kind: string; id: string; name: string }>()
  for (const f of readdirSync(dir).filter((f) => f.endsWith('.txt'))) {
    const text = readFileSync(join(dir, f), 'utf8')
    const re =
      /(KMS ID \(aka KMS counted ID\)|SKU ID \(aka Activation ID\))\s*: ([0-9a-f-]{36}) \((.+)\)\s*$/gm
    for (const m of text.matchAll(re)) {
      const kind = m[1].startsWith('KMS') ? 'kms' : 'sku'
      seen.set(`${kind} ${m[2]} ${m[3]}`, { kind, id: m[2], name: m[3] })
    }
  }
  const named = [...seen.values()].filter((x) => x.name !== 'Unknown')
  t.ok(named.length >= 12, `${named.length} distinct id/name pairs`)
  const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase()
  for (const { kind, id, name } of named) {
    const entry = kind === 'kms' ? catalog.kmsById(id) : catalog.skuById(id)
    if (!entry) {
      t.fail(`${kind} ${id} (${name}) is not in the catalogue`)
      continue
    }
    t.ok(
      [entry.name, ...entry.aliases].some((n) => same(n, name)),
      `${id}: "${name}" is ${entry.name}`,
    )
    if (kind === 'sku') t.equal(catalog.findSku(name).id, id, `"${name}" finds ${id}`)
  }
  // vlmcsd calls Office LTSC 2021 "Unknown"; the catalogue knows it
  t.equal(catalog.skuName('fbdb3e18-a8ef-4fb3-9183-dffd60bd0984'), 'Office LTSC Professional Plus 2021')
  t.equal(catalog.kmsById('86d50b16-4808-41af-b83b-b338274318b2')?.epidFamily, 'office2021')
})

t.test('apps carry the names the protocol reference and captures use', async (t) => {
  t.equal(catalog.appName('55c92734-d682-4d71-983e-d6ec3f16059f'), 'Windows')
  t.equal(catalog.appName('59a52881-a989-479d-af46-f275c6370663'), 'Office 2010')
  t.equal(catalog.appName('0ff1ce15-a989-479d-af46-f275c6370663'), 'Office 2013+')
  t.ok(catalog.appById('0FF1CE15-A989-479D-AF46-F275C6370663')?.aliases.includes('Office2013+'))
  t.equal(catalog.appName('00000000-0000-0000-0000-000000000000'), undefined)
  t.equal(catalog.kmsName('00000000-0000-0000-0000-000000000000'), undefined)
  t.equal(catalog.skuName('not a guid'), undefined)
})

t.test('ePID families (kms-protocol.md 5.3) and host builds (5.2)', async (t) => {
  t.same(
    catalog.epidFamilies.map((f) => f.id),
    [...EPID_FAMILIES],
  )
  const fam = (kmsId: string) => catalog.epidFamilyForKmsId(kmsId)
  const range = (id: string) => {
    const f = catalog.epidFamilies.find((f) => f.id === id)!
    return [f.groupId, f.minKeyId, f.maxKeyId, f.releaseDate]
  }
  t.same(range('windows'), [206, 551000000, 570999999, '2018-10-02'])
  t.same(range('office2010'), [96, 199000000, 217999999, '2010-07-15'])
  t.same(range('office2013'), [206, 234000000, 255999999, '2013-01-29'])
  t.same(range('office2016'), [206, 437000000, 458999999, '2015-09-22'])
  t.same(range('office2019'), [206, 666000000, 685999999, '2018-09-24'])
  t.same(range('office2021'), [206, 571000000, 590999999, '2021-09-16'])
  t.same(range('office2024'), [206, 666000000, 685999999, '2024-09-16'])
  t.equal(fam('e85af946-2e25-47b7-83e1-bebcebeac611').id, 'office2010')
  t.equal(fam('e6a6f1bf-9d40-40c3-aa9f-c77ba21578c0').id, 'office2013')
  t.equal(fam('85b5f61b-320b-4be3-814a-b76b2bfafc82').id, 'office2016')
  t.equal(fam('617d9eb1-ef36-4f82-86e0-a65ae07b96c6').id, 'office2019')
  t.equal(fam('86d50b16-4808-41af-b83b-b338274318b2').id, 'office2021')
  t.equal(fam('a8973cb5-bf03-0a4c-9cef-703099645ab3').id, 'office2024', 'genuine Office LTSC 2024 counted id')
  t.equal(fam('1b4db7eb-4057-5ddf-91e0-36dec72071f5').id, 'office2024', "py-kms' placeholder id")
  t.equal(fam('aa4c7968-b9da-4680-92b6-acb25e2f866c').id, 'windows', 'Office 2013 pre-release: as vlmcsd')
  t.equal(fam('58e2134f-8e11-4d17-9cb2-91069c151148').id, 'windows')
  t.equal(fam('7ba0bf23-d0f5-4072-91d9-d55af5a481b6').id, 'windows')
  t.equal(fam('691ef989-1196-bbd4-969b-287503cf3570').id, 'windows', 'unknown id')
  const china = catalog.csvlksForKmsId('7ba0bf23-d0f5-4072-91d9-d55af5a481b6')
  t.same([china[0].groupId, china[0].minKeyId, china[0].maxKeyId], [3858, 15000000, 999999999], 'WinChinaGov')

  const builds = catalog.epidBuilds.map((b) => [b.build, b.platformId, b.releaseDate, b.usesNdr64])
  t.same(builds, [
    [6002, 55041, '2009-05-26', false],
    [7601, 55041, '2011-02-22', false],
    [9200, 5426, '2012-10-26', true],
    [9600, 6401, '2013-10-18', true],
    [14393, 3612, '2016-08-02', true],
    [17763, 3612, '2018-10-02', true],
    [20348, 3612, '2021-08-18', true],
    [26100, 3612, '2024-11-01', true],
  ])
  for (const b of catalog.hostBuilds.filter((b) => b.build >= 10240))
    t.equal(b.platformId, 3612, `${b.build}`)
})
