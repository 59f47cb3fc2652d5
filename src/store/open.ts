import { existsSync } from 'node:fs'
import { homedir } from 'node:os'
import { isAbsolute, join } from 'node:path'
import { ConfigError, UsageError } from '../errors.js'
import { MemoryStore } from './memory.js'
import { openSqliteStore, type SqliteStore, type SqliteStoreOptions } from './sqlite.js'
import { HISTORY_RETENTION_DAYS_DEFAULT, type StateStore } from './types.js'

export interface OpenStateStoreOptions extends SqliteStoreOptions {
  /** 'memory' only: how many of the newest history rows it keeps (default MEMORY_HISTORY_LIMIT). */
  memoryHistoryLimit?: number
}

/** `$XDG_STATE_HOME/kmslab/state.db`, else `~/.local/state/kmslab/state.db` (a relative XDG_STATE_HOME is ignored, per the XDG spec). */
export function defaultStatePath(env: NodeJS.ProcessEnv = process.env, home: string = homedir()): string {
  const xdg = env.XDG_STATE_HOME
  const base = xdg && isAbsolute(xdg) ? xdg : join(home, '.local', 'state')
  return join(base, 'kmslab', 'state.db')
}

/**
 * Opens the state behind `--state`: 'memory' keeps nothing on disk (write ./memory for a file of
 * that name); anything else is the SQLite file, its directory created if missing. Throws
 * ConfigError naming the path when the file cannot be used (read-only, corrupt, not ours, locked).
 */
export function openStateStore(location: string, opts: OpenStateStoreOptions = {}): StateStore {
  const days = opts.historyDays ?? HISTORY_RETENTION_DAYS_DEFAULT
  if (!(days > 0)) throw new UsageError(`history retention ${days} days: must be > 0`, '--history-days')
  if (location === 'memory') {
    return new MemoryStore({
      historyDays: days,
      historyLimit: opts.memoryHistoryLimit,
      writeFailure: opts.writeFailure,
    })
  }
  return openSqliteStore(location, opts)
}

/**
 * Opens a state file to read only, beside a host that may be running on it (WAL: the host goes on
 * writing while this reads). The file must exist at this kmslab's schema version.
 */
export function openStateStoreReadOnly(location: string): SqliteStore {
  if (location === 'memory')
    throw new UsageError('a memory state lives inside its host: ask the host (--url) instead', '--state')
  if (!existsSync(location))
    throw new ConfigError(`no state file at ${location}: no kmslab host has used it yet`, location)
  return openSqliteStore(location, { readOnly: true })
}
