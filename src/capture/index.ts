export { type Endpoint, endpointText } from '../wire/endpoint.js'
export {
  type CaptureDecode,
  type ConnectionPdus,
  capturePdus,
  decodeCapturePdus,
  readCaptureFile,
} from './capture-pdus.js'
export {
  type DecodedCapture,
  type DecodeOptions,
  decodeCapture,
  type ExchangeRecord,
} from './decode.js'
export { addFinding, CaptureError } from './errors.js'
export { decodeFrame, ipv6Text, LINKTYPE, TCP_FLAGS, type TcpSegment } from './packet.js'
export { type CapturedPacket, type CaptureFile, readCapture } from './pcap.js'
export { type CutPdus, cutRpcPdus, type StreamPdu, type StreamRest } from './pdu-stream.js'
export { reassembleTcp, type TcpChunk, type TcpConnection } from './tcp.js'
