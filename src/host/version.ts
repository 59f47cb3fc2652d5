import { readFileSync } from 'node:fs'

/**
 * The package's version, from its package.json (two levels up from src/host and from dist/host
 * alike), so /api/status, /metrics and --version cannot drift from what was released.
 */
export const KMSLAB_VERSION: string = (() => {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'))
    return typeof pkg.version === 'string' ? pkg.version : 'unknown'
  } catch {
    return 'unknown'
  }
})()
