/** `kmslab bench .DOMAIN`: the hosts of the domain's SRV answer with their addresses, as activate finds them. */
import { discoverHosts, srvName, systemAddresses, systemResolver } from '../client/discover.js'
import { serverResolver } from '../client/server-resolver.js'
import { cryptoRandom } from '../crypto/random.js'
import type { BenchTarget } from '../load/bench.js'

/**
 * With `dnsServer`, the SRV records and the targets' addresses all come from it; else from the
 * system resolver. A target whose addresses cannot be found is left out (the others carry the load).
 */
export async function discoverBenchTargets(
  domain: string,
  dnsServer: string | undefined,
  timeoutMs: number,
): Promise<{ name: string; targets: BenchTarget[] }> {
  const lab = dnsServer ? serverResolver(dnsServer, timeoutMs, cryptoRandom) : null
  const records = await discoverHosts(
    domain,
    lab?.resolveSrv ?? systemResolver(undefined, timeoutMs),
    cryptoRandom,
  )
  const resolveAddresses = lab?.resolveAddresses ?? systemAddresses
  const targets = await Promise.all(
    records.map(async (r) => ({
      ...r,
      addresses: r.addresses?.length ? r.addresses : await resolveAddresses(r.name).catch(() => []),
    })),
  )
  return { name: srvName(domain), targets }
}
