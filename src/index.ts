// The package entry (`import { startHost, activate, decodeCapture } from 'kmslab'`): the embedding
// API and its public types and errors. Everything else under dist/ is internal and may change.

// A KMS host in-process
export { SEED_EPOCH, startHost } from './api/host.js'
export type { HostOptions, HttpHostOptions } from './api/options.js'
export type { FaultRule, RuleAction, RuleMatch } from './api/rules.js'
export type { HostStatus, PoolStatus, RequestFigures, ThresholdStatus } from './api/status.js'
export type {
  ActivationRecord,
  ConnectionEvent,
  HostEvents,
  HostFaults,
  HostPools,
  HostRules,
  HostStats,
  KmsHost,
  RequestOutcome,
} from './api/types.js'
// The capture decoder
export {
  type DecodedCapture,
  type DecodeOptions,
  decodeCapture,
  type ExchangeRecord,
} from './capture/decode.js'
export { CaptureError } from './capture/errors.js'
export { CatalogError } from './catalog/errors.js'
export { type Catalog, defaultCatalog, type LoadCatalogOptions, loadCatalog } from './catalog/index.js'
// The verifying client
export {
  type ActivateOptions,
  type ActivationReport,
  activate,
  type ChargeProgress,
  EXIT_CODES,
  type RequestResult,
  type Verdict,
} from './client/activate.js'
export type { ResolveSrv, SrvRecord } from './client/discover.js'
export {
  DiscoveryError,
  describeNcaStatus,
  RefusedError,
  RpcError,
  type RpcErrorKind,
} from './client/errors.js'
export type { RequestOverride } from './client/types.js'
export { CryptoError } from './crypto/errors.js'
export { cryptoRandom, type RandomSource, seededRandom } from './crypto/random.js'
// The lab's DNS server (SRV records for KMS discovery)
export { DnsListenError, ZoneError } from './dns/errors.js'
export {
  type DnsHostInput,
  type DnsOptions,
  type DnsServer,
  type DnsStats,
  startDns,
} from './dns/server.js'
// Typed errors: every error kmslab throws on purpose is a KmslabError
export { ConfigError, KmslabError, UsageError } from './errors.js'
export { HttpListenError } from './http/errors.js'
export type { CounterMode, PoolEntry, PoolKey } from './kms/counter.js'
export { VerificationError } from './kms/errors.js'
// Codes and the product catalogue
export { describeHresult, HRESULT, hresultHex, parseHresult } from './kms/hresult.js'
export type { RequestReport, ResponseReport } from './kms/report.js'
export { ANSWER_CORRUPTIONS, type AnswerCorruption } from './kms/response.js'
export type { VerifiedAnswer } from './kms/verify.js'
export { ListenError } from './server/errors.js'
export type { ListenAddress } from './server/server.js'
export { StoreError, StoreReadError, StoreWriteError } from './store/errors.js'
export type { CommitBatch, HistoryQuery, HistoryRow, HostIdentity, WriteFailure } from './store/types.js'
export { WireError } from './wire/bytes.js'
export { NCA_STATUS } from './wire/rpc.js'
