// `kmslab serve --workers N`, the primary's side: one banner (once every worker listens), the one
// HTTP port and DNS publication, a line when a worker dies and is replaced, and a graceful stop of
// every worker on SIGINT/SIGTERM.
import { startPrimary } from '../api/cluster.js'
import type { KmsHost } from '../api/host.js'
import type { HostOptions } from '../api/options.js'
import { resolveCounterMode } from '../api/options.js'
import { defaultCatalog, loadCatalog } from '../catalog/index.js'
import { ConfigError } from '../errors.js'
import { HttpListenError } from '../index.js'
import type { ListenAddress } from '../server/server.js'
import { banner } from './serve-banner.js'
import { startPublishing } from './serve-dns.js'
import type { ServeLog } from './serve-log.js'

type DnsValues = Parameters<typeof startPublishing>[1]

export async function runPrimary(
  options: HostOptions,
  workers: number,
  log: ServeLog,
  dns: DnsValues,
): Promise<number> {
  let addresses: ListenAddress[] = []
  const primary = await startPrimary(options, workers, {
    listening: (info) => {
      addresses = info.addresses
      // what the banner names, as the first worker reported it
      const host = {
        addresses: info.addresses,
        identity: info.identity,
        stateLocation: info.location,
        seeded: options.seed !== undefined,
        catalog: options.products ? loadCatalog({ extraFile: options.products }) : defaultCatalog(),
        httpUrl: info.httpUrl,
        pools: { mode: resolveCounterMode(options.counter), read: () => ({}) },
      } as unknown as KmsHost
      banner(host, log, options)
      log.always('workers', `${workers} worker processes`, { workers })
    },
    workerDied: (pid, how) => log.warn('worker', `worker ${pid} died (${how}); starting another`, { pid }),
    storeError: (e) => log.error('store', `${e.message}: the client was refused, nothing was answered`),
  })
  const signal = new Promise<string>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'))
    process.once('SIGTERM', () => resolve('SIGTERM'))
  })
  let published: Awaited<ReturnType<typeof startPublishing>> = null
  const started = primary.ready.then(async () => {
    // what DNS publishes is the listen addresses, which every worker shares
    published = await startPublishing({ addresses } as KmsHost, dns, log)
  })
  let outcome: number | string
  try {
    outcome = await Promise.race([primary.failed, started.then(() => signal)])
  } catch (err) {
    await primary.stop()
    if (err instanceof HttpListenError) throw new ConfigError(`kmslab serve: ${err.message}`)
    throw err
  }
  if (typeof outcome === 'number') return outcome
  log.always('stopping', `${outcome}: stopping`)
  await (published as Awaited<ReturnType<typeof startPublishing>>)?.close()
  await primary.stop()
  log.always('stopped', 'stopped')
  return 0
}
