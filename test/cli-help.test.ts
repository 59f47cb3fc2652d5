// Every verb's --help is generated from the table its parser uses: each option is listed, with its
// short form and value placeholder, and no flag the parser does not know is mentioned.
import { Writable } from 'node:stream'
import t from 'tap'
import { optionLabel } from '../src/cli/help.js'
import { main } from '../src/cli/main.js'
import { verbs } from '../src/cli/verbs.js'

async function helpOf(verb: string): Promise<{ code: number; out: string }> {
  let out = ''
  const stream = new Writable({
    write(chunk, _enc, done) {
      out += String(chunk)
      done()
    },
  })
  const code = await main([verb, '--help'], { stdout: stream, stderr: stream, stderrIsTty: false })
  return { code, out }
}

for (const verb of verbs) {
  t.test(`kmslab ${verb.name} --help lists exactly the parser's options`, async (t) => {
    const options = verb.options
    if (!options) return t.fail(`${verb.name} has no option table`)
    const { code, out } = await helpOf(verb.name)
    t.equal(code, 0)
    t.equal(out, verb.help.endsWith('\n') ? verb.help : `${verb.help}\n`)
    t.match(out, new RegExp(`^Usage: kmslab ${verb.name}\\b`))
    t.match(out, /\nExit codes: 0 /)

    // the option rows: lines starting with a flag
    const rows = out
      .split('\n')
      .filter((l) => /^ {2}-/.test(l))
      .map((l) => l.trim().split(/ {2,}/)[0])
    const expected = Object.entries(options).map(([name, row]) => optionLabel(name, row))
    t.same(rows, expected, 'one row per option, in table order, with short form and placeholder')
    for (const [name, row] of Object.entries(options)) {
      t.ok(row.help && row.help.length > 0, `--${name} has help text`)
    }

    // no flag mentioned anywhere (rows, intro, notes) that the parser would refuse
    const mentioned = new Set([...out.matchAll(/(?<![\w-])--([a-z][a-z0-9-]*)/g)].map((m) => m[1]))
    for (const name of mentioned) t.ok(Object.hasOwn(options, name), `--${name} is in the table`)
    const shorts = new Set([...out.matchAll(/(?<![\w-])-([a-zA-Z])\b(?!-)/g)].map((m) => m[1]))
    const known = new Set(Object.values(options).map((r) => r.short))
    for (const s of shorts) {
      // vlmcs -v / vlmcsd -d are other programs' flags, named as such
      if (new RegExp(`vlmcsd? -${s}\\b`).test(out)) continue
      t.ok(known.has(s), `-${s} is in the table`)
    }
  })
}

t.test('decode --help names the exit code a bad products file really gets', async (t) => {
  const { out } = await helpOf('decode')
  t.match(out, /64 usage error or\s+unusable\s+products\s+file/)
  t.notMatch(out, /\b78\b/)
  const code = await main(['decode', '--products', '/nonexistent/products.json', 'x.pcap'], {
    stdout: new Writable({ write: (_c, _e, d) => d() }),
    stderr: new Writable({ write: (_c, _e, d) => d() }),
    stderrIsTty: false,
  })
  t.equal(code, 64)
})
