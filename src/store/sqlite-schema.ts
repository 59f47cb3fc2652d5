/** The layout of the state file: tables, the version check, and history rows to and from SQL. */
import type Database from 'better-sqlite3'
import { ConfigError } from '../errors.js'
import type { HistoryRow } from './types.js'

export const SCHEMA_VERSION = 2
const APPLICATION = 'kmslab'

/** Version 1, as the first kmslab wrote it; a new file gets it, then every migration in turn. */
const SCHEMA_V1 = `
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE identity (
  id INTEGER PRIMARY KEY CHECK (id = 1), epids TEXT NOT NULL, hwid TEXT NOT NULL,
  host_build INTEGER NOT NULL, lcid INTEGER NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE pool (
  app_id TEXT NOT NULL, cmid TEXT NOT NULL, last_seen INTEGER NOT NULL,
  PRIMARY KEY (app_id, cmid)) WITHOUT ROWID;
CREATE TABLE history (
  id INTEGER PRIMARY KEY, time INTEGER NOT NULL, client_address TEXT NOT NULL,
  workstation TEXT NOT NULL, cmid TEXT NOT NULL, previous_cmid TEXT NOT NULL, app_id TEXT NOT NULL,
  sku_id TEXT NOT NULL, kms_id TEXT NOT NULL, required_count INTEGER NOT NULL, reported_count INTEGER,
  hresult INTEGER NOT NULL, protocol TEXT NOT NULL, vm INTEGER NOT NULL, license_status INTEGER NOT NULL,
  epid TEXT, rules TEXT NOT NULL);
CREATE INDEX history_time ON history (time);
`

/**
 * Version 2: history rows keep the client's clock and grace minutes (event 12290 has both), pool entries carry their client's details (for the clients table), and the
 * cumulative request figures of slmgr /dlv live in request_counts. A file from version 1 gets
 * them from the history it still holds (the best count there is; older rows were pruned).
 */
const MIGRATE_TO_V2 = `
ALTER TABLE history ADD COLUMN client_time INTEGER;
ALTER TABLE history ADD COLUMN grace_minutes INTEGER;
ALTER TABLE pool ADD COLUMN first_seen INTEGER NOT NULL DEFAULT 0;
ALTER TABLE pool ADD COLUMN workstation TEXT;
ALTER TABLE pool ADD COLUMN sku_id TEXT;
ALTER TABLE pool ADD COLUMN license_status INTEGER;
ALTER TABLE pool ADD COLUMN vm INTEGER;
ALTER TABLE pool ADD COLUMN requests INTEGER NOT NULL DEFAULT 0;
UPDATE pool SET first_seen = last_seen;
CREATE TABLE request_counts (
  license_status INTEGER PRIMARY KEY, requests INTEGER NOT NULL, failed INTEGER NOT NULL);
INSERT INTO request_counts (license_status, requests, failed)
  SELECT license_status, count(*), sum(hresult != 0) FROM history GROUP BY license_status;
UPDATE pool SET workstation = h.workstation, sku_id = h.sku_id, license_status = h.license_status,
  vm = h.vm, requests = h.n, first_seen = min(pool.last_seen, h.first)
FROM (SELECT lower(l.app_id) AS app, lower(l.cmid) AS client, l.workstation, l.sku_id, l.license_status,
        l.vm, g.n, g.first
      FROM (SELECT max(id) AS id, count(*) AS n, min(time) AS first FROM history
            WHERE hresult = 0 GROUP BY lower(app_id), lower(cmid)) AS g
      JOIN history AS l ON l.id = g.id) AS h
WHERE h.app = pool.app_id AND h.client = pool.cmid;
`

/** Statements that bring a file of version N-1 to version N. */
const MIGRATIONS: Record<number, string> = { 2: MIGRATE_TO_V2 }

export interface HistoryRecord {
  time: number
  client_address: string
  workstation: string
  cmid: string
  previous_cmid: string
  app_id: string
  sku_id: string
  kms_id: string
  required_count: number
  reported_count: number | null
  hresult: number
  protocol: string
  vm: number
  license_status: number
  client_time: number | null
  grace_minutes: number | null
  epid: string | null
  rules: string
}

function readMeta(db: Database.Database, tables: string[]): Map<string, string> {
  if (!tables.includes('meta')) return new Map()
  const rows = db.prepare('SELECT key, value FROM meta').all() as { key: string; value: string }[]
  return new Map(rows.map((r) => [r.key, r.value]))
}

/**
 * Creates the schema in an empty file, or checks that the file is a kmslab state database and
 * brings an older one up to SCHEMA_VERSION (run inside the opening transaction, so a migration is
 * all or nothing). `readOnly`: nothing is written, so the file must already be at this version.
 */
export function ensureSchema(db: Database.Database, file: string, readOnly = false): void {
  const tables = (
    db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table'`).all() as { name: string }[]
  ).map((t) => t.name)
  if (tables.length === 0) {
    if (readOnly) throw new ConfigError(`state file ${file} is empty: no kmslab host has used it yet`, file)
    db.exec(SCHEMA_V1)
    const put = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)')
    put.run('application', APPLICATION)
    put.run('schema_version', '1')
    migrate(db, 1)
    return
  }
  const meta = readMeta(db, tables)
  if (meta.get('application') !== APPLICATION) {
    throw new ConfigError(
      `${file} is not a kmslab state database (it holds tables ${tables.join(', ')})`,
      file,
    )
  }
  const version = Number(meta.get('schema_version'))
  if (version === SCHEMA_VERSION) return
  if (!(Number.isInteger(version) && version >= 1 && version < SCHEMA_VERSION)) {
    throw new ConfigError(
      `state file ${file} has schema version ${meta.get('schema_version')}; this kmslab reads versions 1 to ${SCHEMA_VERSION}`,
      file,
    )
  }
  if (readOnly) {
    throw new ConfigError(
      `state file ${file} has schema version ${version}; kmslab serve upgrades it to ${SCHEMA_VERSION} when it next opens it (a read-only open cannot)`,
      file,
    )
  }
  migrate(db, version)
}

function migrate(db: Database.Database, from: number): void {
  for (let v = from + 1; v <= SCHEMA_VERSION; v++) db.exec(MIGRATIONS[v])
  db.prepare(`UPDATE meta SET value = ? WHERE key = 'schema_version'`).run(String(SCHEMA_VERSION))
}

/** The history table's columns in the order `historyValues` gives them. */
export const HISTORY_COLUMNS = [
  'time',
  'client_address',
  'workstation',
  'cmid',
  'previous_cmid',
  'app_id',
  'sku_id',
  'kms_id',
  'required_count',
  'reported_count',
  'hresult',
  'protocol',
  'vm',
  'license_status',
  'client_time',
  'grace_minutes',
  'epid',
  'rules',
] as const satisfies readonly (keyof HistoryRecord)[]

/**
 * A row's values for `INSERT ... (HISTORY_COLUMNS) VALUES (?, ...)`. Positional parameters: binding
 * by name makes better-sqlite3 look up 16 properties by name per row, and this is done once per
 * request. No rules is the usual case: its JSON is a constant.
 */
export function historyValues(r: HistoryRow): (string | number | null)[] {
  return [
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
    r.vm ? 1 : 0,
    r.licenseStatus,
    r.clientTime,
    r.graceMinutes,
    r.epid,
    r.rules.length === 0 ? '[]' : JSON.stringify(r.rules),
  ]
}

export function fromRecord(r: HistoryRecord): HistoryRow {
  return {
    time: r.time,
    clientAddress: r.client_address,
    workstation: r.workstation,
    cmid: r.cmid,
    previousCmid: r.previous_cmid,
    appId: r.app_id,
    skuId: r.sku_id,
    kmsId: r.kms_id,
    requiredCount: r.required_count,
    reportedCount: r.reported_count,
    hresult: r.hresult,
    protocol: r.protocol,
    vm: r.vm !== 0,
    licenseStatus: r.license_status,
    clientTime: r.client_time,
    graceMinutes: r.grace_minutes,
    epid: r.epid,
    rules: JSON.parse(r.rules),
  }
}
