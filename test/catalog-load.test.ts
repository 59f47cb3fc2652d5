import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { BUILTIN_PRODUCTS_FILE, CatalogError, defaultCatalog, loadCatalog } from '../src/catalog/index.js'
import { KmslabError, UsageError } from '../src/errors.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const XML = join(root, '..', 'shared', 'reference', 'KmsDataBase.xml')
const dir = mkdtempSync(join(tmpdir(), 'kmslab-catalog-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

let n = 0
function productsFile(content: unknown): string {
  const file = join(dir, `products-${n++}.json`)
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content))
  return file
}
function loadError(content: unknown): CatalogError {
  const file = productsFile(content)
  try {
    loadCatalog({ extraFile: file })
  } catch (e) {
    if (e instanceof CatalogError) return e
    throw e
  }
  throw new Error('no CatalogError')
}

const WIN_CLIENT_2015 = '58e2134f-8e11-4d17-9cb2-91069c151148'
const NEW_SKU = {
  id: '12345678-9abc-4def-8123-456789abcdef',
  name: 'Windows 12 Pro',
  aliases: ['win12 pro'],
  kmsId: WIN_CLIENT_2015,
  gvlk: 'ABCDE-FGHJK-MNPQR-TVWXY-23467',
}

t.test('the shipped file sits where the module expects it', async (t) => {
  t.equal(BUILTIN_PRODUCTS_FILE, join(root, 'data', 'products.json'))
  t.equal(defaultCatalog(), defaultCatalog(), 'memoised')
  t.not(loadCatalog(), loadCatalog(), 'loadCatalog reads afresh')
})

t.test('a user file adds entries and replaces those with the same id', async (t) => {
  const base = loadCatalog()
  const file = productsFile({
    kmsIds: [
      {
        id: '0a0b0c0d-1111-4222-8333-444455556666',
        name: 'Office LTSC 2027',
        appId: '0ff1ce15-a989-479d-af46-f275c6370663',
        family: 'office-2027',
      },
    ],
    skus: [
      NEW_SKU,
      {
        id: '2DE67392-B7A7-462A-B1CA-108DD189F588',
        name: 'Windows Pro (mine)',
        kmsId: WIN_CLIENT_2015,
        gvlk: 'w269n-wfgwx-yvc9b-4j6c9-t83gx',
      },
      {
        id: '0b0b0c0d-1111-4222-8333-444455556666',
        name: 'Office Word LTSC 2027',
        kmsId: '0a0b0c0d-1111-4222-8333-444455556666',
        gvlk: 'BCDFG-HJKMP-QRTVW-XY234-6789B',
      },
    ],
    epidFamilies: [
      {
        id: 'windows',
        name: 'Windows',
        groupId: 4918,
        minKeyId: 30000,
        maxKeyId: 20029999,
        releaseDate: '2024-11-01',
      },
    ],
  })
  const c = loadCatalog({ extraFile: file })
  t.equal(c.skus.length, base.skus.length + 2)
  const added = c.findSku('win12 pro')
  t.same([added.id, added.appId, added.source], [NEW_SKU.id, '55c92734-d682-4d71-983e-d6ec3f16059f', [file]])
  const replaced = c.skuById('2de67392-b7a7-462a-b1ca-108dd189f588')!
  t.equal(replaced.name, 'Windows Pro (mine)')
  t.equal(replaced.gvlk, 'W269N-WFGWX-YVC9B-4J6C9-T83GX', 'keys are normalised to upper case')
  t.same(replaced.aliases, [], 'a replacement is whole: the old aliases go with it')
  t.type(
    thrown(() => c.findSku('Windows 10/11 Pro')),
    KmslabError,
  )
  t.equal(
    c.skus.indexOf(replaced),
    base.skus.findIndex((s) => s.id === replaced.id),
    'keeps its place',
  )
  const office2027 = c.kmsById('0a0b0c0d-1111-4222-8333-444455556666')!
  t.same([office2027.requiredCount, office2027.defaultProtocol, office2027.epidFamily], [5, 6, 'windows'])
  t.equal(c.findSku('word ltsc 2027').kmsId, office2027.id)
  t.equal(
    c.epidFamilyForKmsId('ffffffff-ffff-4fff-8fff-ffffffffffff').groupId,
    4918,
    'windows family replaced',
  )
  t.equal(loadCatalog().epidFamilyForKmsId(WIN_CLIENT_2015).groupId, 206, 'the shipped data is untouched')
})

function thrown(fn: () => unknown): unknown {
  try {
    fn()
  } catch (e) {
    return e
  }
  return undefined
}

t.test('a malformed file is named with the entry and field at fault', async (t) => {
  const cases: [unknown, string | undefined, string | undefined, RegExp][] = [
    [{ skus: [{ ...NEW_SKU, gvlk: 'not-a-key' }] }, 'skus[0]', 'gvlk', /XXXXX-XXXXX/],
    [{ skus: [NEW_SKU, { ...NEW_SKU, id: 'x' }] }, 'skus[1]', 'id', /must be a GUID/],
    [{ skus: [{ ...NEW_SKU, name: undefined }] }, 'skus[0]', 'name', /is required/],
    [{ skus: [{ ...NEW_SKU, gvlK: 'x' }] }, 'skus[0]', 'gvlK', /not a known field/],
    [{ skus: [NEW_SKU, NEW_SKU] }, 'skus[1]', 'id', /repeats/],
    [
      { skus: [{ ...NEW_SKU, kmsId: '00000000-0000-4000-8000-000000000000' }] },
      'skus[0]',
      'kmsId',
      /names no KMS id/,
    ],
    [
      { skus: [{ ...NEW_SKU, appId: '59a52881-a989-479d-af46-f275c6370663' }] },
      'skus[0]',
      'appId',
      /belongs to/,
    ],
    [
      { skus: [{ ...NEW_SKU, aliases: ['Windows 11 Enterprise'] }] },
      'skus[0]',
      'aliases',
      /already leads to Windows 10\/11 Enterprise/,
    ],
    [{ skus: [{ ...NEW_SKU, aliases: 'win12' }] }, 'skus[0]', 'aliases', /list of non-empty strings/],
    [
      { kmsIds: [{ id: NEW_SKU.id, name: 'X', appId: NEW_SKU.kmsId, family: 'windows-client' }] },
      'kmsIds[0]',
      'appId',
      /names no application/,
    ],
    [
      {
        kmsIds: [
          { id: NEW_SKU.id, name: 'X', appId: '55c92734-d682-4d71-983e-d6ec3f16059f', family: 'linux' },
        ],
      },
      'kmsIds[0]',
      'family',
      /windows-client/,
    ],
    [
      {
        kmsIds: [
          {
            id: NEW_SKU.id,
            name: 'X',
            appId: '55c92734-d682-4d71-983e-d6ec3f16059f',
            family: 'windows-client',
            defaultProtocol: 7,
          },
        ],
      },
      'kmsIds[0]',
      'defaultProtocol',
      /4, 5 or 6/,
    ],
    [
      {
        hostBuilds: [{ build: 28000, name: 'Windows 11 26H1', platformId: 3612, releaseDate: '10 Feb 2026' }],
      },
      'hostBuilds[0]',
      'releaseDate',
      /YYYY-MM-DD/,
    ],
    [
      { csvlks: [{ id: NEW_SKU.id, name: 'X', activates: [NEW_SKU.id] }] },
      'csvlks[0]',
      'activates',
      /names no KMS id/,
    ],
    [
      {
        epidFamilies: [
          { id: 'office2027', name: 'X', groupId: 206, minKeyId: 9, maxKeyId: 1, releaseDate: '2027-01-01' },
        ],
      },
      'epidFamilies[0]',
      'maxKeyId',
      /below minKeyId/,
    ],
    [{ skus: {} }, 'skus', undefined, /list of entries/],
    [{ products: [] }, undefined, 'products', /not a table/],
    [{ schema: 2 }, undefined, 'schema', /must be 1/],
    [{ toString: [] }, undefined, 'toString', /not a table/],
    [{ skus: [{ ...NEW_SKU, constructor: 1 }] }, 'skus[0]', 'constructor', /not a known field/],
    [[], undefined, undefined, /JSON object/],
    ['{ "skus": [', undefined, undefined, /not valid JSON/],
  ]
  for (const [content, entry, field, message] of cases) {
    const e = loadError(content)
    t.equal(e.entry, entry, `entry ${entry}`)
    t.equal(e.field, field, `field ${field}`)
    t.match(e.message, message)
    t.ok(e.message.startsWith(`${e.file}: `), 'the message starts with the file')
    t.ok(e.file.startsWith(dir), 'the user file is blamed')
  }
  const e = loadError({ skus: [{ ...NEW_SKU, gvlk: 'not-a-key' }] })
  t.type(e, UsageError, 'a usage error (exit 64), like a bad flag')
  t.type(e, KmslabError)
  t.match(
    e.message,
    /products-\d+\.json: skus\[0\]: field "gvlk": must be a product key .* \(got "not-a-key"\)/,
  )

  const missing = join(dir, 'absent.json')
  const gone = thrown(() => loadCatalog({ extraFile: missing })) as CatalogError
  t.type(gone, CatalogError)
  t.same([gone.file, gone.entry, gone.field], [missing, undefined, undefined])
  t.match(gone.message, /cannot be read \(ENOENT\)/)
})

const noXml = !existsSync(XML) && `${XML} not present`

t.test(
  'scripts/build-catalog.mjs reproduces data/products.json byte for byte',
  { skip: noXml },
  async (t) => {
    const out = join(dir, 'rebuilt.json')
    const r = spawnSync(process.execPath, [join(root, 'scripts', 'build-catalog.mjs'), XML, '--out', out], {
      encoding: 'utf8',
    })
    t.equal(r.status, 0, r.stderr)
    t.ok(readFileSync(out).equals(readFileSync(BUILTIN_PRODUCTS_FILE)), 'identical bytes')
    const again = join(dir, 'rebuilt-2.json')
    spawnSync(process.execPath, [join(root, 'scripts', 'build-catalog.mjs'), XML, '--out', again])
    t.ok(readFileSync(again).equals(readFileSync(out)), 'deterministic')
    const data = JSON.parse(readFileSync(out, 'utf8'))
    t.match(data.generatedFrom, { file: 'KmsDataBase.xml', sha256: /^[0-9a-f]{64}$/ })
  },
)
