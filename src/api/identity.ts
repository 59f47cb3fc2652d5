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

/** The oldest host build that can hold every CSVLK the catalogue's families need. */
function newestFamilyNeed(catalog: Catalog): { build: number; family: string } {
  let need = { build: 0, family: '' }
  for (const f of catalog.epidFamilies) {
    // on a tie the later family (the newer product) is the one to name
    if ((f.minHostBuild ?? 0) >= need.build) need = { build: f.minHostBuild ?? 0, family: f.name }
  }
  return need
}

/**
 * A build that a genuine host with these RPC flags and these CSVLKs could run: NDR64 hosts are
 * Windows 8 / Server 2012 or later (§5.2), and each family's CSVLK needs a minimum build. When the
 * two cannot both hold (an NDR32-only host serving Office LTSC 2024), the RPC flavour wins: the
 * newest build of that flavour, and the banner says which families do not fit it.
 */
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
  const flavour = all.filter((b) => b.usesNdr64 === opts.ndr64)
  const pool = flavour.length > 0 ? flavour : all
  const need = newestFamilyNeed(catalog).build
  const fitting = pool.filter((b) => b.build >= need)
  if (fitting.length === 0) return pool[pool.length - 1]
  return fitting[randomInt(opts.random, 0, fitting.length)]
}

/** Why the host claims its build, and what about its identity a careful observer would doubt. */
export function explainIdentity(
  identity: HostIdentity,
  catalog: Catalog,
  ndr64: boolean,
): { text: string; problems: string[] } {
  const build = catalog.hostBuilds.find((b) => b.build === identity.hostBuild)
  const name = build ? `${build.name}` : 'a build the catalogue does not know'
  const problems: string[] = []
  if (build && build.usesNdr64 !== ndr64) {
    problems.push(
      `host build ${identity.hostBuild} (${name}) ${build.usesNdr64 ? 'offers' : 'lacks'} NDR64, but this host ${ndr64 ? 'offers' : 'lacks'} it: a genuine host's RPC and ePIDs agree`,
    )
  }
  const tooNew = catalog.epidFamilies.filter((f) => (f.minHostBuild ?? 0) > identity.hostBuild)
  if (tooNew.length > 0) {
    problems.push(
      `host build ${identity.hostBuild} is older than the CSVLKs of ${tooNew.map((f) => `${f.name} (needs ${f.minHostBuild}+)`).join(', ')} allow; ` +
        (ndr64 ? 'choose --host-build' : 'no NDR32-only Windows build can hold them'),
    )
  }
  for (const [family, epid] of Object.entries(identity.epids)) {
    const parts = parseEpid(epid)
    const f = catalog.epidFamilies.find((x) => x.id === family)
    if (!parts || !f) continue
    if (parts.groupId !== f.groupId || parts.keyId < f.minKeyId || parts.keyId > f.maxKeyId) {
      problems.push(
        `ePID ${family}: group ${parts.groupId}, key ${parts.keyId} is not ${f.name}'s CSVLK (group ${f.groupId}, keys ${f.minKeyId}-${f.maxKeyId})`,
      )
    }
    if (parts.build !== identity.hostBuild) {
      problems.push(`ePID ${family} names build ${parts.build}, the other ePIDs ${identity.hostBuild}`)
    }
  }
  const need = newestFamilyNeed(catalog)
  const text =
    `host build ${identity.hostBuild} (${name}): ${ndr64 ? 'offers' : 'lacks'} NDR64 like this host` +
    (need.build > 0 && identity.hostBuild >= need.build
      ? `, and can hold every CSVLK served, up to ${need.family} (build ${need.build} or later)`
      : '')
  return { text, problems }
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
      throw new UsageError(`--epid ${family}=${epid}: unknown family (known: ${known})`, 'epid')
    }
    if (!parseEpid(epid)) {
      throw new UsageError(
        `--epid ${family}=${epid}: not an ePID (PPPPP-GGGGG-KKK-KKKKKK-CC-LCID-BUILD.0000-DDDYYYY, e.g. 03612-00206-556-123727-03-1033-17763.0000-2972018)`,
        'epid',
      )
    }
    epids[family] = epid
  }
  return { ...identity, epids, hwid: opts.hwid ? parseHwid(opts.hwid) : identity.hwid }
}

export function hwidBytes(identity: HostIdentity): Uint8Array {
  return fromHex(identity.hwid)
}
