import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { CatalogError } from '../src/catalog/index.js'
import { productsVerb } from '../src/cli/products.js'
import { UsageError } from '../src/errors.js'
import { runVerb } from './fixtures/cli-io.js'

const run = (...argv: string[]) => runVerb(productsVerb, argv)

const REQUIRED_KEYS = [
  'skuId',
  'name',
  'aliases',
  'gvlk',
  'appId',
  'kmsId',
  'family',
  'requiredCount',
  'defaultProtocol',
]

t.test('--json: one object per SKU per line with the documented keys', async (t) => {
  const { code, out } = await run('--json')
  t.equal(code, 0)
  const lines = out.trimEnd().split('\n')
  t.ok(lines.length >= 257)
  const bad = lines
    .map((line) => JSON.parse(line))
    .filter(
      (o) =>
        REQUIRED_KEYS.some((k) => !(k in o)) ||
        ![4, 5, 6].includes(o.defaultProtocol) ||
        typeof o.family !== 'string' ||
        !Array.isArray(o.aliases),
    )
  t.same(bad, [], 'every line has the keys, a numeric protocol and a family string')
  const one = await run('--json', 'Windows', '11', 'Enterprise')
  t.same(JSON.parse(one.out), {
    skuId: '73111121-5638-40f6-bc11-f1d7b0d64300',
    name: 'Windows 10/11 Enterprise',
    aliases: JSON.parse(one.out).aliases,
    gvlk: 'NPPR9-FWDCX-D2C8J-H872K-2YT43',
    appId: '55c92734-d682-4d71-983e-d6ec3f16059f',
    appName: 'Windows',
    kmsId: '58e2134f-8e11-4d17-9cb2-91069c151148',
    kmsName: 'Windows 10/11 2015 (Volume)',
    family: 'windows-client',
    requiredCount: 25,
    defaultProtocol: 6,
    retail: false,
    preview: false,
    epidFamily: 'windows',
    source: ['py-kms-db', 'ms-gvlk-windows'],
  })
  t.ok(JSON.parse(one.out).aliases.includes('Windows 11 Enterprise'))
})

t.test('text: a table with a header, one SKU per row', async (t) => {
  const { code, out } = await run('server', '2025')
  t.equal(code, 0)
  const lines = out.trimEnd().split('\n')
  t.match(lines[0], /^SKU ID\s+GVLK\s+FAMILY\s+N\s+V\s+FLAGS\s+NAME$/)
  t.equal(lines.length, 5)
  t.match(
    out,
    /c052f164-cdf6-409a-a0cb-853ba0f0f55a {2}D764K-2NDRG-47T6Q-P8T8W-YP6DF {2}windows-server {2}5 {2}6 {2}- +Windows Server 2025 Datacenter\n/,
  )
  const byKmsId = await run('--json', '{8449B1FB-F0EA-497A-99AB-66CA96E9A0F5}')
  t.equal(byKmsId.out.trimEnd().split('\n').length, 7, 'a KMS id lists its SKUs (Windows Server 2019: 7)')
  const home = await run('Windows 10 Home')
  t.match(home.out, /retail/)
})

t.test('nothing found, bad options, bad products file', async (t) => {
  const none = await run('Windows', '12', 'Ultimate')
  t.equal(none.code, 1)
  t.match(none.err, /nothing matches "Windows 12 Ultimate"/)
  await t.rejects(run('--bogus'), UsageError)
  const dir = mkdtempSync(join(tmpdir(), 'kmslab-products-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const bad = join(dir, 'bad.json')
  writeFileSync(bad, JSON.stringify({ skus: [{ id: 'nope' }] }))
  await t.rejects(run('--products', bad), CatalogError)
  const good = join(dir, 'good.json')
  const sku = {
    id: '12345678-9abc-4def-8123-456789abcdef',
    name: 'Windows 12 Pro',
    kmsId: '58e2134f-8e11-4d17-9cb2-91069c151148',
    gvlk: 'ABCDE-FGHJK-MNPQR-TVWXY-23467',
  }
  writeFileSync(good, JSON.stringify({ skus: [sku] }))
  const listed = await run('--products', good, '--json', 'windows 12')
  t.equal(listed.code, 0)
  t.equal(JSON.parse(listed.out).skuId, sku.id)
  t.match(productsVerb.help, /--products FILE/)
})
