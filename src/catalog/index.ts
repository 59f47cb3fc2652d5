export { OFFICE2010_APP_ID, OFFICE2013_APP_ID, WINDOWS_APP_ID } from './app-ids.js'
export { CatalogError } from './errors.js'
export { BUILTIN_PRODUCTS_FILE, defaultCatalog, type LoadCatalogOptions, loadCatalog } from './load.js'
export { canon, isGvlk, normalizeGuid } from './names.js'
export { checkGuid, DEFAULT_PRODUCT, findProduct, type NameLookup, type Product, withIds } from './product.js'
export {
  type App,
  type Catalog,
  type CatalogTables,
  type Csvlk,
  EPID_FAMILIES,
  type EpidFamily,
  type HostBuild,
  type KmsId,
  type KmsProtocol,
  type KnownEpidFamily,
  type KnownProductFamily,
  PRODUCT_FAMILIES,
  type ProductFamily,
  type Sku,
} from './types.js'
