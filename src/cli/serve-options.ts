// The serve verb's option table: the parser reads it, and --help is generated from it.
import type { OptionSpec } from './args.js'
import { DNS_OPTIONS } from './serve-dns.js'
import { HTTP_OPTIONS } from './serve-ops.js'

const LISTEN = 'Listening and RPC'
const KMS = 'KMS behaviour'
const STATE = 'State'
const OUTPUT = 'Output'

export const OPTIONS = {
  listen: {
    type: 'string',
    multiple: true,
    arg: 'HOST:PORT',
    section: LISTEN,
    help:
      'address to listen on, repeatable; IPv6 in brackets ([::1]:1688)\n' +
      '(default 127.0.0.1:1688: loopback unless told otherwise)',
  },
  workers: {
    type: 'string',
    arg: 'N|auto',
    section: LISTEN,
    help:
      'worker processes behind the same addresses, one host (one identity, one count); auto = the ' +
      'cores available (default 1: one process)',
  },
  allow: {
    type: 'string',
    multiple: true,
    arg: 'CIDR',
    section: LISTEN,
    help: 'only these networks may connect, repeatable; others are closed without a byte sent',
  },
  'no-ndr64': {
    type: 'boolean',
    section: LISTEN,
    help: 'accept NDR32 only (like a Windows 7 / Server 2008 R2 host)',
  },
  'no-btfn': {
    type: 'boolean',
    section: LISTEN,
    help: 'no bind-time feature negotiation (a pre-Windows 8 runtime: NDR64 off too)',
  },
  'idle-timeout': {
    type: 'string',
    arg: 'SECONDS',
    section: LISTEN,
    help: 'close a connection silent this long (default 30)',
  },
  'connection-deadline': {
    type: 'string',
    arg: 'SEC',
    section: LISTEN,
    help: 'close any connection this old (default 600)',
  },
  'max-connections': {
    type: 'string',
    arg: 'N',
    section: LISTEN,
    help: 'connections over this are closed at once and counted (default 16384)',
  },
  disconnect: {
    type: 'boolean',
    section: LISTEN,
    help: 'close each connection after its first answer (like vlmcsd -d)',
  },
  'busy-poll': {
    type: 'string',
    arg: 'MICROSECONDS',
    section: LISTEN,
    help:
      "after each read, keep polling up to this long before sleeping, so a busy client's next " +
      'request needs no wake-up; the spin costs at most a tenth of the host CPU, and only while ' +
      'it pays off (default 100; 0 turns it off)',
  },
  counter: {
    type: 'string',
    arg: 'MODE',
    section: KMS,
    help:
      'real (default): genuine counting from an empty pool, so the first 24 Windows clients get ' +
      '0xC004F038 on their side;\n' +
      "charged: report max(pool, 2 x required), capped at 50: everyone activates at once (vlmcsd's default);\n" +
      'fixed:N: report N exactly (a test override; above 50, which no genuine host reports, warned about)',
  },
  strict: {
    type: 'boolean',
    section: KMS,
    help:
      'refuse unknown or retail KMS ids (0xC004F042) and client clocks more than 4 hours off ' +
      '(0xC004F06C), like a genuine host',
  },
  'activation-interval': {
    type: 'string',
    arg: 'T',
    section: KMS,
    help: 'minutes, or with m/h/d/w (default 120 = 2h)',
  },
  'renewal-interval': {
    type: 'string',
    arg: 'T',
    section: KMS,
    help: 'minutes, or with m/h/d/w (default 10080 = 7d)',
  },
  epid: {
    type: 'string',
    multiple: true,
    arg: 'FAMILY=EPID',
    section: KMS,
    help:
      'override the ePID of a family (windows, office2010, office2013, office2016, office2019, ' +
      'office2021, office2024), repeatable; must have the ePID format',
  },
  'host-build': {
    type: 'string',
    arg: 'N',
    section: KMS,
    help: 'Windows build the ePIDs name (chosen at first start otherwise: one that fits the RPC flags and every CSVLK served)',
  },
  lcid: {
    type: 'string',
    arg: 'N',
    section: KMS,
    help: 'language id the ePIDs name (chosen at first start otherwise)',
  },
  hwid: {
    type: 'string',
    arg: 'HEX',
    section: KMS,
    help: 'the 16-hex-digit hardware id of V6 answers (random at first start)',
  },
  products: {
    type: 'string',
    arg: 'FILE',
    section: KMS,
    help: 'a products file merged over the built-in catalogue',
  },
  rules: {
    type: 'string',
    arg: 'FILE',
    section: KMS,
    help: 'fault-injection rules (JSON array); SIGHUP re-reads the file',
  },
  seed: {
    type: 'string',
    arg: 'VALUE',
    section: KMS,
    help: 'deterministic mode: every drawn value comes from this seed',
  },
  state: {
    type: 'string',
    arg: 'PATH|memory|postgres://USER@HOST:PORT/DB',
    section: STATE,
    help:
      'SQLite state file (default $XDG_STATE_HOME/kmslab/state.db or ~/.local/state/kmslab/state.db); ' +
      'memory keeps nothing; a postgres:// or postgresql:// URL (or postgres alone, for PGHOST, PGPORT, ' +
      'PGUSER, PGPASSWORD, PGDATABASE) keeps it in PostgreSQL, shared by every host pointed at it',
  },
  'state-wait': {
    type: 'string',
    arg: 'SECONDS',
    section: STATE,
    help: 'PostgreSQL state: wait this long for the database at start, then exit 78 (default 10)',
  },
  'history-days': {
    type: 'string',
    arg: 'N',
    section: STATE,
    help: 'keep request history this long (default 90)',
  },
  capture: {
    type: 'string',
    arg: 'FILE.pcap',
    section: STATE,
    help: 'record every connection as a classic pcap',
  },
  'pid-file': {
    type: 'string',
    arg: 'PATH',
    section: STATE,
    help:
      'write the id of the listening process here once it listens; removed at a clean stop ' +
      '(a stale file left by a crash is replaced)',
  },
  ...HTTP_OPTIONS,
  ...DNS_OPTIONS,
  'log-format': {
    type: 'string',
    arg: 'text|json',
    section: OUTPUT,
    help: 'one line per activation, readable or JSON (default text)',
  },
  quiet: { type: 'boolean', short: 'q', section: OUTPUT, help: 'only the banner, warnings and errors' },
  verbose: {
    type: 'boolean',
    short: 'v',
    section: OUTPUT,
    help: 'dump every field of each request and answer',
  },
  config: {
    type: 'string',
    arg: 'FILE.json',
    section: OUTPUT,
    help:
      'settings as JSON, keys named like the flags ("listen": [...], "no-ndr64": true, ' +
      '"counter": "charged"); flags win',
  },
  help: { type: 'boolean', short: 'h', section: OUTPUT, help: 'this help' },
} satisfies OptionSpec
