import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { createCatalog } from './catalog.js'
import { CatalogError } from './errors.js'
import { mergeProductsFiles } from './merge.js'
import type { Catalog } from './types.js'
import { type ParsedFile, parseProductsFile } from './validate.js'

/** The shipped data file: two levels above this module, from src/catalog/ and from dist/catalog/. */
export const BUILTIN_PRODUCTS_FILE = fileURLToPath(new URL('../../data/products.json', import.meta.url))

export interface LoadCatalogOptions {
  /** A user's products file (same schema) laid over the shipped one: same id replaces, new adds. */
  extraFile?: string
}

function readProductsFile(file: string): ParsedFile {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new CatalogError(
      `cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      file,
    )
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (err) {
    throw new CatalogError(`is not valid JSON (${(err as Error).message})`, file)
  }
  return parseProductsFile(json, file)
}

/** Reads and checks the product catalogue; throws CatalogError naming the file, entry and field. */
export function loadCatalog(options: LoadCatalogOptions = {}): Catalog {
  const files = [readProductsFile(BUILTIN_PRODUCTS_FILE)]
  if (options.extraFile !== undefined) files.push(readProductsFile(options.extraFile))
  return createCatalog(mergeProductsFiles(files))
}

let shipped: Catalog | undefined

/** The shipped catalogue, read once per process. */
export function defaultCatalog(): Catalog {
  shipped ??= loadCatalog()
  return shipped
}
