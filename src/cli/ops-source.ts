/**
 * Where `kmslab status` and `kmslab history` read from: a state file opened read-only (beside a
 * running host, or none), or a running host's HTTP port (--url), with its token.
 */
import { KmslabError, UsageError } from '../errors.js'
import { defaultStatePath } from '../store/open.js'
import type { OptionSpec } from './args.js'

const SOURCE = 'Source'

export const SOURCE_OPTIONS = {
  state: {
    type: 'string',
    arg: 'PATH',
    section: SOURCE,
    help:
      'read this state file, read-only (a host may be running on it); default $XDG_STATE_HOME/kmslab/state.db ' +
      'or ~/.local/state/kmslab/state.db',
  },
  url: {
    type: 'string',
    arg: 'URL',
    section: SOURCE,
    help: "ask a running host's HTTP port instead (see kmslab serve --help), e.g. http://127.0.0.1:8080",
  },
  token: {
    type: 'string',
    arg: 'TOKEN',
    section: SOURCE,
    help: "the host's HTTP token, with --url (default $KMSLAB_HTTP_TOKEN)",
  },
} satisfies OptionSpec

/** The host's HTTP port could not be asked: not running, refused, wrong token, an error status. */
export class HostRequestError extends KmslabError {
  constructor(
    message: string,
    readonly url: string,
    readonly status?: number,
  ) {
    super(message)
  }
}

export type Source = { kind: 'state'; path: string } | { kind: 'url'; base: URL; token: string | null }

export function sourceOf(
  verb: string,
  v: { state?: string; url?: string; token?: string },
  env: NodeJS.ProcessEnv,
): Source {
  if (v.state !== undefined && v.url !== undefined)
    throw new UsageError(`kmslab ${verb}: give --state or --url, not both`)
  if (v.url === undefined) {
    if (v.token !== undefined) throw new UsageError(`kmslab ${verb}: --token goes with --url`, 'token')
    return { kind: 'state', path: v.state ?? defaultStatePath(env) }
  }
  let base: URL
  try {
    base = new URL(v.url)
  } catch {
    throw new UsageError(
      `kmslab ${verb}: --url ${JSON.stringify(v.url)} is not a URL (http://HOST:PORT)`,
      'url',
    )
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:')
    throw new UsageError(`kmslab ${verb}: --url must be http:// or https://`, 'url')
  return { kind: 'url', base, token: v.token ?? (env.KMSLAB_HTTP_TOKEN || null) }
}

/** GETs `path` from the host; the response is checked (2xx), its body left to the caller. */
export async function fetchFromHost(source: Source & { kind: 'url' }, path: string, timeoutMs = 15_000) {
  const url = new URL(path, source.base)
  let res: Response
  try {
    res = await fetch(url, {
      headers: source.token ? { authorization: `Bearer ${source.token}` } : {},
      signal: AbortSignal.timeout(timeoutMs),
    })
  } catch (err) {
    const c = (err as { cause?: { code?: string; message?: string; errors?: { code?: string }[] } }).cause
    const cause = c?.code ?? c?.errors?.[0]?.code ?? c?.message ?? (err as Error).message
    throw new HostRequestError(`cannot reach the host at ${source.base.origin}: ${cause}`, url.href)
  }
  if (res.status === 401) {
    throw new HostRequestError(
      `the host at ${source.base.origin} wants a token: give --token TOKEN (or KMSLAB_HTTP_TOKEN)${source.token ? '; the one given was refused' : ''}`,
      url.href,
      401,
    )
  }
  if (!res.ok) {
    const body = (await res.text().catch(() => '')).trim().slice(0, 300)
    throw new HostRequestError(
      `the host answered ${res.status} for ${url.pathname}: ${body}`,
      url.href,
      res.status,
    )
  }
  return res
}
