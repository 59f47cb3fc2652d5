import { ConfigError, KmslabError, UsageError } from '../errors.js'
import { type CliIo, processIo } from './args.js'
import { verbs } from './verbs.js'

export const EXIT_USAGE = 64
export const EXIT_CONFIG = 78

function mainHelp(): string {
  const width = Math.max(...verbs.map((v) => v.name.length))
  return [
    'kmslab: a Microsoft KMS protocol emulator for lab tests, CI and protocol research',
    '',
    'Usage: kmslab <verb> [options]',
    '',
    'Verbs:',
    ...verbs.map((v) => `  ${v.name.padEnd(width)}  ${v.summary}`),
    '',
    'Run `kmslab <verb> --help` for the options of a verb.',
    'Exit codes: 0 success, 64 usage error, 78 unusable configuration or state; verbs add their own.',
    '',
  ].join('\n')
}

/**
 * Every error the CLI reports is one line starting "kmslab VERB: ", whichever layer wrote it:
 * lower layers name the flag or file, the CLI adds the verb; line breaks (a file's raw text, a
 * list of candidates) are folded.
 */
export function oneLine(verb: string | undefined, message: string): string {
  const flat = message
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .join(' / ')
  if (flat.startsWith('kmslab ') || flat.startsWith('kmslab:')) return flat
  return `kmslab ${verb}: ${flat}`
}

export async function main(argv: string[], io: CliIo = processIo): Promise<number> {
  const [name, ...rest] = argv
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.stdout.write(mainHelp())
    return name === undefined ? EXIT_USAGE : 0
  }
  if (name === '--version') {
    io.stdout.write('kmslab 0.1.0\n')
    return 0
  }
  const verb = verbs.find((v) => v.name === name)
  try {
    if (!verb) throw new UsageError(`kmslab: unknown verb ${JSON.stringify(name)} (see kmslab --help)`)
    if (rest.includes('--help') || rest.includes('-h')) {
      io.stdout.write(verb.help.endsWith('\n') ? verb.help : `${verb.help}\n`)
      return 0
    }
    return await verb.run(rest, io)
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr.write(`${oneLine(name, err.message)}\n`)
      return EXIT_USAGE
    }
    if (err instanceof ConfigError) {
      io.stderr.write(`${oneLine(name, err.message)}\n`)
      return EXIT_CONFIG
    }
    if (err instanceof KmslabError) {
      io.stderr.write(`${oneLine(name, err.message)}\n`)
      return 1
    }
    io.stderr.write(`kmslab ${name}: internal error: ${(err as Error)?.stack ?? String(err)}\n`)
    return 70
  }
}
