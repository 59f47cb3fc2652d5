import type { OptionSpec } from './args.js'

/** The words of a verb's --help around its option rows; the rows come from the parser's table. */
export interface HelpText {
  /** after "Usage: " */
  usage: string
  /** paragraphs, as written (line breaks kept) */
  intro: string
  /** positional arguments, listed before the options of their section */
  operands?: { arg: string; help: string; section?: string }[]
  /** a paragraph under a section's heading, before its rows */
  sectionNotes?: Record<string, string>
  /** a paragraph after the options, before the exit codes */
  notes?: string
  exitCodes: [code: number, meaning: string][]
  /** a sentence after the exit codes */
  exitNote?: string
}

const WIDTH = 100
/** Labels longer than this put their help on the next line. */
const MAX_LABEL = 25

/** Wraps each line of `text` at `width`; a line's leading spaces indent its continuations. */
export function wrap(text: string, width: number): string[] {
  const out: string[] = []
  for (const para of text.split('\n')) {
    const indent = /^ */.exec(para)![0]
    let line = ''
    for (const word of para.trim().split(/ +/)) {
      if (line !== '' && indent.length + line.length + 1 + word.length > width) {
        out.push(indent + line)
        line = word
      } else line = line === '' ? word : `${line} ${word}`
    }
    out.push(indent + line)
  }
  return out
}

/** How an option is written in --help: "-q, --quiet", "--listen HOST:PORT". */
export function optionLabel(name: string, row: OptionSpec[string]): string {
  const long = `--${name}${row.arg ? ` ${row.arg}` : ''}`
  return row.short ? `-${row.short}, ${long}` : long
}

/**
 * The --help of a verb. Sections come in the order the table first names them (operands first);
 * rows without a section join the first one.
 */
export function formatHelp(text: HelpText, options: OptionSpec): string {
  const rows: { section: string; label: string; help: string }[] = []
  for (const o of text.operands ?? []) rows.push({ section: o.section ?? '', label: o.arg, help: o.help })
  for (const [name, row] of Object.entries(options)) {
    rows.push({ section: row.section ?? '', label: optionLabel(name, row), help: row.help ?? '' })
  }
  const first = rows.find((r) => r.section !== '')?.section ?? ''
  for (const r of rows) if (r.section === '') r.section = first
  const sections = [...new Set(rows.map((r) => r.section))]
  const labelWidth = Math.min(MAX_LABEL, Math.max(0, ...rows.map((r) => r.label.length)))
  const column = 2 + labelWidth + 2
  const out = [`Usage: ${text.usage}`, '', text.intro.trimEnd(), '']
  for (const section of sections) {
    if (section !== '') out.push(`${section}:`)
    const note = text.sectionNotes?.[section]
    if (note) out.push(...wrap(note, WIDTH - 2).map((l) => `  ${l}`))
    for (const r of rows.filter((x) => x.section === section)) {
      const lines = wrap(r.help, WIDTH - column)
      const pad = ' '.repeat(column)
      if (r.label.length > labelWidth) out.push(`  ${r.label}`)
      else out.push(`  ${r.label.padEnd(labelWidth)}  ${lines.shift() ?? ''}`.trimEnd())
      out.push(...lines.map((l) => pad + l))
    }
    out.push('')
  }
  if (text.notes) out.push(...wrap(text.notes, WIDTH), '')
  const codes = text.exitCodes.map(([code, meaning]) => `${code} ${meaning}`).join(', ')
  out.push(...wrap(`Exit codes: ${codes}.${text.exitNote ? ` ${text.exitNote}` : ''}`, WIDTH), '')
  return out.join('\n')
}
