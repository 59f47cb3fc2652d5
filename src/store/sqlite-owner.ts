/**
 * One running host owns a SQLite state file. The owner holds an exclusive SQLite lock on a sidecar
 * database (`<file>-lock`, locking_mode=EXCLUSIVE, written once so the lock is the write lock) for
 * as long as it runs. The kernel drops that lock when the process dies, however it dies, so a
 * crash never leaves a stale claim; the state file itself stays readable by `kmslab status` and
 * other read-only readers (WAL), since the lock is not on it.
 */
import Database from 'better-sqlite3'
import { ConfigError } from '../errors.js'
import { describe } from './sqlite-path.js'

/** Who owns a state file: written into the state file's meta table by the owner at open. */
export interface StateOwner {
  pid: number
  /** ms since the epoch */
  startedAt: number
  hostname: string
}

export const lockPathOf = (file: string) => `${file}-lock`

/** Takes the owner lock of `file`, or returns null when another connection holds it. */
export function takeOwnerLock(file: string): Database.Database | null {
  const path = lockPathOf(file)
  let db: Database.Database | undefined
  try {
    db = new Database(path, { timeout: 0 })
    db.pragma('locking_mode = EXCLUSIVE')
    db.pragma('journal_mode = DELETE')
    // The first write takes the exclusive lock; in EXCLUSIVE locking mode it is never released.
    db.exec('CREATE TABLE IF NOT EXISTS owner (pid INTEGER); BEGIN EXCLUSIVE; DELETE FROM owner; COMMIT')
    return db
  } catch (e) {
    db?.close()
    const code = String((e as { code?: unknown })?.code ?? '')
    if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) return null
    throw new ConfigError(`cannot take the owner lock ${path} of state file ${file}: ${describe(e)}`, file)
  }
}

/** The refusal a second host gets, naming the owner when the state file says who it is. */
export function ownedElsewhere(file: string, owner: StateOwner | null): ConfigError {
  const who = owner
    ? `kmslab host pid ${owner.pid} on ${owner.hostname}, started ${new Date(owner.startedAt).toISOString()}`
    : 'another kmslab host'
  return new ConfigError(
    `state file ${file} is in use by ${who}: stop that host, or give this one its own --state ` +
      '(for several processes on one state use --workers, or PostgreSQL state)',
    file,
  )
}

/** Reads the owner record from the state file (read-only, best effort: null when unreadable). */
export function readOwner(file: string): StateOwner | null {
  let db: Database.Database | undefined
  try {
    db = new Database(file, { readonly: true, fileMustExist: true, timeout: 500 })
    const value = db.prepare(`SELECT value FROM meta WHERE key = 'owner'`).pluck().get() as string | undefined
    return value ? (JSON.parse(value) as StateOwner) : null
  } catch {
    return null
  } finally {
    db?.close()
  }
}
