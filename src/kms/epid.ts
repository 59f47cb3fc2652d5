import type { RandomSource } from '../crypto/random.js'

/** The parts of an ePID `PPPPP-GGGGG-KKK-KKKKKK-CC-LLLL-BBBBB.0000-DDDYYYY` (§5.1). */
export interface EpidParts {
  platformId: number
  groupId: number
  keyId: number
  channel: number
  lcid: number
  build: number
  dayOfYear: number
  year: number
}

const EPID_RE = /^(\d{5})-(\d{5})-(\d{3})-(\d{6})-(\d{2})-(\d{1,5})-(\d{1,6})\.0000-(\d{3})(\d{4})$/

export function formatEpid(p: EpidParts): string {
  const pad = (n: number, w: number) => String(n).padStart(w, '0')
  return (
    `${pad(p.platformId, 5)}-${pad(p.groupId, 5)}-${pad(Math.floor(p.keyId / 1e6), 3)}-${pad(p.keyId % 1e6, 6)}` +
    `-${pad(p.channel, 2)}-${p.lcid}-${p.build}.0000-${pad(p.dayOfYear, 3)}${pad(p.year, 4)}`
  )
}

/** The parts of a well-formed ePID, or null. Day of year must be 1..366 (Microsoft's 1-based form). */
export function parseEpid(text: string): EpidParts | null {
  const m = EPID_RE.exec(text)
  if (!m) return null
  const parts: EpidParts = {
    platformId: Number(m[1]),
    groupId: Number(m[2]),
    keyId: Number(m[3]) * 1e6 + Number(m[4]),
    channel: Number(m[5]),
    lcid: Number(m[6]),
    build: Number(m[7]),
    dayOfYear: Number(m[8]),
    year: Number(m[9]),
  }
  if (parts.dayOfYear < 1 || parts.dayOfYear > 366) return null
  return parts
}

/** A CSVLK to draw an ePID from: group id and key-id range (min inclusive, max exclusive). */
export interface EpidKeySource {
  groupId: number
  minKeyId: number
  maxKeyId: number
  /** ms since epoch: the ePID's activation date is never before this. */
  releaseDate: number
}

export interface EpidHostBuild {
  build: number
  platformId: number
  releaseDate: number
}

/** Uniform integer in [min, max) from a random source (rejection sampling over 48 bits). */
export function randomInt(random: RandomSource, min: number, max: number): number {
  const span = max - min
  if (span <= 1) return min
  const limit = 2 ** 48 - (2 ** 48 % span)
  for (;;) {
    const b = random(6)
    const n = b[0] * 2 ** 40 + b[1] * 2 ** 32 + b[2] * 2 ** 24 + b[3] * 2 ** 16 + b[4] * 2 ** 8 + b[5]
    if (n < limit) return min + (n % span)
  }
}

/**
 * One ePID as a genuine host of `build` with this CSVLK would show it: a key id in the CSVLK's
 * range and an activation date between the later of the two release dates and `now`.
 */
export function generateEpid(
  key: EpidKeySource,
  build: EpidHostBuild,
  lcid: number,
  now: number,
  random: RandomSource,
): string {
  const from = Math.max(key.releaseDate, build.releaseDate)
  const at = new Date(from < now ? randomInt(random, from, now) : now)
  const year = at.getUTCFullYear()
  const dayOfYear = Math.floor((at.getTime() - Date.UTC(year, 0, 1)) / 86_400_000) + 1
  return formatEpid({
    platformId: build.platformId,
    groupId: key.groupId,
    keyId: randomInt(random, key.minKeyId, key.maxKeyId),
    channel: 3,
    lcid,
    build: build.build,
    dayOfYear,
    year,
  })
}

/** Valid Windows LCIDs a host is plausibly installed in (a subset of Microsoft's list). */
export const HOST_LCIDS = [
  1025, 1026, 1027, 1028, 1029, 1030, 1031, 1032, 1033, 1035, 1036, 1037, 1038, 1040, 1041, 1042, 1043, 1044,
  1045, 1046, 1048, 1049, 1050, 1051, 1053, 1054, 1055, 1057, 1058, 1060, 1061, 1062, 1063, 1066, 1081, 1086,
  2052, 2057, 2070, 2074, 3076, 3082, 4105, 10249,
] as const
