import { readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs'
import { ConfigError } from '../errors.js'

/**
 * The id of the process that listens, for scripts (`kill "$(cat FILE)"`), whatever launched it
 * (npx and npm run put a shell between themselves and the host). Written whole through a rename,
 * so a reader never sees half a number; a stale file left by a crash is simply replaced.
 */
export function writePidFile(path: string, pid = process.pid): void {
  const partial = `${path}.${pid}.tmp`
  try {
    writeFileSync(partial, `${pid}\n`)
    renameSync(partial, path)
  } catch (err) {
    try {
      unlinkSync(partial)
    } catch {}
    throw new ConfigError(
      `--pid-file ${path}: cannot be written (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      path,
    )
  }
}

/** Removes the file if it still names this process (another host may have taken it over since). */
export function removePidFile(path: string, pid = process.pid): void {
  try {
    if (readFileSync(path, 'utf8').trim() === String(pid)) unlinkSync(path)
  } catch {}
}
