import { CatalogError } from './errors.js'
import { isGuid, isGvlk, normalizeGuid } from './names.js'

/**
 * Field-by-field reading of one products file (the shipped one or a user's): every value is
 * checked and normalised here, so the rest of the catalogue can trust its types, and a bad value
 * is reported with the file, the entry and the field.
 */

class Problem {
  constructor(readonly text: string) {}
}
const bad = (text: string): never => {
  throw new Problem(text)
}

type Parse = (v: unknown) => unknown
const text: Parse = (v) => {
  const t = typeof v === 'string' ? v.trim() : ''
  return t !== '' ? t : bad('must be a non-empty string')
}
// the shipped file is already normal: test that first, normalise only what a person wrote
const guid: Parse = (v) => {
  if (typeof v === 'string' && isGuid(v)) return v
  return (
    (typeof v === 'string' && normalizeGuid(v)) ||
    bad('must be a GUID like 55c92734-d682-4d71-983e-d6ec3f16059f')
  )
}
const gvlk: Parse = (v) => {
  const key = typeof v === 'string' ? v.trim().toUpperCase() : ''
  return isGvlk(key) ? key : bad('must be a product key of the form XXXXX-XXXXX-XXXXX-XXXXX-XXXXX')
}
const int =
  (min: number, max: number): Parse =>
  (v) =>
    typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max
      ? v
      : bad(`must be a whole number from ${min} to ${max}`)
const bool: Parse = (v) => (typeof v === 'boolean' ? v : bad('must be true or false'))
const texts: Parse = (v) => {
  if (!Array.isArray(v)) return bad('must be a list of non-empty strings')
  for (let i = 0; i < v.length; i++) {
    const t = typeof v[i] === 'string' ? v[i].trim() : ''
    if (t === '') return bad('must be a list of non-empty strings')
    v[i] = t
  }
  return v
}
const guids: Parse = (v) => (Array.isArray(v) ? v.map((x) => guid(x)) : bad('must be a list of GUIDs'))
const date: Parse = (v) =>
  typeof v === 'string' && /^\d{4}-\d\d-\d\d$/.test(v) && !Number.isNaN(Date.parse(v))
    ? v
    : bad('must be a date YYYY-MM-DD')
const protocol: Parse = (v) => ([4, 5, 6].includes(v as number) ? v : bad('must be 4, 5 or 6'))
const family: Parse = (v) =>
  typeof v === 'string' && /^(windows-client|windows-server|office-\d{4})$/.test(v)
    ? v
    : bad('must be windows-client, windows-server or office-YYYY')
const familyId: Parse = (v) =>
  typeof v === 'string' && /^[a-z][a-z0-9-]*$/.test(v) ? v : bad('must be a lower-case id like office2024')

/** [parse, default]: `undefined` default = optional, `REQUIRED` = must be present. */
const REQUIRED = Symbol('required')
type Spec = Record<string, [Parse, unknown]>
const common: Spec = { source: [texts, undefined], note: [text, undefined] }
const idName: Spec = { id: [guid, REQUIRED], name: [text, REQUIRED] }
const keyIds = { min: int(0, 999_999_999), max: int(0, 999_999_999) }

export const TABLES = {
  apps: { key: 'id', spec: { ...idName, aliases: [texts, []], ...common } },
  kmsIds: {
    key: 'id',
    spec: {
      ...idName,
      aliases: [texts, []],
      appId: [guid, REQUIRED],
      family: [family, REQUIRED],
      requiredCount: [int(1, 1000), undefined],
      defaultProtocol: [protocol, 6],
      retail: [bool, false],
      preview: [bool, false],
      epidFamily: [familyId, undefined],
      ...common,
    },
  },
  skus: {
    key: 'id',
    spec: {
      ...idName,
      aliases: [texts, []],
      appId: [guid, undefined],
      kmsId: [guid, REQUIRED],
      gvlk: [gvlk, REQUIRED],
      gvlkGenerated: [bool, undefined],
      ...common,
    },
  },
  csvlks: {
    key: 'id',
    spec: {
      ...idName,
      groupId: [int(0, 99_999), undefined],
      minKeyId: [keyIds.min, undefined],
      maxKeyId: [keyIds.max, undefined],
      releaseDate: [date, undefined],
      lab: [bool, false],
      preview: [bool, false],
      activates: [guids, []],
      ...common,
    },
  },
  hostBuilds: {
    key: 'build',
    spec: {
      build: [int(1, 999_999), REQUIRED],
      name: [text, REQUIRED],
      platformId: [int(0, 99_999), REQUIRED],
      releaseDate: [date, undefined],
      useForEpid: [bool, false],
      mayBeServer: [bool, false],
      usesNdr64: [bool, false],
      ...common,
    },
  },
  epidFamilies: {
    key: 'id',
    spec: {
      id: [familyId, REQUIRED],
      name: [text, REQUIRED],
      csvlkId: [guid, undefined],
      groupId: [int(0, 99_999), REQUIRED],
      minKeyId: [keyIds.min, REQUIRED],
      maxKeyId: [keyIds.max, REQUIRED],
      releaseDate: [date, REQUIRED],
      minHostBuild: [int(1, 999_999), undefined],
      ...common,
    },
  },
} satisfies Record<string, { key: string; spec: Spec }>

export type TableName = keyof typeof TABLES
export const TABLE_NAMES = Object.keys(TABLES) as TableName[]
export type Entry = Record<string, unknown>

/** Where an entry came from, for errors found after merging (`skus[3]` of `file`). */
export interface Origin {
  file: string
  table: TableName
  index: number
}

export interface ParsedFile {
  file: string
  tables: Partial<Record<TableName, Entry[]>>
  sources: Record<string, string>
  notes: string[]
  origins: Map<object, Origin>
}

const META_KEYS = new Set(['$comment', 'schema', 'generatedBy', 'generatedFrom', 'sources', 'notes'])

interface Field {
  name: string
  parse: Parse
  fallback: unknown
}
// Flat field lists walked by index: at start-up this code runs cold, where destructuring and
// for-in over the spec objects cost more than the checks themselves.
const FIELDS = new Map<Spec, Field[]>()
function fieldsOf(spec: Spec): Field[] {
  let fields = FIELDS.get(spec)
  if (!fields) {
    fields = Object.keys(spec).map((name) => ({ name, parse: spec[name][0], fallback: spec[name][1] }))
    FIELDS.set(spec, fields)
  }
  return fields
}

function parseEntry(raw: unknown, spec: Spec, file: string, table: TableName, index: number): Entry {
  const label = () => `${table}[${index}]`
  if (!raw || typeof raw !== 'object' || Array.isArray(raw))
    throw new CatalogError('must be an object', file, label())
  const src = raw as Record<string, unknown>
  const keys = Object.keys(src)
  for (let i = 0; i < keys.length; i++) {
    if (!Object.hasOwn(spec, keys[i])) throw new CatalogError('is not a known field', file, label(), keys[i])
  }
  // checked and completed in place: the value is a fresh JSON.parse result, and copying costs
  const fields = fieldsOf(spec)
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i]
    const value = src[f.name]
    if (value === undefined) {
      if (f.fallback === REQUIRED) throw new CatalogError('is required', file, label(), f.name)
      if (f.fallback !== undefined) src[f.name] = Array.isArray(f.fallback) ? [...f.fallback] : f.fallback
      continue
    }
    try {
      src[f.name] = f.parse(value)
    } catch (e) {
      if (!(e instanceof Problem)) throw e
      throw new CatalogError(`${e.text} (got ${JSON.stringify(value)?.slice(0, 60)})`, file, label(), f.name)
    }
  }
  return src
}

/** Checks one file's JSON value and returns its normalised tables. */
export function parseProductsFile(json: unknown, file: string): ParsedFile {
  if (!json || typeof json !== 'object' || Array.isArray(json)) {
    throw new CatalogError('must hold a JSON object with tables such as "skus"', file)
  }
  const top = json as Record<string, unknown>
  const parsed: ParsedFile = { file, tables: {}, sources: {}, notes: [], origins: new Map() }
  for (const [key, value] of Object.entries(top)) {
    if (Object.hasOwn(TABLES, key)) {
      const name = key as TableName
      if (!Array.isArray(value)) throw new CatalogError('must be a list of entries', file, name)
      const seen = new Set<unknown>()
      parsed.tables[name] = value.map((raw, i) => {
        const entry = parseEntry(raw, TABLES[name].spec, file, name, i)
        const id = entry[TABLES[name].key]
        if (seen.has(id))
          throw new CatalogError(
            `repeats ${id}, listed earlier in the same file`,
            file,
            `${name}[${i}]`,
            TABLES[name].key,
          )
        seen.add(id)
        if (entry.source === undefined) entry.source = [file]
        parsed.origins.set(entry, { file, table: name, index: i })
        return entry
      })
    } else if (key === 'schema' && value !== 1) {
      throw new CatalogError('must be 1 (the only schema this version reads)', file, undefined, 'schema')
    } else if (key === 'sources') {
      const ok =
        value && typeof value === 'object' && Object.values(value).every((v) => typeof v === 'string')
      if (!ok) throw new CatalogError('must map source keys to descriptions', file, undefined, 'sources')
      parsed.sources = { ...(value as Record<string, string>) }
    } else if (key === 'notes') {
      const ok = Array.isArray(value) && value.every((v) => typeof v === 'string')
      if (!ok) throw new CatalogError('must be a list of strings', file, undefined, 'notes')
      parsed.notes = [...(value as string[])]
    } else if (!META_KEYS.has(key)) {
      throw new CatalogError(
        `is not a table of products files (${TABLE_NAMES.join(', ')})`,
        file,
        undefined,
        key,
      )
    }
  }
  return parsed
}
