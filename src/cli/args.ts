import { parseArgs } from 'node:util'
import { UsageError } from '../errors.js'

export type OptionSpec = Record<
  string,
  {
    type: 'string' | 'boolean'
    short?: string
    multiple?: boolean
    default?: string | boolean | string[]
    /** the value's placeholder in --help (HOST:PORT); the help text is generated from the table */
    arg?: string
    /** what the option does, for --help */
    help?: string
    /** the --help section the option is listed under */
    section?: string
  }
>

export interface ParsedArgs<T extends OptionSpec> {
  values: {
    [K in keyof T]?: T[K]['type'] extends 'boolean'
      ? boolean
      : T[K]['multiple'] extends true
        ? string[]
        : string
  }
  positionals: string[]
}

/**
 * A negative number after an option that takes a value (`--history-days -3`) is that value, so its
 * own check reports it ("must be between 1 and 36500, got -3") instead of node's "ambiguous".
 */
function joinNegativeValues(argv: string[], options: OptionSpec): string[] {
  const takesValue = new Set<string>()
  for (const [name, row] of Object.entries(options)) {
    if (row.type !== 'string') continue
    takesValue.add(`--${name}`)
    if (row.short) takesValue.add(`-${row.short}`)
  }
  const out: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]
    const next = argv[i + 1]
    if (word === '--') {
      out.push(...argv.slice(i))
      break
    }
    if (takesValue.has(word) && next !== undefined && /^-\d/.test(next)) {
      out.push(word.startsWith('--') ? `${word}=${next}` : `${word}${next}`)
      i++
    } else out.push(word)
  }
  return out
}

/** node's parseArgs messages, said once, on one line, naming the option. */
function usageMessage(err: Error, argv: string[]): string {
  const first = err.message.split('\n')[0]
  const ambiguous = /^Option '(?:-\w, )?(--[\w-]+)(?: <value>)?' argument is ambiguous/.exec(first)
  if (ambiguous) {
    const flag = ambiguous[1]
    const at = argv.findIndex((w) => w === flag || w.startsWith(`${flag}=`))
    const next = at >= 0 ? argv[at + 1] : undefined
    return `${flag} needs a value, but the next word ${JSON.stringify(next ?? '')} looks like an option (write ${flag}=${next ?? 'VALUE'} if it is the value)`
  }
  const missing = /^Option '(?:-\w, )?(--[\w-]+)(?: <value>)?' argument missing/.exec(first)
  if (missing) return `${missing[1]} needs a value`
  return first.replace(/\. To specify a positional.*$/, '')
}

/**
 * node:util parseArgs, strict, with every failure turned into a one-line UsageError naming the
 * verb, so each verb reports unknown flags and missing values the same way (exit 64).
 */
export function parseCliArgs<T extends OptionSpec>(verb: string, argv: string[], options: T): ParsedArgs<T> {
  const args = joinNegativeValues(argv, options)
  try {
    const r = parseArgs({ args, options, strict: true, allowPositionals: true })
    return r as unknown as ParsedArgs<T>
  } catch (err) {
    throw new UsageError(`kmslab ${verb}: ${usageMessage(err as Error, args)} (see kmslab ${verb} --help)`)
  }
}

/** Parses an integer option within [min, max], or throws a UsageError naming the option. */
export function intOption(
  verb: string,
  name: string,
  text: string | undefined,
  min: number,
  max: number,
): number | undefined {
  if (text === undefined) return undefined
  if (!/^-?\d+$/.test(text.trim()))
    throw new UsageError(`kmslab ${verb}: --${name} takes a whole number, got ${JSON.stringify(text)}`, name)
  const n = Number(text)
  if (n < min || n > max)
    throw new UsageError(`kmslab ${verb}: --${name} must be between ${min} and ${max}, got ${n}`, name)
  return n
}

/** Where a verb writes: injectable so tests can run verbs in-process. */
export interface CliIo {
  stdout: NodeJS.WritableStream
  stderr: NodeJS.WritableStream
  stderrIsTty: boolean
}

export const processIo: CliIo = {
  stdout: process.stdout,
  stderr: process.stderr,
  stderrIsTty: Boolean(process.stderr.isTTY),
}

/** A verb: parse `argv` (the words after the verb), do the work, return the exit code. */
export interface Verb {
  name: string
  summary: string
  /** generated from `options` and the verb's HelpText (formatHelp) */
  help: string
  /** the parser's table, which --help lists row by row */
  options?: OptionSpec
  run(argv: string[], io: CliIo): Promise<number>
}
