// The node flags of a script's #! line ("#!/usr/bin/env -S node --flag"): the benchmarks start
// `kmslab` children with them, so a host runs as the installed `kmslab` command runs it.
import { readFileSync } from 'node:fs'

export function shebangNodeFlags(script) {
  const first = readFileSync(script, 'utf8').split('\n', 1)[0]
  const m = /^#!\S*env(?:\s+-S)?\s+node((?:\s+--?[\w-]+(?:=\S+)?)*)\s*$/.exec(first)
  return m ? m[1].trim().split(/\s+/).filter(Boolean) : []
}
