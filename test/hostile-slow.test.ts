// Slow clients and garbage do not starve a valid client: while 200 peers each dribble a BIND one
// byte every half second and garbage connections come and go, a valid client still activates in
// under 2 seconds. A correctness bound (the host never makes one peer wait for another), not a
// benchmark: the host runs as `kmslab serve` in its own process, as users run it.
import t from 'tap'
import { bind, NOT_RPC, sleep } from './fixtures/hostile.js'
import { activateRaw, baseRequest } from './fixtures/raw-activate.js'
import { RawPeer } from './fixtures/raw-client.js'
import { startServe } from './fixtures/serve-process.js'

const SLOW_PEERS = 200
const BOUND_MS = 2000

t.test('200 dribbling binds and garbage churn; a valid client activates in under 2 s', async (t) => {
  const host = await startServe(['--state', 'memory', '--quiet', '--idle-timeout', '5'])
  t.teardown(() => host.child.kill('SIGKILL'))
  let running = true

  const slow = await Promise.all(Array.from({ length: SLOW_PEERS }, () => RawPeer.open(host.port)))
  const dribbling = slow.map(async (peer, i) => {
    await sleep((i * 500) / SLOW_PEERS) // spread the bytes over each half second
    const bytes = bind()
    for (let o = 0; running && o < bytes.length && !peer.closed; o++) {
      peer.send(bytes.subarray(o, o + 1))
      await sleep(500)
    }
  })

  let garbage = 0
  const inputs = Object.values(NOT_RPC)
  const churn = Array.from({ length: 8 }, async (_, lane) => {
    while (running) {
      const peer = await RawPeer.open(host.port)
      peer.send(inputs[(garbage + lane) % inputs.length])
      await peer.waitClosed(1000)
      peer.end()
      garbage++
    }
  })

  await sleep(1500) // everyone is at it
  const times: number[] = []
  for (let i = 0; i < 5; i++) {
    const started = performance.now()
    const [answer] = await activateRaw(host.port, [baseRequest()])
    times.push(performance.now() - started)
    t.equal(answer.hresult, 0, 'activated')
    await sleep(200)
  }
  running = false
  await Promise.all(churn)
  const stillOpen = slow.filter((p) => !p.closed).length
  for (const p of slow) p.end()
  await Promise.all(dribbling)

  t.ok(garbage >= 200, `garbage connections came and went meanwhile: ${garbage}`)
  t.equal(stillOpen, SLOW_PEERS, 'the dribblers were never idle long enough to be dropped')
  t.ok(
    times.every((ms) => ms < BOUND_MS),
    `valid activations took ${times.map((ms) => ms.toFixed(0)).join(', ')} ms`,
  )
  host.child.kill('SIGTERM')
  t.equal(await host.exited, 0)
})
