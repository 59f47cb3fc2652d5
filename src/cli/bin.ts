#!/usr/bin/env -S node --single-threaded-gc --max-semi-space-size=1
// --single-threaded-gc: the host is one thread, and V8's helper GC threads only take the cores its
// clients need; on 2 cores shared with the load, p99 at half the maximum rate fell ~6 -> ~3 ms.
// --max-semi-space-size=1 (MB): a host's garbage is short-lived answers, so a small young
// generation holds what survives as well as the default one, for ~25 MB less resident memory.
// Flags cannot be set once V8 runs, hence the #! line (npm start and npm run bench pass it too).
// env -S execs node in its own place, so the process a shell started is the host itself; npx and
// npm start add a `sh -c` of their own above it, which serve-lifetime.ts deals with.
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
