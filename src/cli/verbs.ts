import type { Verb } from './args.js'

/** Every verb of the `kmslab` command, in the order `kmslab --help` lists them. */
export const verbs: Verb[] = []
