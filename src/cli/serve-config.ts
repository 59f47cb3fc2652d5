import { readFileSync } from 'node:fs'
import { UsageError } from '../errors.js'
import type { OptionSpec } from './args.js'

/** Settings from --config: the flags' names as keys, checked like the flags themselves. */
export function readConfigFile(path: string, options: OptionSpec): Record<string, unknown> {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new UsageError(
      `kmslab serve: --config ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    )
  }
  return parseConfigText(text, path, options)
}

/**
 * Where a JSON text goes wrong, on one line: line and column, and the text there quoted (node's
 * own message may carry the whole raw text, line breaks and all).
 */
export function jsonProblem(text: string, err: Error): string {
  const what = err.message
    .split('\n')[0]
    .replace(/, ".*$/s, '')
    .replace(/ in JSON at position \d+.*$/, '')
  const pos = /at position (\d+)/.exec(err.message)
  const at = pos ? Number(pos[1]) : /end of JSON input/.test(err.message) ? text.length : null
  const before = text.slice(0, at ?? 0).split('\n')
  const where = at === null ? '' : ` at line ${before.length}, column ${before[before.length - 1].length + 1}`
  const excerpt = text.slice(at ?? 0, (at ?? 0) + 24)
  return `${what}${where}${excerpt ? ` (${at === null ? 'the text begins' : 'near'} ${JSON.stringify(excerpt)})` : ''}`
}

/** The text of a --config file as flag values of `options`; a UsageError names the file and the key. */
export function parseConfigText(text: string, path: string, options: OptionSpec): Record<string, unknown> {
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch (err) {
    throw new UsageError(`kmslab serve: --config ${path}: not JSON: ${jsonProblem(text, err as Error)}`)
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new UsageError(`kmslab serve: --config ${path}: must be a JSON object`)
  }
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(data)) {
    if (!Object.hasOwn(options, key) || key === 'config' || key === 'help')
      throw new UsageError(`kmslab serve: --config ${path}: unknown setting ${JSON.stringify(key)}`)
    const spec = options[key]
    const ok =
      spec.type === 'boolean'
        ? typeof value === 'boolean'
        : spec.multiple
          ? Array.isArray(value) && value.every((v) => typeof v === 'string' || typeof v === 'number')
          : typeof value === 'string' || typeof value === 'number'
    if (!ok) throw new UsageError(`kmslab serve: --config ${path}: ${key}: wrong type`)
    out[key] = spec.multiple
      ? (value as unknown[]).map(String)
      : spec.type === 'boolean'
        ? value
        : String(value)
  }
  return out
}
