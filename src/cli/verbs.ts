import { activateVerb } from './activate.js'
import type { Verb } from './args.js'
import { benchVerb } from './bench.js'
import { decodeVerb } from './decode.js'
import { dnsVerb } from './dns.js'
import { historyVerb } from './history.js'
import { productsVerb } from './products.js'
import { serveVerb } from './serve.js'
import { statusVerb } from './status.js'

/** Every verb of the `kmslab` command, in the order `kmslab --help` lists them. */
export const verbs: Verb[] = [
  serveVerb,
  statusVerb,
  historyVerb,
  activateVerb,
  benchVerb,
  decodeVerb,
  productsVerb,
  dnsVerb,
]
