import type { Catalog, HostBuild } from '../catalog/types.js'
import type { RandomSource } from '../crypto/random.js'
import { UsageError } from '../errors.js'
import { generateEpid, HOST_LCIDS, parseEpid, randomInt } from '../kms/epid.js'
import type { HostIdentity, StateStore } from '../store/types.js'
import { fromHex, toHex } from '../wire/bytes.js'

export interface IdentityOptions {
  random: RandomSource
  /** ms: the latest date a new ePID may carry. */
  now: number
  ndr64: boolean
  hostBuild?: number
  lcid?: number
  /** family -> ePID, for this run (not stored). */
  epids?: Record<string, string>
  /** 16 hex digits, for this run (not stored). */
  hwid?: string
}

const day = (ymd: string | undefined) => (ymd ? Date.parse(`${ymd}T00:00:00Z`) : 0)

/**
 * The host's identity: kept in the state from the first start so the ePIDs and HWID never change
 * across restarts, like a genuine host's. One host build and LCID for all families; the build
 * matches the RPC behaviour (NDR64 hosts are Windows 8 / Server 2012 or later, §5.2).
 */
export function loadOrCreateIdentity(
  store: StateStore,
  catalog: Catalog,
  opts: IdentityOptions,
): HostIdentity {
  let identity = store.loadIdentity()
  const missing = identity ? catalog.epidFamilies.filter((f) => !identity!.epids[f.id]) : []
  if (!identity || missing.length > 0) {
    identity = createIdentity(catalog, opts, identity)
    store.saveIdentity(identity)
  }
  return applyOverrides(identity, catalog, opts)
}

/**
 * The identity of a host whose state is shared: the first host's candidate is stored, every
 * other host reads the stored one (the store decides, in one statement), then this run's overrides.
 */
export async function claimSharedIdentity(
  store: {
    loadIdentity(): Promise<HostIdentity | null>
    claimIdentity(c: HostIdentity): Promise<HostIdentity>
  },
  catalog: Catalog,
  opts: IdentityOptions,
): Promise<HostIdentity> {
  let identity = await store.loadIdentity()
  if (!identity || catalog.epidFamilies.some((f) => !identity!.epids[f.id])) {
    identity = await store.claimIdentity(createIdentity(catalog, opts, identity))
  }
  return applyOverrides(identity, catalog, opts)
}

function pickBuild(catalog: Catalog, opts: IdentityOptions): HostBuild {
  const all = catalog.epidBuilds
  if (opts.hostBuild !== undefined) {
    const b = catalog.hostBuilds.find((x) => x.build === opts.hostBuild)
    if (!b)
      throw new UsageError(
        `--host-build ${opts.hostBuild}: not a Windows build the catalogue knows`,
        'host-build',
      )
    return b
  }
  const fitting = all.filter((b) => b.usesNdr64 === opts.ndr64)
  const pool = fitting.length > 0 ? fitting : all
  return pool[randomInt(opts.random, 0, pool.length)]
}

function createIdentity(
  catalog: Catalog,
  opts: IdentityOptions,
  previous: HostIdentity | null,
): HostIdentity {
  const build = previous
    ? (catalog.hostBuilds.find((b) => b.build === previous.hostBuild) ?? pickBuild(catalog, opts))
    : pickBuild(catalog, opts)
  const lcid = previous?.lcid ?? opts.lcid ?? HOST_LCIDS[randomInt(opts.random, 0, HOST_LCIDS.length)]
  const epids: Record<string, string> = { ...previous?.epids }
  for (const family of catalog.epidFamilies) {
    if (epids[family.id]) continue
    epids[family.id] = generateEpid(
      {
        groupId: family.groupId,
        minKeyId: family.minKeyId,
        maxKeyId: family.maxKeyId,
        releaseDate: day(family.releaseDate),
      },
      { build: build.build, platformId: build.platformId, releaseDate: day(build.releaseDate) },
      lcid,
      opts.now,
      opts.random,
    )
  }
  return {
    epids,
    hwid: previous?.hwid ?? toHex(opts.random(8)).toUpperCase(),
    hostBuild: build.build,
    lcid,
    createdAt: previous?.createdAt ?? opts.now,
  }
}

export function parseHwid(text: string): string {
  const clean = text.replace(/[\s:-]/g, '')
  if (!/^[0-9a-fA-F]{16}$/.test(clean))
    throw new UsageError(`--hwid: needs 16 hex digits, got ${JSON.stringify(text)}`, 'hwid')
  return clean.toUpperCase()
}

function applyOverrides(identity: HostIdentity, catalog: Catalog, opts: IdentityOptions): HostIdentity {
  const epids = { ...identity.epids }
  for (const [family, epid] of Object.entries(opts.epids ?? {})) {
    if (!catalog.epidFamilies.some((f) => f.id === family)) {
      const known = catalog.epidFamilies.map((f) => f.id).join(', ')
      throw new UsageError(`--epid ${family}=...: unknown family (known: ${known})`, 'epid')
    }
    if (!parseEpid(epid) && (epid.length === 0 || epid.length > 63)) {
      throw new UsageError(`--epid ${family}: an ePID is 1 to 63 characters, got ${epid.length}`, 'epid')
    }
    epids[family] = epid
  }
  return { ...identity, epids, hwid: opts.hwid ? parseHwid(opts.hwid) : identity.hwid }
}

export function hwidBytes(identity: HostIdentity): Uint8Array {
  return fromHex(identity.hwid)
}
