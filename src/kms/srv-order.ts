// The order a KMS client tries the hosts of a `_vlmcs._tcp` SRV answer in (RFC 2782, §8): protocol
// logic without I/O, shared by the verifying client and the load generator.
import type { RandomSource } from '../crypto/random.js'
import { randomInt } from './epid.js'

export interface SrvRecord {
  /** Target host name. */
  name: string
  port: number
  priority: number
  weight: number
  /** The target's addresses when the answer carried them (its additional section). */
  addresses?: string[]
}

/**
 * RFC 2782 selection: groups by ascending priority; in each group, repeatedly pick a record with
 * probability weight / (sum of remaining weights), zero-weight records having a small chance
 * (they are put first and win only a draw of exactly 0).
 */
export function orderSrvRecords<T extends SrvRecord>(records: readonly T[], random: RandomSource): T[] {
  const priorities = [...new Set(records.map((r) => r.priority))].sort((a, b) => a - b)
  const out: T[] = []
  for (const p of priorities) {
    const group = records.filter((r) => r.priority === p)
    let left = [...group.filter((r) => r.weight === 0), ...group.filter((r) => r.weight > 0)]
    while (left.length > 0) {
      const total = left.reduce((n, r) => n + r.weight, 0)
      const draw = randomInt(random, 0, total + 1)
      let sum = 0
      const i = left.findIndex((r) => {
        sum += r.weight
        return sum >= draw
      })
      out.push(left[i])
      left = left.filter((_, j) => j !== i)
    }
  }
  return out
}
