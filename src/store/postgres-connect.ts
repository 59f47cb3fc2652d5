/**
 * Reaching the database at start: `--state postgres://USER@HOST:PORT/DB` (or postgresql://), or
 * `--state postgres` for the libpq environment (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE).
 * A database that does not answer is waited for, a bounded time, then refused naming host and
 * port; one that answers but refuses us (password, no such database) is refused at once.
 */
import pg from 'pg'
import { ConfigError } from '../errors.js'
import { migrate } from './postgres-schema.js'
import type { WriteFailure } from './types.js'

export interface PgStoreOptions {
  historyDays?: number
  writeFailure?: WriteFailure | null
  /** how long to wait for the database at start (default 10 s) */
  connectWaitMs?: number
  /** connections in the pool (default 4) */
  poolSize?: number
}

/** `postgres`, `postgresql` (environment) or a postgres:// or postgresql:// URL. */
export function isPostgresLocation(location: string): boolean {
  return /^postgres(ql)?(:\/\/.*)?$/.test(location)
}

/** SQLSTATE classes that waiting will not fix: authorization, unknown database, bad settings. */
const FATAL = /^(28|3D|42|0A)/

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export async function connectPg(
  location: string,
  opts: PgStoreOptions,
): Promise<{ pool: pg.Pool; display: string }> {
  const config: pg.PoolConfig = {
    connectionString: location.includes('://') ? location : undefined,
    max: opts.poolSize ?? 4,
    connectionTimeoutMillis: 2000,
    // a database that hangs must not hang requests: they fail, and are refused
    query_timeout: 10_000,
    application_name: 'kmslab',
  }
  const probe = new pg.Client(config)
  const server = probe.host.startsWith('/')
    ? `socket ${probe.host}/.s.PGSQL.${probe.port}`
    : `${probe.host}:${probe.port}`
  const display = `postgres://${probe.user}@${probe.host.startsWith('/') ? '' : server}/${probe.database}`
  const wait = opts.connectWaitMs ?? 10_000
  const deadline = Date.now() + wait
  for (;;) {
    const pool = new pg.Pool(config)
    // An idle connection the server drops must not crash the host: the next request reconnects.
    pool.on('error', () => {})
    try {
      const client = await pool.connect()
      try {
        await migrate(client, display)
      } finally {
        client.release()
      }
      return { pool, display }
    } catch (e) {
      await pool.end().catch(() => {})
      if (e instanceof ConfigError) throw e
      const code = String((e as { code?: unknown })?.code ?? '')
      const why = (e as Error)?.message ?? String(e)
      if (FATAL.test(code))
        throw new ConfigError(`PostgreSQL at ${server} refused kmslab's state ${display}: ${why}`, display)
      if (Date.now() >= deadline) {
        throw new ConfigError(
          `cannot reach PostgreSQL at ${server} for state ${display} (waited ${Math.round(wait / 1000)} s): ${why}`,
          display,
        )
      }
      await sleep(Math.min(250, Math.max(0, deadline - Date.now())))
    }
  }
}
