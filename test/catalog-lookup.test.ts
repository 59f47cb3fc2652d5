import t from 'tap'
import { canon, defaultCatalog } from '../src/catalog/index.js'
import { UsageError } from '../src/errors.js'

const catalog = defaultCatalog()

function thrown(fn: () => unknown): unknown {
  try {
    fn()
  } catch (e) {
    return e
  }
  return undefined
}

t.test('spot checks by the names people use', async (t) => {
  const cases: [string, string, string][] = [
    ['Windows 11 Enterprise', '73111121-5638-40f6-bc11-f1d7b0d64300', 'NPPR9-FWDCX-D2C8J-H872K-2YT43'],
    ['Windows 10 Enterprise', '73111121-5638-40f6-bc11-f1d7b0d64300', 'NPPR9-FWDCX-D2C8J-H872K-2YT43'],
    ['Windows Server 2025 Standard', '7dc26449-db21-4e09-ba37-28f2958506a6', 'TVRH6-WHNXV-R9WG3-9XRFY-MY832'],
    [
      'Windows Server 2025 Datacenter',
      'c052f164-cdf6-409a-a0cb-853ba0f0f55a',
      'D764K-2NDRG-47T6Q-P8T8W-YP6DF',
    ],
    [
      'Office LTSC Professional Plus 2024',
      '8d368fc1-9470-4be2-8d66-90e836cbb051',
      'XJ2XN-FW8RK-P4HMP-DKDBV-GCVGB',
    ],
  ]
  for (const [query, id, gvlk] of cases) {
    const s = catalog.findSku(query)
    t.same([s.id, s.gvlk], [id, gvlk], query)
  }
})

t.test('an exact name wins over longer namesakes', async (t) => {
  const cases: [string, string][] = [
    ['Windows 7 Enterprise', 'ae2ee509-1b34-41c0-acb7-6d4650168915'],
    ['Office Professional Plus 2013', 'b322da9c-a2e2-4058-9e4e-f59a6970bd69'],
    ['Windows Server 2019 Standard', 'de32eafd-aaee-4662-9444-c1befb41bde2'],
  ]
  for (const [query, id] of cases) {
    t.equal(catalog.findSku(query).id, id, query)
    t.equal(catalog.findSku(query.toUpperCase()).id, id, `${query} in upper case`)
    t.ok(catalog.skus.filter((s) => s.name.startsWith(query)).length > 1, `${query} has longer namesakes`)
    t.same(
      catalog.searchSkus(query).map((s) => s.id),
      [id],
      'searching the exact name lists just it',
    )
  }
})

t.test('short and year-less forms', async (t) => {
  const cases: [string, string][] = [
    ['win11 pro', 'Windows 10/11 Pro'],
    ['Win 10 Pro N', 'Windows 10/11 Pro N'],
    ['windows pro', 'Windows 10/11 Pro'],
    ['Windows 11 Pro for Workstations', 'Windows 10/11 Pro Workstation'],
    ['server 2025 datacenter', 'Windows Server 2025 Datacenter'],
    ['ws2022 std', 'Windows Server 2022 Standard'],
    ['Windows Server 2025 Datacenter: Azure Edition', 'Windows Server 2025 Datacenter Azure Edition'],
    ['office 2024 proplus', 'Office LTSC Professional Plus 2024'],
    ['Office Professional Plus 2021', 'Office LTSC Professional Plus 2021'],
    ['office 2019 pro plus', 'Office Professional Plus 2019'],
    ['Project Professional 2021', 'Office Project Pro 2021'],
    ['visio pro 2024', 'Office Visio LTSC Pro 2024'],
    ['word 2016', 'Office Word 2016'],
    ['ltsc 2021', 'Windows 10 Enterprise LTSC 2019/2021'],
    ['Windows 11 Enterprise LTSC 2024', 'Windows 10 Enterprise LTSC 2019/2021'],
    ['ltsb 2016', 'Windows 10 Enterprise 2016 LTSB'],
    ['Windows IoT Enterprise LTSC 2024', 'Windows 10/11 IoT Enterprise LTSC 2021-2024'],
    ['Windows 8.1 Pro', 'Windows 8.1 Professional'],
    ['Windows Web Server 2008', 'Windows Server 2008 Web'],
    ['Microsoft Office Standard 2016', 'Office Standard 2016'],
  ]
  for (const [query, name] of cases) t.equal(catalog.findSku(query).name, name, query)
})

t.test('ids and keys', async (t) => {
  t.equal(catalog.findSku('{73111121-5638-40F6-BC11-F1D7B0D64300}').name, 'Windows 10/11 Enterprise')
  t.equal(catalog.findSku('w269n-wfgwx-yvc9b-4j6c9-t83gx').name, 'Windows 10/11 Pro')
  t.equal(catalog.skuById('{DE32EAFD-AAEE-4662-9444-C1BEFB41BDE2}')?.name, 'Windows Server 2019 Standard')
  const e = thrown(() => catalog.findSku('11111111-2222-3333-4444-555555555555'))
  t.type(e, UsageError)
})

t.test('ambiguous and unknown queries fail with a UsageError that helps', async (t) => {
  const e = thrown(() => catalog.findSku('windows 11 ent')) as UsageError
  t.type(e, UsageError)
  t.match(e.message, /"windows 11 ent" matches \d+ products/)
  for (const name of [
    'Windows 10/11 Enterprise',
    'Windows 10/11 Enterprise N',
    'Windows 10/11 Enterprise G',
  ]) {
    t.ok(e.message.includes(name), `lists ${name}`)
  }
  t.match(e.message, /73111121-5638-40f6-bc11-f1d7b0d64300/, 'with ids')
  const many = thrown(() => catalog.findSku('office')) as UsageError
  t.match(many.message, /\.\.\. and \d+ more/, 'a long list is cut short')
  const none = thrown(() => catalog.findSku('Windows 12 Ultimate')) as UsageError
  t.type(none, UsageError)
  t.match(none.message, /no product matches "Windows 12 Ultimate"/)
  t.type(
    thrown(() => catalog.findSku('   ')),
    UsageError,
  )
})

t.test('search', async (t) => {
  t.equal(catalog.searchSkus().length, catalog.skus.length)
  t.equal(catalog.searchSkus('').length, catalog.skus.length)
  const servers2025 = catalog.searchSkus('server 2025').map((s) => s.name)
  t.same(servers2025.sort(), [
    'Windows Server 2025 Azure Core',
    'Windows Server 2025 Datacenter',
    'Windows Server 2025 Datacenter Azure Edition',
    'Windows Server 2025 Standard',
  ])
  t.same(
    catalog.searchSkus('2019 visio pro').map((s) => s.name),
    ['Office Visio Pro 2019', 'Office Visio Pro 2019 Preview'],
    'words in any order',
  )
  t.same(catalog.searchSkus('nothing like this'), [])
})

t.test('short aliases stay unambiguous', async (t) => {
  const owners = new Map<string, string>()
  const clashes: string[] = []
  for (const s of catalog.skus) {
    for (const n of [s.name, ...s.aliases]) {
      const key = canon(n)
      if (owners.has(key) && owners.get(key) !== s.id) clashes.push(n)
      owners.set(key, s.id)
      if (catalog.findSku(n).id !== s.id) clashes.push(`findSku(${n})`)
    }
  }
  t.same(clashes, [], 'every name and alias finds exactly its SKU')
  t.equal(canon('Win11 Pro'), canon('Windows 11 Professional'))
  t.equal(canon('server 2025 dc'), 'windows server 2025 datacenter')
  t.equal(canon('Office ProPlus 2024'), canon('office professional plus 2024'))
})
