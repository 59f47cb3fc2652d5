// Property tests of the parsers of what a user writes: fault-injection rules (as API data and as a
// file), `kmslab serve --config`, the flags it carries (listen, allow, intervals, counter, ePIDs,
// HWID), and a products file laid over the catalogue. Random input and mutations of valid input;
// only typed errors (KmslabError subclasses: UsageError, ConfigError, CatalogError) may come out.
// KMSLAB_FUZZ_RUNS raises the number of runs.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import t from 'tap'
import { BUILTIN_PRODUCTS_FILE, CatalogError, defaultCatalog, loadCatalog } from '../src/catalog/index.js'
import { hostOptionsFromFlags, parseServeConfig } from '../src/cli/serve.js'
import { seededRandom } from '../src/crypto/random.js'
import { KmslabError, UsageError } from '../src/errors.js'
import { loadOrCreateIdentity } from '../src/host/identity.js'
import { parseInterval, parseListen, resolveAllow, resolveCounterMode } from '../src/host/options.js'
import { compileRules, type FaultRule, loadRulesFile, matchRequestRule } from '../src/host/rules.js'
import { matches, parseCidr } from '../src/server/cidr.js'
import { MemoryStore } from '../src/store/memory.js'

const RUNS = Number(process.env.KMSLAB_FUZZ_RUNS ?? 300)
const dir = mkdtempSync(join(tmpdir(), 'kmslab-fuzz-config-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

/** Runs fn; an error of one of `allowed` is a fine outcome, anything else fails the property. */
function onlyTyped(fn: () => unknown, allowed: (new (...a: never[]) => Error)[] = [KmslabError]): void {
  try {
    fn()
  } catch (e) {
    if (allowed.some((c) => e instanceof c)) return
    throw e
  }
}

/**
 * A JSON value with random edits at random places: a value replaced (by any JSON, or a value of
 * another type), a key deleted or added, an array element dropped or repeated.
 */
const edits = fc.array(
  fc.record({
    path: fc.array(fc.nat(), { minLength: 1, maxLength: 5 }),
    op: fc.constantFrom('replace', 'delete', 'add', 'repeat'),
    value: fc.oneof(
      fc.jsonValue({ maxDepth: 2 }),
      fc.constantFrom('', -1, 1e308, 0.5, null, [], {}, 'x'.repeat(300)),
    ),
    key: fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom('__proto__', 'constructor', 'id', 'name')),
  }),
  { minLength: 1, maxLength: 4 },
)
type Edit = typeof edits extends fc.Arbitrary<(infer E)[]> ? E : never

function mutateJson(doc: unknown, list: Edit[]): unknown {
  const root = { v: structuredClone(doc) } as Record<string, unknown>
  for (const e of list) {
    let parent: Record<string, unknown> | unknown[] = root
    let key: string | number = 'v'
    for (const step of e.path) {
      const here: unknown = (parent as Record<string, unknown>)[key]
      if (here === null || typeof here !== 'object') break
      const keys: (string | number)[] = Array.isArray(here) ? here.map((_, i) => i) : Object.keys(here)
      if (keys.length === 0) break
      parent = here as Record<string, unknown>
      key = keys[step % keys.length]
    }
    const target = parent as Record<string | number, unknown>
    if (e.op === 'replace') target[key] = structuredClone(e.value)
    else if (e.op === 'delete') {
      if (Array.isArray(target)) target.splice(Number(key), 1)
      else delete target[key]
    } else if (e.op === 'add') {
      const here = target[key]
      if (here && typeof here === 'object' && !Array.isArray(here))
        Object.defineProperty(here, e.key, {
          value: e.value,
          enumerable: true,
          writable: true,
          configurable: true,
        })
      else target[key] = e.value
    } else if (Array.isArray(target)) target.splice(Number(key), 0, structuredClone(target[Number(key)]))
  }
  return root.v
}

/** Random bytes, random JSON, or byte edits of `text`: what a damaged or wrong file looks like. */
function fileText(valid: string[]) {
  return fc.oneof(
    fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString('latin1')),
    fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v) ?? 'null'),
    fc
      .record({
        base: fc.constantFrom(...valid),
        writes: fc.array(
          fc.record({
            at: fc.nat(),
            ch: fc.constantFrom('"', '{', '}', ',', ':', '0', '\\', ' ', 'x', '\u0000', '\u{1F600}'),
          }),
          {
            minLength: 1,
            maxLength: 4,
          },
        ),
        cut: fc.option(fc.nat()),
      })
      .map(({ base, writes, cut }) => {
        let s = base
        for (const w of writes) {
          const at = w.at % (s.length + 1)
          s = s.slice(0, at) + w.ch + s.slice(at + 1)
        }
        return cut === null ? s : s.slice(0, cut % (s.length + 1))
      }),
  )
}

const VALID_RULES: FaultRule[] = [
  {
    name: 'office refused',
    match: { appId: '0ff1ce15-a989-479d-af46-f275c6370663' },
    action: { refuse: '0xC004F042' },
  },
  {
    match: { workstation: 'lab-*', client: '10.0.0.0/8', protocol: 6, nth: 3 },
    action: { delayMs: 100, count: 7 },
  },
  { match: { nthOnConnection: 2 }, action: { fault: 0x1c010003, close: 'after' } },
  { match: { client: '::1' }, action: { rejectBind: true } },
  { action: { corrupt: 'hmac', truncate: true } },
]

/** Rules with the right keys and values of any kind (what the embedding API may be handed). */
const anyValue = fc.oneof(
  fc.anything({ maxDepth: 1, withBigInt: true, withNullPrototype: true, withBoxedValues: true }),
  fc.constantFrom(Symbol('s'), () => 1, Number.NaN, -0, Infinity, '0xC004F042', '::1/200', 'lab-*', 'before'),
)
const keysOf = (keys: string[]) => fc.dictionary(fc.constantFrom(...keys), anyValue, { maxKeys: 3 })
const ruleShaped = fc.record(
  {
    name: anyValue,
    match: fc.oneof(
      keysOf([
        'appId',
        'kmsId',
        'skuId',
        'cmid',
        'workstation',
        'client',
        'protocol',
        'nth',
        'nthOnConnection',
      ]),
      anyValue,
    ),
    action: fc.oneof(
      keysOf(['refuse', 'count', 'delayMs', 'fault', 'rejectBind', 'close', 'truncate', 'corrupt']),
      anyValue,
    ),
  },
  { requiredKeys: [] },
)

t.test('compileRules: random data and mutated rule lists give rules or a UsageError', async (t) => {
  const facts = fc.record({
    appId: fc.uuid(),
    kmsId: fc.uuid(),
    skuId: fc.uuid(),
    cmid: fc.uuid(),
    workstation: fc.string({ maxLength: 40 }),
    client: fc.constantFrom('127.0.0.1', '10.1.2.3', '::1', 'fe80::1', '::ffff:10.0.0.1'),
    protocol: fc.integer({ min: 0, max: 8 }),
    nth: fc.nat(),
    nthOnConnection: fc.nat(),
  })
  fc.assert(
    fc.property(
      fc.oneof(
        fc.anything({ maxDepth: 3, withBigInt: true, withNullPrototype: true, withBoxedValues: true }),
        fc.array(ruleShaped, { maxLength: 3 }),
        edits.map((e) => mutateJson(VALID_RULES, e)),
      ),
      facts,
      (input, f) => {
        onlyTyped(() => {
          const rules = compileRules(input)
          matchRequestRule(rules, f)
        }, [UsageError])
      },
    ),
    { numRuns: RUNS * 3 },
  )
  t.pass('no other error')
})

t.test('loadRulesFile: damaged and random files give a UsageError naming the file', async (t) => {
  const file = join(dir, 'rules.json')
  fc.assert(
    fc.property(fileText([JSON.stringify(VALID_RULES, null, 2)]), (text) => {
      writeFileSync(file, text)
      try {
        loadRulesFile(file)
      } catch (e) {
        if (!(e instanceof UsageError)) throw e
        if (!e.message.includes(file)) throw new Error(`does not name the file: ${e.message}`)
      }
    }),
    { numRuns: RUNS },
  )
  t.pass('no other error')
})

const VALID_CONFIG = {
  listen: ['127.0.0.1:1688', '[::1]:1688'],
  state: 'memory',
  counter: 'charged',
  'no-ndr64': true,
  strict: true,
  epid: ['windows=06401-00206-271-395032-03-1033-9600.0000-0452015'],
  'host-build': 9600,
  lcid: 1033,
  hwid: '3A1C049600B60076',
  'activation-interval': '2h',
  'renewal-interval': 10080,
  'idle-timeout': 30,
  'connection-deadline': '600',
  'max-connections': 100,
  allow: ['10.0.0.0/8', 'fd00::/8'],
  'history-days': 30,
  seed: 'x',
  'log-format': 'json',
  quiet: true,
}
const KEYS = Object.keys(VALID_CONFIG)

t.test('serve --config: any file gives settings or a typed error, and so do the settings', async (t) => {
  const catalog = defaultCatalog()
  const flagLike = fc.dictionary(
    fc.oneof(
      fc.constantFrom(...KEYS, 'no-btfn', 'disconnect', 'config', 'toString', '__proto__'),
      fc.string({ maxLength: 6 }),
    ),
    fc.oneof(
      fc.jsonValue({ maxDepth: 1 }),
      fc.array(fc.oneof(fc.string({ maxLength: 30 }), fc.integer()), { maxLength: 3 }),
      fc.constantFrom(
        '0',
        '-1',
        '1e9',
        'NaN',
        '0x10',
        '1.5',
        '99999999999',
        'w',
        '2w',
        '[::1]:99999',
        '::1/129',
        '1:2:3:4:5:6:7:8:9::1',
        '1.2.3.4/',
      ),
    ),
    { maxKeys: 6 },
  )
  const text = fc.oneof(
    fileText([JSON.stringify(VALID_CONFIG, null, 2)]),
    flagLike.map((o) => JSON.stringify(o)),
    edits.map((e) => JSON.stringify(mutateJson(VALID_CONFIG, e)) ?? ''),
  )
  fc.assert(
    fc.property(text, (json) => {
      onlyTyped(() => {
        const options = hostOptionsFromFlags(parseServeConfig(json, 'fuzz.json'))
        // what startHost checks next, short of listening
        for (const l of options.listen ?? []) if (typeof l === 'string') parseListen(l, 1688)
        parseInterval('activation-interval', options.activationInterval ?? 120)
        parseInterval('renewal-interval', options.renewalInterval ?? 10080)
        resolveAllow(options.allow)
        resolveCounterMode(options.counter)
        loadOrCreateIdentity(new MemoryStore(), catalog, {
          random: seededRandom(1),
          now: Date.UTC(2026, 0, 1),
          ndr64: options.ndr64 ?? true,
          hostBuild: options.hostBuild,
          lcid: options.lcid,
          epids: options.epid,
          hwid: options.hwid,
        })
      })
    }),
    { numRuns: RUNS * 3 },
  )
  t.pass('no other error')
})

t.test('--allow networks: any text gives a network or a UsageError', async (t) => {
  const chars = fc.constantFrom(...'0123456789abcdefABCDEF:./% '.split(''))
  fc.assert(
    fc.property(fc.oneof(fc.string({ unit: chars, maxLength: 45 }), fc.string({ maxLength: 20 })), (text) => {
      onlyTyped(() => {
        const cidr = parseCidr(text)
        if (!(cidr.prefix >= 0 && cidr.prefix <= cidr.bytes.length * 8))
          throw new Error(`prefix ${cidr.prefix}`)
        matches('127.0.0.1', cidr)
        matches('::1', cidr)
      }, [UsageError])
    }),
    { numRuns: RUNS * 10 },
  )
  t.throws(() => parseCidr('1:2:3:4:5:6:7:8:9::1'), UsageError, 'nine groups')
  t.throws(() => parseCidr('10.0.0.0/'), UsageError, 'an empty prefix is not /0')
  t.equal(parseCidr('fd00::/8').prefix, 8)
  t.ok(matches('::ffff:10.1.2.3', parseCidr('10.0.0.0/8')), 'IPv4-mapped peers match IPv4 networks')
})

t.test('loadCatalog({ extraFile }): any products file gives a catalogue or a CatalogError', async (t) => {
  const shipped = readFileSync(BUILTIN_PRODUCTS_FILE, 'utf8')
  const user = {
    kmsIds: [
      {
        id: '0a0b0c0d-1111-4222-8333-444455556666',
        name: 'Office LTSC 2027',
        appId: '0ff1ce15-a989-479d-af46-f275c6370663',
        family: 'office-2027',
      },
    ],
    skus: [
      {
        id: '12345678-9abc-4def-8123-456789abcdef',
        name: 'Windows 12 Pro',
        aliases: ['win12 pro'],
        kmsId: '58e2134f-8e11-4d17-9cb2-91069c151148',
        gvlk: 'ABCDE-FGHJK-MNPQR-TVWXY-23467',
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
  }
  const docs = [user, JSON.parse(shipped)]
  const file = join(dir, 'products.json')
  let loaded = 0
  fc.assert(
    fc.property(
      fc.oneof(
        fileText([JSON.stringify(user, null, 2)]),
        fc
          .record({ doc: fc.nat({ max: docs.length - 1 }), e: edits })
          .map(({ doc, e }) => JSON.stringify(mutateJson(docs[doc], e)) ?? ''),
      ),
      (text) => {
        writeFileSync(file, text)
        onlyTyped(() => {
          const c = loadCatalog({ extraFile: file })
          loaded++
          // a catalogue that loads must answer lookups without throwing anything untyped
          for (const s of c.skus.slice(0, 5)) c.epidFamilyForKmsId(s.kmsId)
        }, [CatalogError, UsageError])
      },
    ),
    { numRuns: RUNS },
  )
  t.ok(loaded > 0, `${loaded} of ${RUNS} mutated files still loaded`)
})
