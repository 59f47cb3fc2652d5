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
 * node:util parseArgs, strict, with every failure turned into a one-line UsageError naming the
 * verb, so each verb reports unknown flags and missing values the same way (exit 64).
 */
export function parseCliArgs<T extends OptionSpec>(verb: string, argv: string[], options: T): ParsedArgs<T> {
  try {
    const r = parseArgs({ args: argv, options, strict: true, allowPositionals: true })
    return r as unknown as ParsedArgs<T>
  } catch (err) {
    const msg = (err as Error).message.split('\n')[0].replace(/\. To specify a positional.*$/, '')
    throw new UsageError(`kmslab ${verb}: ${msg} (see kmslab ${verb} --help)`)
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
