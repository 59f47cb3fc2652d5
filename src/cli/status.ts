import { defaultCatalog } from '../catalog/index.js'
import { UsageError } from '../errors.js'
import { statusFromStore } from '../host/status.js'
import { openStateStoreReadOnly } from '../store/open.js'
import { type CliIo, type OptionSpec, parseCliArgs, type Verb } from './args.js'
import { formatHelp } from './help.js'
import { fetchFromHost, SOURCE_OPTIONS, sourceOf } from './ops-source.js'
import { formatStatus } from './status-text.js'

const OPTIONS = {
  ...SOURCE_OPTIONS,
  json: {
    type: 'boolean',
    section: 'Output',
    help: 'print the JSON object of GET /api/status instead of the report',
  },
  help: { type: 'boolean', short: 'h', section: 'Output', help: 'this help' },
} satisfies OptionSpec

const HELP = formatHelp(
  {
    usage: 'kmslab status [--state PATH | --url URL [--token TOKEN]] [--json]',
    intro:
      "The host's report, like slmgr /dlv on a KMS host: each pool's current count and what each\n" +
      'activation threshold means for it, the cumulative request figures (total, failed, per license\n' +
      "status), the host's ePIDs and HWID, the clients in the pools and the newest requests.\n" +
      'From a state file (read-only, also while a host runs on it) or from a running host (--url).',
    exitCodes: [
      [0, 'reported'],
      [1, 'the host could not be asked (not running, wrong token)'],
      [64, 'usage error'],
      [78, 'unusable state file (missing, not a kmslab state, from another version)'],
    ],
  },
  OPTIONS,
)

async function runStatus(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCliArgs('status', argv, OPTIONS)
  if (positionals.length > 0)
    throw new UsageError(`kmslab status: unexpected argument ${JSON.stringify(positionals[0])}`)
  const source = sourceOf('status', values, process.env)
  let report: unknown
  if (source.kind === 'url') {
    report = await (await fetchFromHost(source, '/api/status')).json()
  } else {
    const store = openStateStoreReadOnly(source.path)
    try {
      report = statusFromStore(store, defaultCatalog(), Date.now())
    } finally {
      store.close()
    }
  }
  io.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : formatStatus(report as never))
  return 0
}

export const statusVerb: Verb = {
  name: 'status',
  summary: "the host's report (slmgr /dlv): counts, request figures, identity",
  help: HELP,
  options: OPTIONS,
  run: runStatus,
}
