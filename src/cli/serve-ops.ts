/** `kmslab serve`'s operations side: the --http flags, and the status report on SIGUSR1. */

import { UsageError } from '../errors.js'
import type { KmsHost } from '../host/host.js'
import { type HostOptions, parseListen } from '../host/options.js'
import type { OptionSpec } from './args.js'
import type { ServeLog } from './serve-log.js'
import { formatStatus } from './status-text.js'

const HTTP = 'Operations over HTTP'

export const HTTP_OPTIONS = {
  http: {
    type: 'string',
    arg: 'HOST:PORT',
    section: HTTP,
    help:
      'also serve HTTP here (port 0: any free port): /healthz, /readyz, /metrics, /api/status, ' +
      '/api/clients, /api/history, /api/events and the dashboard at /; read-only; off unless asked',
  },
  'http-token': {
    type: 'string',
    arg: 'TOKEN',
    section: HTTP,
    help:
      'every HTTP endpoint but /healthz asks for Authorization: Bearer TOKEN (or ?token=TOKEN); ' +
      'default $KMSLAB_HTTP_TOKEN; required when --http is not on loopback (exit 64 otherwise)',
  },
} satisfies OptionSpec

/** The `http` host option from --http, --http-token and KMSLAB_HTTP_TOKEN (the flag wins). */
export function httpOption(
  v: { http?: string; 'http-token'?: string },
  env: NodeJS.ProcessEnv,
): HostOptions['http'] {
  if (!v.http) {
    if (v['http-token'] !== undefined)
      throw new UsageError('kmslab serve: --http-token needs --http HOST:PORT', 'http-token')
    return undefined
  }
  const token = v['http-token'] ?? (env.KMSLAB_HTTP_TOKEN || null)
  return { listen: parseListen(v.http, 8080), token }
}

/**
 * SIGUSR1 logs the status report. Listening for the signal also keeps Node from opening its
 * inspector on it, which is what SIGUSR1 does to a Node process otherwise.
 */
export function statusSignalHandler(host: KmsHost, log: ServeLog): () => void {
  return () => {
    try {
      const report = host.status()
      if (log.format === 'json') log.always('status', '', { status: report })
      else log.always('status', `status report (SIGUSR1)\n${formatStatus(report).trimEnd()}`)
    } catch (err) {
      log.error('status', `cannot build the status report: ${(err as Error).message}`)
    }
  }
}
