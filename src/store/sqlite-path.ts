/** Checks at open, so an unusable state path fails at start with a message naming it. */
import { accessSync, constants, mkdirSync, statSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { ConfigError } from '../errors.js'

export const describe = (e: unknown) => (e instanceof Error ? e.message : String(e))

/**
 * mkdir -p, by hand: Node's `mkdirSync(dir, { recursive: true })` loops forever where mkdir says
 * ENOENT under an existing parent (e.g. under /proc), instead of reporting the error.
 */
function makeDirs(dir: string): void {
  const missing: string[] = []
  for (let d = dir; ; d = dirname(d)) {
    try {
      if (statSync(d).isDirectory()) break
      throw new Error(`${d} is not a directory`)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || dirname(d) === d) throw e
      missing.push(d)
    }
  }
  for (const d of missing.reverse()) {
    try {
      mkdirSync(d)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e
    }
  }
}

/** Fails early, with the path, on what SQLite would report obscurely or only at the first write. */
export function checkPath(file: string): void {
  let st: ReturnType<typeof statSync> | undefined
  try {
    st = statSync(file)
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    if (code !== 'ENOENT' && code !== 'ENOTDIR')
      throw new ConfigError(`cannot use state file ${file}: ${describe(e)}`, file)
  }
  const dir = dirname(file)
  if (st?.isDirectory()) {
    throw new ConfigError(
      `state path ${file} is a directory; give the database file, e.g. ${join(file, 'state.db')}`,
      file,
    )
  }
  if (st && !st.isFile()) throw new ConfigError(`state path ${file} is not a regular file`, file)
  if (!st) {
    try {
      makeDirs(dir)
    } catch (e) {
      throw new ConfigError(`cannot create directory ${dir} for the state file ${file}: ${describe(e)}`, file)
    }
  }
  try {
    if (st) accessSync(file, constants.R_OK | constants.W_OK)
  } catch {
    throw new ConfigError(`state file ${file} is read-only`, file)
  }
  try {
    accessSync(dir, constants.W_OK | constants.X_OK)
  } catch {
    throw new ConfigError(
      `state directory ${dir} is read-only: SQLite needs to create ${basename(file)} and its -wal and -shm files there`,
      file,
    )
  }
}

export function openError(e: unknown, file: string): ConfigError {
  if (e instanceof ConfigError) return e
  const code = String((e as { code?: unknown })?.code ?? '')
  const why = describe(e)
  if (code === 'SQLITE_NOTADB')
    return new ConfigError(`${file} is not a kmslab state database (${why})`, file)
  if (code.startsWith('SQLITE_CORRUPT'))
    return new ConfigError(`state file ${file} is corrupt (${why})`, file)
  if (code.startsWith('SQLITE_READONLY'))
    return new ConfigError(`state file ${file} is read-only (${why})`, file)
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return new ConfigError(`state file ${file} is locked by another process (another kmslab host?)`, file)
  }
  if (code.startsWith('SQLITE_FULL'))
    return new ConfigError(`no space left for state file ${file} (${why})`, file)
  return new ConfigError(`cannot use state file ${file}: ${why}`, file)
}
