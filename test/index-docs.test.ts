// The README's library example is test/readme-example.test.ts itself, so it cannot drift: the
// code block after the marker in README.md must be the test file byte for byte.
import { readFileSync } from 'node:fs'
import t from 'tap'

const root = new URL('../', import.meta.url)
const EXAMPLE = 'test/readme-example.test.ts'
const MARKER = `<!-- readme-example: ${EXAMPLE} -->`

/** The fenced block right after the marker, or null when the document has no marker. */
function exampleBlock(markdown: string): string | null {
  const at = markdown.indexOf(MARKER)
  if (at < 0) return null
  const open = '\n```ts\n'
  const start = markdown.indexOf(open, at)
  if (start !== at + MARKER.length) throw new Error(`${MARKER} must be followed by a \`\`\`ts block`)
  const body = start + open.length
  const end = markdown.indexOf('\n```\n', body - 1)
  if (end < 0) throw new Error('the example block is not closed')
  return markdown.slice(body, end + 1)
}

t.test('the documented example is the test file, byte for byte', async (t) => {
  const example = readFileSync(new URL(EXAMPLE, root), 'utf8')
  const block = exampleBlock(readFileSync(new URL('README.md', root), 'utf8'))
  t.equal(block, example, `README.md shows ${EXAMPLE} as it is`)
})

t.test('the example imports the package by its name, as a user would', async (t) => {
  const example = readFileSync(new URL(EXAMPLE, root), 'utf8')
  t.match(example, /^import \{[^}]*\bstartHost\b[^}]*\} from 'kmslab'$/m)
  t.notMatch(example, /from '\.\.?\//, 'no relative imports')
})
