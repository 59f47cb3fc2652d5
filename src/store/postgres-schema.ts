/**
 * The PostgreSQL layout: kmslab_* tables (so a shared database stays readable), created and
 * migrated at start under an advisory lock, one numbered step at a time; kmslab_schema holds the
 * version reached. A database from a newer kmslab is refused rather than written.
 */
import type pg from 'pg'
import { ConfigError } from '../errors.js'
import type { HistoryRow } from './types.js'

/** Advisory lock classes (the first key of the two-key form); the second key says which. */
export const LOCK = {
  migrate: 0x6b6d_7301,
  /** (pools, 0): shared by every counting transaction, exclusive when a pool appears or the API edits pools */
  pools: 0x6b6d_7302,
  /** (app, hash of the application id): one counting transaction per pool at a time */
  app: 0x6b6d_7303,
  prune: 0x6b6d_7304,
} as const

const MIGRATIONS: readonly string[] = [
  `CREATE TABLE kmslab_identity (
     id integer PRIMARY KEY CHECK (id = 1), epids jsonb NOT NULL, hwid text NOT NULL,
     host_build integer NOT NULL, lcid integer NOT NULL, created_at bigint NOT NULL);
   CREATE TABLE kmslab_pool (
     app_id text NOT NULL, cmid text NOT NULL, last_seen bigint NOT NULL, first_seen bigint NOT NULL,
     workstation text, sku_id text, license_status bigint, vm boolean, requests bigint NOT NULL DEFAULT 0,
     PRIMARY KEY (app_id, cmid));
   CREATE TABLE kmslab_request_counts (
     license_status bigint PRIMARY KEY, requests bigint NOT NULL, failed bigint NOT NULL);
   CREATE TABLE kmslab_history (
     id bigserial PRIMARY KEY, time bigint NOT NULL, client_address text NOT NULL,
     workstation text NOT NULL, cmid text NOT NULL, previous_cmid text NOT NULL, app_id text NOT NULL,
     sku_id text NOT NULL, kms_id text NOT NULL, required_count integer NOT NULL, reported_count bigint,
     hresult bigint NOT NULL, protocol text NOT NULL, vm boolean NOT NULL, license_status bigint NOT NULL,
     client_time bigint, grace_minutes bigint, epid text, rules jsonb NOT NULL);
   CREATE INDEX kmslab_history_time ON kmslab_history (time);`,
]
export const PG_SCHEMA_VERSION = MIGRATIONS.length

/** Brings the database to PG_SCHEMA_VERSION; `where` names it in errors. */
export async function migrate(client: pg.ClientBase, where: string): Promise<void> {
  await client.query('BEGIN')
  try {
    await client.query(`SELECT pg_advisory_xact_lock(${LOCK.migrate}, 0)`)
    await client.query('CREATE TABLE IF NOT EXISTS kmslab_schema (version integer NOT NULL)')
    const found = await client.query<{ version: number }>('SELECT version FROM kmslab_schema')
    const version = found.rows[0]?.version ?? 0
    if (version > PG_SCHEMA_VERSION) {
      throw new ConfigError(
        `PostgreSQL state ${where} has schema version ${version}; this kmslab reads up to ${PG_SCHEMA_VERSION}`,
        where,
      )
    }
    for (let v = version; v < PG_SCHEMA_VERSION; v++) await client.query(MIGRATIONS[v])
    if (found.rows.length === 0)
      await client.query('INSERT INTO kmslab_schema VALUES ($1)', [PG_SCHEMA_VERSION])
    else await client.query('UPDATE kmslab_schema SET version = $1', [PG_SCHEMA_VERSION])
    await client.query('COMMIT')
  } catch (e) {
    await client.query('ROLLBACK').catch(() => {})
    throw e
  }
}

export const HISTORY_COLUMNS =
  'time, client_address, workstation, cmid, previous_cmid, app_id, sku_id, kms_id, required_count, ' +
  'reported_count, hresult, protocol, vm, license_status, client_time, grace_minutes, epid, rules'

/** The SQL types of HISTORY_COLUMNS, for inserting a batch as unnest() of one array per column. */
export const HISTORY_TYPES = [
  'bigint',
  'text',
  'text',
  'text',
  'text',
  'text',
  'text',
  'text',
  'integer',
  'bigint',
  'bigint',
  'text',
  'boolean',
  'bigint',
  'bigint',
  'bigint',
  'text',
  'jsonb',
]

/** One array per column, in HISTORY_COLUMNS order. */
export function historyColumns(rows: readonly HistoryRow[]): unknown[][] {
  const cols: unknown[][] = HISTORY_TYPES.map(() => [])
  for (const r of rows) {
    const values = [
      r.time,
      r.clientAddress,
      r.workstation,
      r.cmid,
      r.previousCmid,
      r.appId,
      r.skuId,
      r.kmsId,
      r.requiredCount,
      r.reportedCount,
      r.hresult,
      r.protocol,
      r.vm,
      r.licenseStatus,
      r.clientTime,
      r.graceMinutes,
      r.epid,
      JSON.stringify(r.rules),
    ]
    for (let i = 0; i < values.length; i++) cols[i].push(values[i])
  }
  return cols
}

export interface PgHistoryRecord {
  time: string
  client_address: string
  workstation: string
  cmid: string
  previous_cmid: string
  app_id: string
  sku_id: string
  kms_id: string
  required_count: number
  reported_count: string | null
  hresult: string
  protocol: string
  vm: boolean
  license_status: string
  client_time: string | null
  grace_minutes: string | null
  epid: string | null
  rules: string[]
}

export function fromPgRecord(r: PgHistoryRecord): HistoryRow {
  return {
    time: Number(r.time),
    clientAddress: r.client_address,
    workstation: r.workstation,
    cmid: r.cmid,
    previousCmid: r.previous_cmid,
    appId: r.app_id,
    skuId: r.sku_id,
    kmsId: r.kms_id,
    requiredCount: r.required_count,
    reportedCount: r.reported_count === null ? null : Number(r.reported_count),
    hresult: Number(r.hresult),
    protocol: r.protocol,
    vm: r.vm,
    licenseStatus: Number(r.license_status),
    clientTime: r.client_time === null ? null : Number(r.client_time),
    graceMinutes: r.grace_minutes === null ? null : Number(r.grace_minutes),
    epid: r.epid,
    rules: r.rules,
  }
}

/** A 32-bit FNV-1a of an application id, the second key of its advisory lock. */
export function lockKeyOf(appId: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < appId.length; i++) {
    h ^= appId.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h | 0
}
