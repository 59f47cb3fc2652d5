import { readFileSync, statSync } from 'node:fs'
import { type DecodedCapture, decodeCapture } from '../capture/index.js'
import type { Catalog } from '../catalog/index.js'
import { KmslabError, UsageError } from '../errors.js'
import { type CliIo, type OptionSpec, parseCliArgs, type Verb } from './args.js'
import { formatCaptureHeader, formatExchange } from './decode-text.js'
import { formatHelp } from './help.js'
import { catalogFor } from './products.js'

const OPTIONS = {
  json: {
    type: 'boolean',
    help:
      'one JSON object per exchange per line on stdout, nothing else; progress and problems go to ' +
      'stderr. Keys: file, client, server ("[::1]:16880" for IPv6), callId, transferSyntax ' +
      '("ndr32" | "ndr64"), request {version, vm, licenseStatus, graceMinutes, appId, skuId, kmsId, ' +
      'cmid, previousCmid, requiredCount, clientTime, workstation, verified} or null, response ' +
      '{hresult (number, 0 = answer), version, epid, hwid (V6 only), cmid, clientTime, currentCount, ' +
      'activationInterval, renewalInterval, verified} or null, errors (the findings), and connection ' +
      '(numbered from 1, as in the text output), ' +
      'contextId, opnum, wireVersion, requestFrame, responseFrame, time, products {app, sku, kms}. ' +
      '"verified" means the cryptographic and echo checks passed, nothing else.',
  },
  products: {
    type: 'string',
    arg: 'FILE',
    help: 'lay FILE (same schema as data/products.json) over the catalogue for names',
  },
  help: { type: 'boolean', short: 'h', help: 'this help' },
} satisfies OptionSpec

const HELP = formatHelp(
  {
    usage: 'kmslab decode [--json] [--products FILE] CAPTURE...',
    intro: `Prints every KMS exchange found in pcap or pcapng captures (tcpdump, Wireshark, dumpcap):
each TCP connection is reassembled, its DCE-RPC calls are paired (BIND / ALTER_CONTEXT contexts,
REQUEST with RESPONSE or FAULT by call id), and each KMS request and answer is decrypted and
verified (V4 MAC; V5/V6 padding, hash, IV rules; V6 XorSalts and HMAC; CMID and time echoes).
Any port is recognised. Whatever the bytes allow is decoded; anything unusual (RPC version,
opnum, KMS version, sizes, failed checks, FAULTs, unanswered requests, non-RPC bytes) is listed
as a finding of its exchange, or of its TCP connection when it carried no exchange.`,
    operands: [{ arg: 'CAPTURE', help: 'a .pcap or .pcapng file; several may be given' }],
    exitCodes: [
      [0, 'every file was read (whatever its exchanges show)'],
      [
        1,
        'a file could not be read or is not a capture (one line on stderr naming it; the other files ' +
          'are still decoded)',
      ],
      [64, 'usage error or unusable products file'],
    ],
  },
  OPTIONS,
)

/** Progress is shown on a terminal only, and only when the work is long. */
const MANY_FILES = 8
const BIG_FILE = 32 * 1024 * 1024

function sizeOf(path: string): number {
  try {
    return statSync(path).size
  } catch {
    return 0
  }
}

function readError(err: unknown): string {
  const e = err as NodeJS.ErrnoException
  if (e.code === 'ENOENT') return 'no such file'
  if (e.code === 'EISDIR') return 'is a directory, not a capture file'
  if (e.code === 'EACCES') return 'permission denied'
  return `cannot be read (${e.code ?? e.message})`
}

export const decodeVerb: Verb = {
  name: 'decode',
  summary: 'decode, decrypt and verify every KMS exchange in pcap/pcapng captures',
  help: HELP,
  options: OPTIONS,
  async run(argv: string[], io: CliIo): Promise<number> {
    const { values, positionals: files } = parseCliArgs('decode', argv, OPTIONS)
    if (files.length === 0)
      throw new UsageError('kmslab decode: no capture file given (see kmslab decode --help)')
    const catalog: Catalog = catalogFor('decode', values.products)
    const json = values.json === true
    const progress =
      io.stderrIsTty && (files.length >= MANY_FILES || files.some((f) => sizeOf(f) >= BIG_FILE))
    let failed = 0
    for (const [i, file] of files.entries()) {
      if (progress) io.stderr.write(`\r\x1b[Kkmslab decode: ${i + 1}/${files.length} ${file}`)
      let bytes: Uint8Array
      let decoded: DecodedCapture
      try {
        bytes = readFileSync(file)
      } catch (err) {
        failed++
        io.stderr.write(`${progress ? '\r\x1b[K' : ''}kmslab decode: ${file}: ${readError(err)}\n`)
        continue
      }
      try {
        decoded = decodeCapture(bytes, file, { catalog })
      } catch (err) {
        if (!(err instanceof KmslabError)) throw err
        failed++
        const msg = err.message.startsWith(`${file}: `) ? err.message : `${file}: ${err.message}`
        io.stderr.write(`${progress ? '\r\x1b[K' : ''}kmslab decode: ${msg}\n`)
        continue
      }
      if (json) {
        for (const w of decoded.warnings) io.stderr.write(`kmslab decode: ${file}: warning: ${w}\n`)
        // connections are numbered from 1, as the text output and Wireshark's stream list count them
        const lines = decoded.exchanges.map(
          (r) => `${JSON.stringify({ ...r, connection: r.connection + 1 })}\n`,
        )
        io.stdout.write(lines.join(''))
      } else {
        const blocks = decoded.exchanges.map(formatExchange)
        io.stdout.write(
          `${i > 0 ? '\n' : ''}${formatCaptureHeader(file, decoded)}${blocks.map((b) => `\n${b}`).join('')}`,
        )
      }
    }
    if (progress) io.stderr.write('\r\x1b[K')
    return failed > 0 ? 1 : 0
  },
}
