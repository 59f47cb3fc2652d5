export {
  cbcDecrypt,
  cbcDecryptInto,
  cbcEncrypt,
  cbcEncryptInto,
  decryptPadded,
  encryptPadded,
  pkcs7Pad,
  pkcs7Unpad,
} from './cbc.js'
export { CryptoError, PaddingError } from './errors.js'
export {
  decryptBlockOf,
  sha256,
  V6_HMAC_C1,
  V6_HMAC_C2,
  V6_HMAC_C3,
  v4Mac,
  v6Hmac,
  v6HmacKey,
  v6HmacKeyForSlot,
  v6HmacSlot,
} from './kms-crypto.js'
export { cryptoRandom, type RandomSource, seededRandom } from './random.js'
export {
  BlockCipher,
  cipherForVersion,
  expandKey,
  V4_CIPHER,
  V4_KEY,
  V5_CIPHER,
  V5_KEY,
  V6_CIPHER,
  V6_KEY,
  V6_KEY_TWEAKS,
} from './rijndael.js'
