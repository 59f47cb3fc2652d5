import { lookup } from 'node:dns/promises'
import { isIP } from 'node:net'
import { UsageError } from '../errors.js'
import type { ListenAddress } from '../server/server.js'

/**
 * Resolves with the reason the host should stop: SIGINT, SIGTERM, or its launcher gone.
 *
 * npx, npm exec and npm start run the bin through `sh -c`, and on SIGTERM npm signals that shell
 * only; dash does not pass the signal on, so `npx kmslab serve & kill $!` used to leave the host
 * running, a child of init, holding its port. Under npm (npm_command is set) the host therefore
 * also stops when the process that started it goes away.
 */
export function untilStopped(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  return new Promise((resolve) => {
    const parent = process.ppid
    const onInt = () => done('SIGINT')
    const onTerm = () => done('SIGTERM')
    const watch =
      env.npm_command !== undefined
        ? setInterval(() => {
            if (process.ppid !== parent) done(`the npm ${env.npm_command} that started the host is gone`)
          }, 200)
        : null
    function done(reason: string): void {
      process.off('SIGINT', onInt)
      process.off('SIGTERM', onTerm)
      if (watch) clearInterval(watch)
      resolve(reason)
    }
    process.once('SIGINT', onInt)
    process.once('SIGTERM', onTerm)
  })
}

/**
 * A --listen host that is a name must resolve, or the start is a usage error naming the flag and
 * the value (exit 64), not an unusable-state one.
 */
export async function checkListenHosts(addresses: ListenAddress[], texts: string[]): Promise<void> {
  for (const [i, a] of addresses.entries()) {
    if (isIP(a.host) !== 0) continue
    try {
      await lookup(a.host)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message
      throw new UsageError(
        `kmslab serve: --listen ${texts[i] ?? a.host}: ${JSON.stringify(a.host)} is neither an IP address nor a name that resolves (${code})`,
        'listen',
      )
    }
  }
}
