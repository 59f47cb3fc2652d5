import { UsageError } from '../errors.js'
import type { MergedData } from './merge.js'
import { canon, isGvlk, normalizeGuid } from './names.js'
import type { Catalog, Csvlk, EpidFamily, Sku } from './types.js'

const MAX_LISTED = 20

/** Indexes merged tables and answers lookups; the tables are already checked (merge.ts). */
export function createCatalog({ tables, sources, notes, skuKeys }: MergedData): Catalog {
  const { apps, kmsIds, skus, csvlks, hostBuilds } = tables
  const epidFamilies: EpidFamily[] = tables.epidFamilies.map((f) => ({
    ...f,
    kmsIds: kmsIds.filter((k) => k.epidFamily === f.id).map((k) => k.id),
  }))
  const appMap = new Map(apps.map((a) => [a.id, a]))
  const kmsMap = new Map(kmsIds.map((k) => [k.id, k]))
  const skuMap = new Map(skus.map((s) => [s.id, s]))
  const familyMap = new Map(epidFamilies.map((f) => [f.id, f]))
  const windows = familyMap.get('windows')!
  const byGvlk = new Map<string, Sku[]>()
  for (const s of skus) byGvlk.set(s.gvlk, [...(byGvlk.get(s.gvlk) ?? []), s])
  // names are indexed on the first name lookup: a host that only maps KMS ids never pays for it
  let names: { exact: Map<string, Sku>; searchable: [Sku, string[]][] } | undefined
  function nameIndex() {
    if (names) return names
    const exact = new Map<string, Sku>()
    const searchable = skus.map((s): [Sku, string[]] => {
      const keys = skuKeys?.get(s) ?? [...new Set([s.name, ...s.aliases].map(canon))]
      for (const k of keys) exact.set(k, s)
      return [s, keys]
    })
    names = { exact, searchable }
    return names
  }
  const byId = <T>(map: Map<string, T>, id: string) => map.get(id) ?? map.get(normalizeGuid(id) ?? id)

  function searchSkus(query?: string): Sku[] {
    const q = query?.trim() ?? ''
    if (q === '') return [...skus]
    const id = normalizeGuid(q)
    if (id) return skuMap.has(id) ? [skuMap.get(id)!] : []
    if (isGvlk(q.toUpperCase())) return byGvlk.get(q.toUpperCase()) ?? []
    const { exact, searchable } = nameIndex()
    const key = canon(q)
    const hit = exact.get(key)
    if (hit) return [hit]
    // a piece of a name ("2025 datacenter"), or every word starting a word of one name in any
    // order ("office 2024" also finds "Office Access LTSC 2024"); failing both, words anywhere
    const words = key.split(' ')
    const startsWord = (k: string, w: string) => k.startsWith(w) || k.includes(` ${w}`)
    const hits = searchable.filter(([, keys]) =>
      keys.some((k) => k.includes(key) || words.every((w) => startsWord(k, w))),
    )
    if (hits.length > 0) return hits.map(([s]) => s)
    return searchable
      .filter(([, keys]) => keys.some((k) => words.every((w) => k.includes(w))))
      .map(([s]) => s)
  }

  function findSku(query: string): Sku {
    if (query.trim() === '') throw new UsageError('no product given: name a SKU, its id or its GVLK')
    const hits = searchSkus(query)
    if (hits.length === 1) return hits[0]
    if (hits.length === 0) {
      throw new UsageError(`no product matches ${JSON.stringify(query)} (kmslab products lists them)`)
    }
    const listed = hits.slice(0, MAX_LISTED).map((s) => `  ${s.name} (${s.id})`)
    if (hits.length > MAX_LISTED) listed.push(`  ... and ${hits.length - MAX_LISTED} more`)
    throw new UsageError(
      `${JSON.stringify(query)} matches ${hits.length} products; name one exactly:\n${listed.join('\n')}`,
    )
  }

  function csvlksForKmsId(kmsId: string): Csvlk[] {
    const id = normalizeGuid(kmsId) ?? kmsId
    const found = csvlks.filter((c) => c.activates.includes(id))
    return [...found.filter((c) => !c.lab && !c.preview), ...found.filter((c) => c.lab || c.preview)]
  }

  return {
    apps,
    kmsIds,
    skus,
    csvlks,
    hostBuilds,
    epidFamilies,
    epidBuilds: hostBuilds.filter((b) => b.useForEpid).sort((a, b) => a.build - b.build),
    sources,
    notes,
    appById: (id) => byId(appMap, id),
    kmsById: (id) => byId(kmsMap, id),
    skuById: (id) => byId(skuMap, id),
    findSku,
    searchSkus,
    epidFamilyForKmsId: (kmsId) => familyMap.get(byId(kmsMap, kmsId)?.epidFamily ?? 'windows') ?? windows,
    csvlksForKmsId,
    appName: (id) => byId(appMap, id)?.name,
    kmsName: (id) => byId(kmsMap, id)?.name,
    skuName: (id) => byId(skuMap, id)?.name,
  }
}
