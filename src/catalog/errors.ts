import { UsageError } from '../errors.js'

/**
 * A products file that cannot be used: names the file, the entry (`skus[3]`) and the field at
 * fault. Like a bad flag, `--config` or `--rules` file, it is the user's input that is wrong, so
 * the CLI exits 64 (78 is kept for unusable state: a read-only or corrupt database).
 */
export class CatalogError extends UsageError {
  constructor(
    readonly problem: string,
    readonly file: string,
    readonly entry?: string,
    readonly field?: string,
  ) {
    super(`${file}: ${[entry, field && `field "${field}"`, problem].filter(Boolean).join(': ')}`, field)
  }
}
