import { randomFillSync } from 'node:crypto'
import { CryptoError } from './errors.js'
import { sha256 } from './kms-crypto.js'

/** Returns `length` fresh bytes. The caller owns the returned array. */
export type RandomSource = (length: number) => Uint8Array

function checkLength(length: number): void {
  if (!Number.isSafeInteger(length) || length < 0) {
    throw new CryptoError(`random length must be a non-negative integer, got ${length}`)
  }
}

const POOL_SIZE = 4096
const pool = new Uint8Array(POOL_SIZE)
let poolPos = POOL_SIZE

/**
 * The operating system's CSPRNG (node:crypto). Small draws (the 16-byte R and IVs of §4.9) are
 * served from a 4 KiB pool refilled in one call, which is much cheaper than one syscall-backed
 * fill per draw; each byte of the pool is handed out once and returned as a copy.
 */
export const cryptoRandom: RandomSource = (length) => {
  checkLength(length)
  if (length > POOL_SIZE / 4) return randomFillSync(new Uint8Array(length))
  if (poolPos + length > POOL_SIZE) {
    randomFillSync(pool)
    poolPos = 0
  }
  const out = pool.slice(poolPos, poolPos + length)
  // handed-out bytes are wiped so that the pool never holds a secret that left it
  pool.fill(0, poolPos, poolPos + length)
  poolPos += length
  return out
}

const utf8 = new TextEncoder()

/**
 * A deterministic byte stream for reproducible runs (the host's "seed" mode); NOT a CSPRNG for
 * real use. The stream is the concatenation of the blocks
 *
 *     block(i) = SHA-256( UTF-8(String(seed)) ‖ i as u64 little-endian ),  i = 0, 1, 2, …
 *
 * handed out in order and continuously across calls (two draws of 16 give the same bytes as one
 * draw of 32). A number seed is used through its JavaScript string form, so `42` and `'42'` give
 * the same stream. The definition depends on nothing but the seed: same seed, same bytes on any
 * machine, any day, any kmslab version that keeps this comment.
 */
export function seededRandom(seed: string | number): RandomSource {
  if (typeof seed === 'number' && !Number.isFinite(seed)) {
    throw new CryptoError(`random seed must be a finite number or a string, got ${seed}`)
  }
  const prefix = utf8.encode(String(seed))
  const input = new Uint8Array(prefix.length + 8)
  input.set(prefix)
  const counter = new DataView(input.buffer, prefix.length, 8)
  let i = 0n
  let block: Uint8Array = new Uint8Array(0)
  let pos = 0
  return (length) => {
    checkLength(length)
    const out = new Uint8Array(length)
    let o = 0
    while (o < length) {
      if (pos === block.length) {
        counter.setBigUint64(0, i, true)
        block = sha256(input)
        i++
        pos = 0
      }
      const n = Math.min(length - o, block.length - pos)
      out.set(block.subarray(pos, pos + n), o)
      o += n
      pos += n
    }
    return out
  }
}
