// `kmslab serve --workers N`, the primary's side: one banner (from the first worker that listens),
// a line when a worker dies and is replaced, and a graceful stop of every worker on SIGINT/SIGTERM.
import { startPrimary } from '../api/cluster.js'
import type { KmsHost } from '../api/host.js'
import type { HostOptions } from '../api/options.js'
import { resolveCounterMode } from '../api/options.js'
import { defaultCatalog, loadCatalog } from '../catalog/index.js'
import { banner } from './serve-banner.js'
import type { ServeLog } from './serve-log.js'

export async function runPrimary(options: HostOptions, workers: number, log: ServeLog): Promise<number> {
  const primary = await startPrimary(options, workers, {
    listening: (info) => {
      // what the banner names, as the first worker reported it
      const host = {
        addresses: info.addresses,
        identity: info.identity,
        stateLocation: info.location,
        seeded: options.seed !== undefined,
        catalog: options.products ? loadCatalog({ extraFile: options.products }) : defaultCatalog(),
        httpUrl: null,
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
  const outcome = await Promise.race([primary.failed, primary.ready.then(() => signal)])
  if (typeof outcome === 'number') return outcome
  log.always('stopping', `${outcome}: stopping`)
  await primary.stop()
  log.always('stopped', 'stopped')
  return 0
}
