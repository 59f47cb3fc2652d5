import { CatalogError } from './errors.js'
import { canon } from './names.js'
import type { App, CatalogTables, Csvlk, EpidFamily, HostBuild, KmsId, Sku } from './types.js'
import { type Origin, type ParsedFile, TABLE_NAMES, TABLES } from './validate.js'

export interface MergedData {
  tables: CatalogTables
  sources: Record<string, string>
  notes: string[]
  /** Canonical names and aliases of each SKU (names.ts), when the merge already computed them. */
  skuKeys?: Map<Sku, string[]>
}

/**
 * Lays later files over earlier ones (an entry with the same id replaces, a new one adds), fills
 * the fields that default from others, and checks what only the whole can tell: that every id
 * referred to exists and that every name or alias leads to one SKU.
 */
export function mergeProductsFiles(files: ParsedFile[]): MergedData {
  const origin = (entry: object): Origin | undefined => {
    for (const f of files) {
      const o = f.origins.get(entry)
      if (o) return o
    }
    return undefined
  }
  const fail = (entry: object, field: string, problem: string): never => {
    const o = origin(entry)
    throw new CatalogError(problem, o?.file ?? files[0].file, o && `${o.table}[${o.index}]`, field)
  }
  const merged = Object.fromEntries(
    TABLE_NAMES.map((name) => {
      const byKey = new Map<unknown, object>()
      for (const f of files) for (const e of f.tables[name] ?? []) byKey.set(e[TABLES[name].key], e)
      return [name, [...byKey.values()]]
    }),
  )
  const apps = merged.apps as App[]
  const kmsIds = merged.kmsIds as KmsId[]
  const skus = merged.skus as Sku[]
  const csvlks = merged.csvlks as Csvlk[]
  const hostBuilds = merged.hostBuilds as HostBuild[]
  const epidFamilies = merged.epidFamilies as Omit<EpidFamily, 'kmsIds'>[]

  const appIds = new Set(apps.map((a) => a.id))
  const csvlkIds = new Set(csvlks.map((c) => c.id))
  const familyIds = new Set(epidFamilies.map((f) => f.id))
  if (!familyIds.has('windows')) {
    throw new CatalogError(
      'needs the ePID family "windows" (it answers unknown KMS ids)',
      files[0].file,
      'epidFamilies',
    )
  }
  for (const f of epidFamilies) {
    if (f.minKeyId > f.maxKeyId) fail(f, 'maxKeyId', `must not be below minKeyId (${f.minKeyId})`)
    if (f.csvlkId !== undefined && !csvlkIds.has(f.csvlkId))
      fail(f, 'csvlkId', `names no CSVLK (${f.csvlkId})`)
  }
  const kmsById = new Map<string, KmsId>()
  for (const k of kmsIds) {
    if (!appIds.has(k.appId)) fail(k, 'appId', `names no application (${k.appId})`)
    k.requiredCount ??= k.family === 'windows-client' ? 25 : 5
    if (k.epidFamily === undefined) {
      const year = /^office-(\d{4})$/.exec(k.family)?.[1]
      k.epidFamily = year && familyIds.has(`office${year}`) ? `office${year}` : 'windows'
    } else if (!familyIds.has(k.epidFamily)) {
      fail(k, 'epidFamily', `names no ePID family (known: ${[...familyIds].join(', ')})`)
    }
    kmsById.set(k.id, k)
  }
  for (const s of skus) {
    const k = kmsById.get(s.kmsId) ?? fail(s, 'kmsId', `names no KMS id (${s.kmsId})`)
    if (s.appId === undefined) s.appId = k.appId
    else if (s.appId !== k.appId) fail(s, 'appId', `is ${s.appId}, but KMS id ${k.id} belongs to ${k.appId}`)
  }
  for (const c of csvlks) {
    for (const id of c.activates) if (!kmsById.has(id)) fail(c, 'activates', `names no KMS id (${id})`)
    if (c.minKeyId !== undefined && c.maxKeyId !== undefined && c.minKeyId > c.maxKeyId) {
      fail(c, 'maxKeyId', `must not be below minKeyId (${c.minKeyId})`)
    }
  }

  // Each name or alias must lead to one SKU; on a clash blame the entry from the later file. The
  // shipped file alone is clash-free by construction (the build script and the tests check it),
  // so only a user's file pays for this here; lookups index names lazily otherwise.
  let skuKeys: Map<Sku, string[]> | undefined
  if (files.length > 1) {
    skuKeys = new Map()
    const owners = new Map<string, Sku>()
    const rank = (e: object) => files.findIndex((f) => f.origins.has(e))
    for (const s of skus) {
      const keys: string[] = []
      skuKeys.set(s, keys)
      for (const n of [s.name, ...s.aliases]) {
        const key = canon(n)
        if (!keys.includes(key)) keys.push(key)
        const other = owners.get(key)
        if (other && other !== s) {
          const [blamed, kept] = rank(other) > rank(s) ? [other, s] : [s, other]
          const field = canon(blamed.name) === key ? 'name' : 'aliases'
          fail(blamed, field, `"${n}" already leads to ${kept.name} (${kept.id})`)
        }
        owners.set(key, s)
      }
    }
  }
  return {
    tables: { apps, kmsIds, skus, csvlks, hostBuilds, epidFamilies },
    sources: Object.assign({}, ...files.map((f) => f.sources)),
    notes: files.flatMap((f) => f.notes),
    skuKeys,
  }
}
