import { readFileSync } from 'node:fs'
import { UsageError } from '../errors.js'
import { parseHresult } from '../kms/hresult.js'
import { ANSWER_CORRUPTIONS, type AnswerCorruption } from '../kms/response.js'
import { type Cidr, matches, parseCidr } from '../server/cidr.js'
import { isGuid } from '../wire/bytes.js'

/**
 * A fault-injection rule: when every given `match` field fits a request, `action` changes what the
 * host sends back. Rules are tried in order and only the first match applies; its name goes into
 * the request's history row (`rules`). Without `match`, a rule matches every request.
 */
export interface FaultRule {
  name?: string
  match?: RuleMatch
  action: RuleAction
}

export interface RuleMatch {
  appId?: string
  kmsId?: string
  skuId?: string
  cmid?: string
  /** Case-insensitive; `*` matches any run of characters. */
  workstation?: string
  /** An address or a CIDR network. */
  client?: string
  /** The request's major version (4, 5, 6; a probing client may send others). */
  protocol?: number
  /** The n-th KMS request since the host started (1-based; every request counts, matched or not). */
  nth?: number
  /** The n-th KMS request on its connection (1-based). */
  nthOnConnection?: number
}

/**
 * What a matching rule does. At most one of `refuse`, `fault` and `close: 'before'` (the host then
 * sends no KMS answer and does not count the client); `count` and `corrupt` change an answer, so
 * they go with none of those. `delayMs`, `close: 'after'` and `truncate` shape whatever is sent.
 */
export interface RuleAction {
  /** Refuse with this HRESULT (a number or "0xC004F042"); 0 sends a NULL answer with HRESULT 0. */
  refuse?: number | string
  /** Report this count instead of the counter's (the client is still counted). */
  count?: number
  /** Wait this long before sending (or closing). */
  delayMs?: number
  /** Answer with an RPC FAULT of this NCA status (a number or "0x1C010003"). */
  fault?: number | string
  /** Answer the BIND with BIND_NAK (matched on `client` only: nothing else is known at bind time). */
  rejectBind?: boolean
  /** Close the connection instead of answering ('before'), or right after the answer ('after'). */
  close?: 'before' | 'after'
  /**
   * Send only the first half of the RESPONSE PDU (its header still announces the whole): the
   * client waits for the rest until its timeout, or sees the connection close with `close: 'after'`.
   */
  truncate?: boolean
  /** Break one field of a valid answer, so that exactly one client check fails (see AnswerCorruption). */
  corrupt?: AnswerCorruption
}

/** A rule checked and normalised: numbers parsed, GUIDs lower-cased, networks parsed. */
export interface CompiledRule {
  name: string
  rule: FaultRule
  client: Cidr | null
  workstation: RegExp | null
  refuse?: number
  fault?: number
}

export interface RequestFacts {
  appId: string
  kmsId: string
  skuId: string
  cmid: string
  workstation: string
  client: string
  protocol: number
  nth: number
  nthOnConnection: number
}

const MATCH_KEYS = [
  'appId',
  'kmsId',
  'skuId',
  'cmid',
  'workstation',
  'client',
  'protocol',
  'nth',
  'nthOnConnection',
]
const ACTION_KEYS = ['refuse', 'count', 'delayMs', 'fault', 'rejectBind', 'close', 'truncate', 'corrupt']

/** A value for an error message; rules given through the API may hold anything (a BigInt, a Symbol). */
function show(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value)
  } catch {
    return typeof value === 'bigint' ? `${value}n` : Object.prototype.toString.call(value)
  }
}

function fail(where: string, field: string, message: string): never {
  throw new UsageError(`${where}: ${field}: ${message}`, field)
}

function code(where: string, field: string, value: unknown): number {
  const n = typeof value === 'number' ? value : typeof value === 'string' ? parseHresult(value) : null
  if (n === null || !Number.isInteger(n) || n < 0 || n > 0xffffffff)
    fail(where, field, `not a 32-bit code: ${show(value)}`)
  return n >>> 0
}

function wholeNumber(where: string, field: string, value: unknown, min: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    fail(where, field, `must be a whole number >= ${min}, got ${show(value)}`)
  }
  return value
}

/** Checks rules given as data (API objects or a parsed JSON file); `source` names them in errors. */
export function compileRules(input: unknown, source = 'rules'): CompiledRule[] {
  if (!Array.isArray(input)) fail(source, 'rules', 'must be a JSON array of rules')
  return input.map((raw, index) => {
    const where = `${source}: rule #${index + 1}`
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
      fail(where, 'rule', 'must be an object')
    const rule = raw as FaultRule
    for (const k of Object.keys(rule))
      if (!['name', 'match', 'action'].includes(k)) fail(where, k, 'unknown field')
    if (rule.name !== undefined && typeof rule.name !== 'string') fail(where, 'name', 'must be a string')
    const m = (rule.match ?? {}) as Record<string, unknown>
    if (typeof m !== 'object' || Array.isArray(m)) fail(where, 'match', 'must be an object')
    for (const k of Object.keys(m)) if (!MATCH_KEYS.includes(k)) fail(where, `match.${k}`, 'unknown field')
    for (const k of ['appId', 'kmsId', 'skuId', 'cmid']) {
      if (m[k] !== undefined && (typeof m[k] !== 'string' || !isGuid(m[k] as string)))
        fail(where, `match.${k}`, 'not a GUID')
    }
    if (m.workstation !== undefined && typeof m.workstation !== 'string')
      fail(where, 'match.workstation', 'must be a string')
    if (m.protocol !== undefined) {
      wholeNumber(where, 'match.protocol', m.protocol, 0)
      if ((m.protocol as number) > 0xffff) fail(where, 'match.protocol', 'must be at most 65535')
    }
    if (m.nth !== undefined) wholeNumber(where, 'match.nth', m.nth, 1)
    if (m.nthOnConnection !== undefined) wholeNumber(where, 'match.nthOnConnection', m.nthOnConnection, 1)
    let client: Cidr | null = null
    if (m.client !== undefined) {
      if (typeof m.client !== 'string') fail(where, 'match.client', 'must be an address or CIDR')
      try {
        client = parseCidr(m.client)
      } catch {
        fail(where, 'match.client', `not an address or CIDR: ${show(m.client)}`)
      }
    }
    const a = rule.action as unknown as Record<string, unknown>
    if (typeof a !== 'object' || a === null || Array.isArray(a)) fail(where, 'action', 'must be an object')
    const keys = Object.keys(a)
    for (const k of keys) if (!ACTION_KEYS.includes(k)) fail(where, `action.${k}`, 'unknown action')
    if (keys.length === 0) fail(where, 'action', 'names no action')
    const compiled: CompiledRule = {
      name: rule.name ?? `rule #${index + 1}`,
      rule,
      client,
      workstation:
        typeof m.workstation === 'string'
          ? new RegExp(
              `^${m.workstation
                .split('*')
                .map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
                .join('.*')}$`,
              'i',
            )
          : null,
    }
    if (a.refuse !== undefined) compiled.refuse = code(where, 'action.refuse', a.refuse)
    if (a.fault !== undefined) compiled.fault = code(where, 'action.fault', a.fault)
    if (a.count !== undefined) wholeNumber(where, 'action.count', a.count, 0)
    if (a.delayMs !== undefined) wholeNumber(where, 'action.delayMs', a.delayMs, 0)
    if (a.close !== undefined && a.close !== 'before' && a.close !== 'after')
      fail(where, 'action.close', 'must be "before" or "after"')
    if (a.truncate !== undefined && typeof a.truncate !== 'boolean')
      fail(where, 'action.truncate', 'must be true or false')
    if (a.rejectBind !== undefined && typeof a.rejectBind !== 'boolean')
      fail(where, 'action.rejectBind', 'must be true or false')
    if (a.corrupt !== undefined && !ANSWER_CORRUPTIONS.includes(a.corrupt as AnswerCorruption)) {
      fail(where, 'action.corrupt', `must be one of ${ANSWER_CORRUPTIONS.join(', ')}`)
    }
    const sendsNothing = ['refuse', 'fault'].filter((k) => a[k] !== undefined)
    if (a.close === 'before') sendsNothing.push('close: "before"')
    if (sendsNothing.length > 1) fail(where, 'action', `${sendsNothing.join(' and ')} exclude each other`)
    if (sendsNothing.length > 0) {
      for (const k of ['count', 'corrupt'])
        if (a[k] !== undefined)
          fail(where, `action.${k}`, `changes an answer, but ${sendsNothing[0]} sends none`)
    }
    if (a.truncate && (a.fault !== undefined || a.close === 'before'))
      fail(where, 'action.truncate', 'only an answer or a refusal can be cut short')
    if (a.rejectBind && keys.length > 1)
      fail(where, 'action', 'rejectBind cannot be combined with other actions')
    if (a.rejectBind && Object.keys(m).some((k) => k !== 'client')) {
      fail(where, 'match', 'a rejectBind rule can only match on client: nothing else is known at bind time')
    }
    return compiled
  })
}

export function loadRulesFile(path: string): CompiledRule[] {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new UsageError(
      `rules file ${path}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    )
  }
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch (err) {
    throw new UsageError(`rules file ${path}: not JSON: ${(err as Error).message}`)
  }
  return compileRules(data, `rules file ${path}`)
}

const lower = (s: string | undefined) => s?.toLowerCase()

/** The first request rule that matches, or null (bind rules never match a request). */
export function matchRequestRule(rules: readonly CompiledRule[], facts: RequestFacts): CompiledRule | null {
  for (const r of rules) {
    if (r.rule.action.rejectBind) continue
    const m = r.rule.match ?? {}
    if (m.appId && lower(m.appId) !== facts.appId) continue
    if (m.kmsId && lower(m.kmsId) !== facts.kmsId) continue
    if (m.skuId && lower(m.skuId) !== facts.skuId) continue
    if (m.cmid && lower(m.cmid) !== facts.cmid) continue
    if (r.workstation && !r.workstation.test(facts.workstation)) continue
    if (r.client && !matches(facts.client, r.client)) continue
    if (m.protocol !== undefined && m.protocol !== facts.protocol) continue
    if (m.nth !== undefined && m.nth !== facts.nth) continue
    if (m.nthOnConnection !== undefined && m.nthOnConnection !== facts.nthOnConnection) continue
    return r
  }
  return null
}

export function matchBindRule(rules: readonly CompiledRule[], client: string): CompiledRule | null {
  return rules.find((r) => r.rule.action.rejectBind && (!r.client || matches(client, r.client))) ?? null
}
