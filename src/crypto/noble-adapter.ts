// The one module that touches @noble/hashes, and the only one that relies on its internals
// (`_HMAC`, `_cloneInto`: not part of its documented API, hence the exact version pin in
// package.json). Hashing in the KMS hot paths is done on tiny inputs at high rates, where building
// a fresh hasher per call costs about as much as the compression itself: so a prepared state is
// cloned into a reused scratch object and finished into the caller's buffer. Everything is
// synchronous, so no two callers can interleave on a scratch state. test/crypto-hashes.test.ts
// holds these against known answers and node:crypto, so an upgrade that changes the internals fails
// there first.
import { type _HMAC, hmac } from '@noble/hashes/hmac.js'
import { sha256 } from '@noble/hashes/sha2.js'

type Sha256State = ReturnType<typeof sha256.create>

const SHA256_EMPTY: Sha256State = sha256.create()
let shaWork: Sha256State | undefined

export const SHA256_LENGTH = 32

/** SHA-256 (FIPS 180-4) of `data` into `out` (32 bytes from its start). */
export function sha256Into(data: Uint8Array, out: Uint8Array): void {
  shaWork = SHA256_EMPTY._cloneInto(shaWork)
  shaWork.update(data)
  shaWork.digestInto(out)
}

/** HMAC-SHA256 (RFC 2104) under one key: the padded key is absorbed once, at construction. */
export class HmacSha256 {
  private readonly keyed: _HMAC<Sha256State>
  private work: _HMAC<Sha256State> | undefined

  constructor(key: Uint8Array) {
    this.keyed = hmac.create(sha256, key) as _HMAC<Sha256State>
  }

  /** The MAC of `message` into `out` (32 bytes from its start). */
  macInto(message: Uint8Array, out: Uint8Array): void {
    this.work = this.keyed._cloneInto(this.work)
    this.work.update(message)
    this.work.digestInto(out)
  }
}
