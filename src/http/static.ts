/**
 * The dashboard's files, from the package's web/ folder found next to this module (src/http or
 * dist/http: both are two levels below the package root), so it works from a checkout, from
 * dist/ and from an installed package. Only plain files directly in web/ or below it are served.
 */
import { readFile, stat } from 'node:fs/promises'
import { extname, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'

export const WEB_ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'web')

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.woff2': 'font/woff2',
}

export interface StaticFile {
  body: Buffer
  type: string
}

/**
 * The file at `urlPath` (already percent-decoded, relative to web/), or null when there is none,
 * it is not a regular file, its type is not one we serve, or the path leaves web/.
 */
export async function staticFile(urlPath: string, root: string = WEB_ROOT): Promise<StaticFile | null> {
  if (urlPath.includes('\0')) return null
  const file = resolve(root, `.${sep}${urlPath}`)
  if (!file.startsWith(root + sep)) return null
  const type = TYPES[extname(file).toLowerCase()]
  if (!type) return null
  try {
    if (!(await stat(file)).isFile()) return null
    return { body: await readFile(file), type }
  } catch {
    return null
  }
}
