// The package entry: what `import ... from 'kmslab'` gives a user (dist/index.js through the
// package's own "exports", built by `npm test` before tap) is what src/index.ts declares.
import t from 'tap'
import * as entry from '../src/index.js'

const FUNCTIONS = [
  'startHost',
  'activate',
  'decodeCapture',
  'describeHresult',
  'hresultHex',
  'parseHresult',
  'describeNcaStatus',
  'defaultCatalog',
  'loadCatalog',
  'seededRandom',
  'cryptoRandom',
]
const ERRORS = [
  'KmslabError',
  'UsageError',
  'ConfigError',
  'WireError',
  'CryptoError',
  'CatalogError',
  'VerificationError',
  'RpcError',
  'RefusedError',
  'DiscoveryError',
  'CaptureError',
  'StoreError',
  'StoreReadError',
  'StoreWriteError',
  'ListenError',
]

t.test('src/index.ts exports the API, its codes and every typed error', async (t) => {
  const names = entry as Record<string, unknown>
  for (const f of FUNCTIONS) t.type(names[f], 'function', f)
  for (const e of ERRORS) {
    const cls = names[e] as { prototype: unknown }
    t.ok(cls.prototype instanceof entry.KmslabError || cls === entry.KmslabError, `${e} is a KmslabError`)
  }
  t.ok(entry.CatalogError.prototype instanceof entry.UsageError, 'a bad products file is a usage error')
  t.equal(entry.HRESULT.NOT_ENOUGH_COUNT, 0xc004f038)
  t.equal(entry.NCA_STATUS.UNK_IF, 0x1c010003)
  t.same(entry.ANSWER_CORRUPTIONS, ['hmac', 'hash', 'iv-rule', 'cmid', 'time', 'pid'])
  t.equal(entry.EXIT_CODES['not-enough-count'], 2)
})

t.test("'kmslab' resolves to the built package, with the same exports", async (t) => {
  t.match(import.meta.resolve('kmslab'), /\/dist\/index\.js$/)
  const built = (await import('kmslab')) as Record<string, unknown>
  t.same(Object.keys(built).sort(), Object.keys(entry).sort())
  const startHost = built.startHost as typeof entry.startHost
  const activate = built.activate as typeof entry.activate
  const host = await startHost({ counter: 'charged' })
  t.teardown(() => host.close())
  const report = await activate({ host: '127.0.0.1', port: host.port }, { timeoutMs: 3000 })
  t.equal(report.exitCode, 0, 'the built host and client work together')
})
