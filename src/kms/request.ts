import { cbcDecrypt } from '../crypto/cbc.js'
import { v4Mac } from '../crypto/kms-crypto.js'
import { type BlockCipher, V5_CIPHER, V6_CIPHER } from '../crypto/rijndael.js'
import { equalBytes } from '../wire/bytes.js'
import {
  BASE_REQUEST_LENGTH,
  KMS_VERSION_LENGTH,
  type KmsBaseRequest,
  parseBaseRequest,
  readKmsVersion,
  V4_REQUEST_LENGTH,
  V5_REQUEST_LENGTH,
} from '../wire/kms-request.js'

/**
 * What a host (or a passive decoder) reads from the KMS request bytes of any version. Decoding
 * never refuses: it reads what the bytes allow and lists what is wrong in `problems`, so a
 * research decoder can still show a request the host policy (`requestRefusal`) turns away.
 */
export interface DecodedRequest {
  /** The outer (plain) version, bytes 0-3. */
  major: number
  minor: number
  /** 'v4': plain base request + MAC (major < 5); 'encrypted': IV + AES-CBC (major >= 5). */
  shape: 'v4' | 'encrypted'
  length: number
  base: KmsBaseRequest | null
  /** V5/V6: the request IV and D = D_K(IV), which the response needs. */
  iv: Uint8Array | null
  decryptedIv: Uint8Array | null
  problems: RequestProblem[]
}

export interface RequestProblem {
  /** 'short' | 'size' | 'version' | 'minor-version' | 'padding' | 'mac' | 'inner-version' */
  check: string
  message: string
}

export const SUPPORTED_MAJOR_VERSIONS = [4, 5, 6] as const
const V4_MAC_OFFSET = BASE_REQUEST_LENGTH
const ENCRYPTED_IV_OFFSET = 4
const ENCRYPTED_DATA_OFFSET = 20
const ENCRYPTED_BASE_BLOCKS = 240

/** The cipher a request of this major version is encrypted with (V6's for anything above 6). */
export function cipherForMajor(major: number): BlockCipher {
  return major === 5 ? V5_CIPHER : V6_CIPHER
}

/** A request with nothing decoded yet: returned as is when the bytes are too short, else filled in. */
function undecoded(
  payload: Uint8Array,
  major: number,
  minor: number,
  problems: RequestProblem[],
): DecodedRequest {
  const shape = major >= 5 ? 'encrypted' : 'v4'
  return { major, minor, shape, length: payload.length, base: null, iv: null, decryptedIv: null, problems }
}

export function decodeKmsRequest(payload: Uint8Array): DecodedRequest {
  const problems: RequestProblem[] = []
  if (payload.length < KMS_VERSION_LENGTH) {
    problems.push({ check: 'short', message: `KMS request of ${payload.length} bytes has no version` })
    return undecoded(payload, -1, -1, problems)
  }
  const { major, minor } = readKmsVersion(payload)
  if (!(SUPPORTED_MAJOR_VERSIONS as readonly number[]).includes(major)) {
    problems.push({ check: 'version', message: `unsupported KMS protocol version ${major}.${minor}` })
  } else if (minor !== 0) {
    problems.push({ check: 'minor-version', message: `unsupported KMS minor version ${major}.${minor}` })
  }
  return major < 5
    ? decodeV4(payload, major, minor, problems)
    : decodeEncrypted(payload, major, minor, problems)
}

function decodeV4(
  payload: Uint8Array,
  major: number,
  minor: number,
  problems: RequestProblem[],
): DecodedRequest {
  const out = undecoded(payload, major, minor, problems)
  if (payload.length < BASE_REQUEST_LENGTH) {
    problems.push({
      check: 'short',
      message: `V4 request of ${payload.length} bytes, needs ${V4_REQUEST_LENGTH}`,
    })
    return out
  }
  out.base = parseBaseRequest(payload.subarray(0, BASE_REQUEST_LENGTH))
  if (payload.length !== V4_REQUEST_LENGTH) {
    problems.push({
      check: 'size',
      message: `V4 request of ${payload.length} bytes, expected ${V4_REQUEST_LENGTH}`,
    })
  }
  if (payload.length >= V4_REQUEST_LENGTH) {
    const mac = v4Mac(payload.subarray(0, V4_MAC_OFFSET))
    if (!equalBytes(mac, payload.subarray(V4_MAC_OFFSET, V4_MAC_OFFSET + 16))) {
      problems.push({ check: 'mac', message: 'V4 request MAC does not verify' })
    }
  }
  return out
}

function decodeEncrypted(
  payload: Uint8Array,
  major: number,
  minor: number,
  problems: RequestProblem[],
): DecodedRequest {
  const out = undecoded(payload, major, minor, problems)
  if (payload.length < V5_REQUEST_LENGTH) {
    problems.push({
      check: 'short',
      message: `V${major} request of ${payload.length} bytes, needs ${V5_REQUEST_LENGTH}`,
    })
    if (payload.length < ENCRYPTED_DATA_OFFSET) return out
  } else if (payload.length !== V5_REQUEST_LENGTH) {
    problems.push({
      check: 'size',
      message: `V${major} request of ${payload.length} bytes, expected ${V5_REQUEST_LENGTH}`,
    })
  }
  const cipher = cipherForMajor(major)
  const iv = payload.subarray(ENCRYPTED_IV_OFFSET, ENCRYPTED_DATA_OFFSET)
  out.iv = iv
  const d = new Uint8Array(16)
  cipher.decryptBlock(iv, 0, d, 0)
  out.decryptedIv = d
  if (payload.length < V5_REQUEST_LENGTH) return out
  const plain = cbcDecrypt(
    cipher,
    iv,
    payload.subarray(ENCRYPTED_DATA_OFFSET, ENCRYPTED_DATA_OFFSET + ENCRYPTED_BASE_BLOCKS),
  )
  // The 236-byte base request is always padded with exactly four 04 bytes (PKCS#7 to 240).
  for (let i = BASE_REQUEST_LENGTH; i < ENCRYPTED_BASE_BLOCKS; i++) {
    if (plain[i] !== 4) {
      problems.push({
        check: 'padding',
        message: `V${major} request padding is not 04 04 04 04 (byte ${i} is ${plain[i]})`,
      })
      break
    }
  }
  out.base = parseBaseRequest(plain.subarray(0, BASE_REQUEST_LENGTH))
  if (out.base.versionMajor !== major || out.base.versionMinor !== minor) {
    problems.push({
      check: 'inner-version',
      message: `encrypted version ${out.base.versionMajor}.${out.base.versionMinor} differs from the outer ${major}.${minor}`,
    })
  }
  return out
}
