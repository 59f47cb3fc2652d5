// Which product a request asks for: a catalogue name, or raw application / SKU / KMS ids, and the
// defaults that follow from the KMS id (threshold N, protocol version; §2.1, §6.2, §6.3).
import { UsageError } from '../errors.js'
import { WINDOWS_APP_ID } from './app-ids.js'
import { normalizeGuid } from './names.js'
import type { Catalog } from './types.js'

export interface Product {
  appId: string
  skuId: string
  kmsId: string
  /** The N count policy a client of this product sends. */
  requiredCount: number
  /** The KMS protocol major version its clients send. */
  protocol: number
  name?: string
}

export const DEFAULT_PRODUCT = 'Windows 11 Enterprise'

/** A GUID option's value in the project's form (braces and case forgiven); UsageError names `--option`. */
export function checkGuid(text: string, option: string): string {
  const g = normalizeGuid(text)
  if (g === undefined) throw new UsageError(`--${option} takes a GUID, got ${JSON.stringify(text)}`, option)
  return g
}

/** The SKU a person means (catalogue lookup: exact name, alias, id, GVLK or a unique part of a name). */
export function findProduct(catalog: Catalog, query: string): Product {
  const sku = catalog.findSku(query)
  const kms = catalog.kmsById(sku.kmsId)
  return {
    appId: sku.appId,
    skuId: sku.id,
    kmsId: sku.kmsId,
    requiredCount: kms?.requiredCount ?? (sku.appId === WINDOWS_APP_ID ? 25 : 5),
    protocol: kms?.defaultProtocol ?? 6,
    name: sku.name,
  }
}

/**
 * Raw ids over a base product (like vlmcs -a/-s/-k over -l): a KMS id the catalogue knows brings
 * its own threshold and protocol; an unknown one keeps the base product's.
 */
export function withIds(
  catalog: Catalog | undefined,
  base: Product,
  ids: { appId?: string; skuId?: string; kmsId?: string },
): Product {
  if (ids.appId === undefined && ids.skuId === undefined && ids.kmsId === undefined) return base
  const out: Product = { ...base }
  delete out.name
  if (ids.appId !== undefined) out.appId = checkGuid(ids.appId, 'app')
  if (ids.skuId !== undefined) out.skuId = checkGuid(ids.skuId, 'sku')
  if (ids.kmsId !== undefined) {
    out.kmsId = checkGuid(ids.kmsId, 'kms')
    const kms = catalog?.kmsById(out.kmsId)
    if (kms) {
      out.requiredCount = kms.requiredCount
      out.protocol = kms.defaultProtocol
    }
  }
  const sku = catalog?.skuById(out.skuId)
  if (sku && sku.kmsId === out.kmsId && sku.appId === out.appId) out.name = sku.name
  return out
}

/** Names for display; the catalogue provides them, anything with the same three methods will do. */
export interface NameLookup {
  appName(id: string): string | undefined
  skuName(id: string): string | undefined
  kmsName(id: string): string | undefined
}
