#!/usr/bin/env node
import { main } from './main.js'

// `kmslab decode --json | head` closes stdout early: stop quietly like other Unix tools, instead
// of a stack trace. The host keeps serving when its log reader goes away (serve handles that).
if (process.argv[2] !== 'serve') {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0)
  })
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code
})
