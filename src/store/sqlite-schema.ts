/** The layout of the state file: tables, the version check, and history rows to and from SQL. */
import type Database from 'better-sqlite3'
import { ConfigError } from '../errors.js'
import type { HistoryRow } from './types.js'

export const SCHEMA_VERSION = 1
const APPLICATION = 'kmslab'

const SCHEMA = `
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
  epid: string | null
  rules: string
}

/** Creates the schema in an empty file, or checks that the file is a kmslab state database we can read. */
export function ensureSchema(db: Database.Database, file: string): void {
  const tables = (
    db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table'`).all() as { name: string }[]
  ).map((t) => t.name)
  if (tables.length === 0) {
    db.exec(SCHEMA)
    const put = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)')
    put.run('application', APPLICATION)
    put.run('schema_version', String(SCHEMA_VERSION))
    return
  }
  const meta = tables.includes('meta')
    ? new Map(
        (db.prepare('SELECT key, value FROM meta').all() as { key: string; value: string }[]).map((r) => [
          r.key,
          r.value,
        ]),
      )
    : new Map<string, string>()
  if (meta.get('application') !== APPLICATION) {
    throw new ConfigError(
      `${file} is not a kmslab state database (it holds tables ${tables.join(', ')})`,
      file,
    )
  }
  const version = Number(meta.get('schema_version'))
  if (version !== SCHEMA_VERSION) {
    throw new ConfigError(
      `state file ${file} has schema version ${meta.get('schema_version')}; this kmslab reads version ${SCHEMA_VERSION}`,
      file,
    )
  }
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
    epid: r.epid,
    rules: JSON.parse(r.rules),
  }
}
