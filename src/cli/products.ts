import { type Catalog, defaultCatalog, loadCatalog, normalizeGuid, type Sku } from '../catalog/index.js'
import { UsageError } from '../errors.js'
import { type OptionSpec, parseCliArgs, type Verb } from './args.js'
import { formatHelp } from './help.js'

const OPTIONS = {
  json: {
    type: 'boolean',
    help:
      'one JSON object per SKU per line (skuId, name, aliases, gvlk, appId, kmsId, family, ' +
      'requiredCount, defaultProtocol, retail, preview, epidFamily, ...)',
  },
  products: {
    type: 'string',
    arg: 'FILE',
    help:
      'lay FILE (same schema as the shipped data/products.json) over the catalogue: entries with a ' +
      'known id replace it, new ones are added',
  },
  help: { type: 'boolean', short: 'h', help: 'this help' },
} satisfies OptionSpec

const HELP = formatHelp(
  {
    usage: 'kmslab products [--json] [--products FILE] [SEARCH...]',
    intro: `Lists the Windows and Office products (SKUs) kmslab knows: SKU id, GVLK, product family,
activation threshold (N: clients the KMS host must count), default protocol version (V) and name.`,
    operands: [
      {
        arg: 'SEARCH',
        help:
          'words looked up in names and aliases, any case: "win11 pro", "server 2025", "office 2024"; ' +
          'an exact name, alias, SKU id or GVLK shows just that SKU (a KMS id or application id lists ' +
          'the SKUs under it)',
      },
    ],
    exitCodes: [
      [0, 'listed'],
      [1, 'nothing matches'],
      [64, 'usage error or unusable products file'],
    ],
  },
  OPTIONS,
)

/** The catalogue with a --products file laid over it; its problems are usage errors naming the flag. */
export function catalogFor(verb: string, file: string | undefined): Catalog {
  if (file === undefined) return defaultCatalog()
  try {
    return loadCatalog({ extraFile: file })
  } catch (err) {
    // the catalogue names the file and the entry; the flag and the verb are the CLI's to add
    if (err instanceof UsageError) err.message = `kmslab ${verb}: --products ${err.message}`
    throw err
  }
}

/** What `--json` prints for one SKU: the SKU with its KMS id's policy folded in. */
export function skuRecord(catalog: Catalog, sku: Sku): Record<string, unknown> {
  const kms = catalog.kmsById(sku.kmsId)!
  return {
    skuId: sku.id,
    name: sku.name,
    aliases: sku.aliases,
    gvlk: sku.gvlk,
    ...(sku.gvlkGenerated ? { gvlkGenerated: true } : {}),
    appId: sku.appId,
    appName: catalog.appName(sku.appId),
    kmsId: kms.id,
    kmsName: kms.name,
    family: kms.family,
    requiredCount: kms.requiredCount,
    defaultProtocol: kms.defaultProtocol,
    retail: kms.retail,
    preview: kms.preview,
    epidFamily: kms.epidFamily,
    source: sku.source,
  }
}

function table(catalog: Catalog, skus: Sku[]): string {
  const rows = skus.map((s) => {
    const kms = catalog.kmsById(s.kmsId)!
    const flags = [kms.retail && 'retail', kms.preview && 'preview', s.gvlkGenerated && 'generated-key']
    return [
      s.id,
      s.gvlk,
      kms.family,
      String(kms.requiredCount),
      String(kms.defaultProtocol),
      flags.filter(Boolean).join(',') || '-',
      s.name,
    ]
  })
  const head = ['SKU ID', 'GVLK', 'FAMILY', 'N', 'V', 'FLAGS', 'NAME']
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
  const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ')
  return `${[head, ...rows].map(line).join('\n')}\n`
}

export const productsVerb: Verb = {
  name: 'products',
  summary: 'list known products: SKU ids, GVLKs, KMS ids, thresholds, protocol versions',
  help: HELP,
  options: OPTIONS,
  async run(argv, io) {
    const { values, positionals } = parseCliArgs('products', argv, OPTIONS)
    const catalog = catalogFor('products', values.products)
    const query = positionals.join(' ')
    const skus = catalog.searchSkus(query)
    const id = normalizeGuid(query)
    // a KMS id or application id lists the SKUs under it
    if (skus.length === 0 && id) skus.push(...catalog.skus.filter((s) => s.kmsId === id || s.appId === id))
    if (skus.length === 0) {
      io.stderr.write(`kmslab products: nothing matches ${JSON.stringify(query)}\n`)
      return 1
    }
    if (values.json) {
      io.stdout.write(skus.map((s) => `${JSON.stringify(skuRecord(catalog, s))}\n`).join(''))
    } else {
      io.stdout.write(table(catalog, skus))
    }
    return 0
  },
}
