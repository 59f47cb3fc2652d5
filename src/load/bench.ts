// `kmslab bench`: drives any KMS host with verified activations and measures the rate, the
// latency and the errors. Closed loop by default (each connection sends its next request as soon
// as the last answer verified); open loop with `rate` (requests are scheduled at fixed times and
// latency counts from the scheduled time, so a slow host cannot hide its queueing). All connections
// are opened and bound before the clock starts (new-connection mode excepted, where connect, bind,
// request and close are the activation; there an answer is checked, and its socket closed, while
// the host accepts the next connection, so the load's own work stays off the host's path).
import { randomFillSync } from 'node:crypto'
import { lookup } from 'node:dns/promises'
import { isIP } from 'node:net'
import { cryptoRandom } from '../crypto/random.js'
import { hostPort } from '../wire/endpoint.js'
import { ActivationCodec } from './codec.js'
import { BenchConn, type ConnEvents } from './connection.js'
import { BenchError } from './errors.js'
import { BenchStats } from './stats.js'
import { hostsReport, planTargets } from './targets.js'
import type {
  BenchHost,
  BenchOptions,
  BenchProgress,
  BenchReport,
  BenchTarget,
  LatencySummary,
} from './types.js'

export type { BenchHost, BenchOptions, BenchProgress, BenchReport, BenchTarget, LatencySummary }
export { BenchError }

function latency(h: BenchStats['latency']): LatencySummary {
  const r = (ms: number) => Math.round(ms * 1000) / 1000
  return {
    p50: r(h.quantileMs(0.5)),
    p90: r(h.quantileMs(0.9)),
    p99: r(h.quantileMs(0.99)),
    max: r(h.quantileMs(1)),
    mean: r(h.meanMs()),
  }
}

const cpuNow = () => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1e6
}

export async function runBench(o: BenchOptions): Promise<BenchReport> {
  const address = o.targets ? o.host : isIP(o.host) ? o.host : await resolve(o.host)
  const target = { host: address, port: o.port }
  const plans = o.targets ? planTargets(o.targets, o.connections, o.random ?? cryptoRandom) : null
  const closedLoop = o.rate === undefined
  const idle: BenchConn[] = []
  /** Setup and warm-up: only their errors are reported. */
  const setup = new BenchStats()
  let stats = setup
  /** The stats each connection's activation in progress counts in (a warm-up one does not count). */
  const startedIn: BenchStats[] = []
  /** New-connection mode: the stats of each connection's answer that arrived and waits for its check. */
  const arrivedIn: BenchStats[] = []
  let phase: BenchProgress['phase'] = 'setup'
  /** Activations started (closed loop) or scheduled (open loop) in the measured phase. */
  let measuredIssued = 0
  let measureStart = 0
  let measureEnd = 0
  let cpuStart = 0
  let inFlight = 0
  let interrupted = false
  let finish: () => void = () => {}
  const done = new Promise<void>((r) => {
    finish = r
  })
  const timers: NodeJS.Timeout[] = []
  // open loop: scheduled times not sent yet, oldest first (from queueHead)
  const queue: number[] = []
  let queueHead = 0

  /** More work may be issued (closed loop: started; open loop: scheduled). */
  const mayIssue = (): boolean =>
    (phase === 'warmup' || phase === 'measure') && (o.requests === undefined || measuredIssued < o.requests)

  const issued = () => {
    if (phase === 'measure') measuredIssued++
  }

  /** Open loop: schedules what is due by now and sends what is queued on idle connections. */
  let openTick: (() => void) | null = null

  const start = (c: BenchConn, intendedAt: number) => {
    stats.started++
    startedIn[c.index] = stats
    inFlight++
    if (!closedLoop) stats.sendLag.record(performance.now() - intendedAt)
    c.activate(intendedAt)
    if (o.busyPoll && !polling) {
      polling = true
      setImmediate(poll)
    }
  }

  // Busy polling: while an activation is in flight, a chain of immediates keeps the event loop
  // polling the sockets with a zero timeout instead of sleeping, so an answer is read as soon as it
  // lands, not after the wake-up of an idle CPU (tens of µs in a VM). It takes a whole core.
  // In an open loop it also checks the schedule on every turn, so requests leave on time rather
  // than on the next 1 ms timer.
  let polling = false
  const poll = () => {
    openTick?.()
    const scheduling = !closedLoop && (phase === 'warmup' || phase === 'measure')
    if ((inFlight > 0 || scheduling) && phase !== 'setup') setImmediate(poll)
    else polling = false
  }

  const maybeFinish = () => {
    if (phase === 'measure' && !mayIssue()) phase = 'drain'
    if (phase === 'drain' && inFlight === 0 && queueHead >= queue.length) {
      measureEnd ||= performance.now()
      finish()
    }
  }

  /** A connection (or a new-connection slot) is free: give it work or park it. */
  const next = (c: BenchConn) => {
    if (!closedLoop) {
      idle.push(c)
      // checking the schedule on every answer, not only on the 1 ms timer, sends on time
      openTick?.()
    } else if (mayIssue()) {
      issued()
      start(c, performance.now())
    } else idle.push(c)
    maybeFinish()
  }

  const events: ConnEvents = {
    connected: () => {
      stats.connects++
    },
    ready: (c) => {
      if (phase === 'setup') setupReady(c)
      else next(c)
    },
    answered: (c, verdict, latencyMs) => {
      const s = o.newConnection ? arrivedIn[c.index] : startedIn[c.index]
      if (verdict === null) {
        s.verified++
        if (s === stats) s.latency.record(latencyMs)
        if (c.codec.belowThreshold) s.belowThreshold++
      } else s.errors.add(verdict)
      if (c.codec.warning !== null) s.warnings.add(c.codec.warning)
      if (o.newConnection) return
      inFlight--
      next(c)
    },
    arrived: (c) => {
      arrivedIn[c.index] = startedIn[c.index]
      inFlight--
      next(c)
    },
    failed: (c, kind, activation) => {
      if (kind !== '') (activation ? (startedIn[c.index] ?? stats) : stats).errors.add(kind)
      // a host that refuses, resets, or accepts and closes is passed over for the connection's next
      // one; while setting up, any failure is the host's
      const hostFailed =
        phase === 'setup' ||
        kind === '' ||
        kind === 'closed' ||
        kind === 'reset' ||
        kind.startsWith('connect:')
      if (plans && hostFailed) {
        const plan = plans[c.index]
        if (phase === 'setup' && plan.at + 1 < plan.order.length) {
          c.target = plan.order[++plan.at]
          c.open()
          return
        }
        plan.at = (plan.at + 1) % plan.order.length
        c.target = plan.order[plan.at]
      }
      if (phase === 'setup') return setupFailed()
      if (activation) inFlight--
      // a host that refuses connections is retried after a pause, not in a hot loop
      if (kind.startsWith('connect:') && !o.newConnection) timers.push(setTimeout(() => next(c), 20))
      else next(c)
    },
  }

  const conns: BenchConn[] = []
  for (let i = 0; i < o.connections; i++) {
    const prefix = new Uint8Array(12)
    randomFillSync(prefix)
    const codec = new ActivationCodec({
      major: o.protocol,
      minor: 0,
      appId: o.product.appId,
      skuId: o.product.skuId,
      kmsId: o.product.kmsId,
      requiredCount: o.product.requiredCount,
      workstation: `bench-${i}.kmslab.test`,
      cmidPrefix: prefix,
    })
    const first = plans ? plans[i].order[0] : target
    conns.push(new BenchConn(i, codec, first, o.bind, o.timeoutMs, events, o.newConnection))
  }
  // one sweep for every deadline instead of a timer per request
  timers.push(
    setInterval(
      () => {
        const now = performance.now()
        for (const c of conns) if (c.deadline < now) c.expire()
      },
      Math.max(10, Math.min(250, o.timeoutMs / 4)),
    ),
  )

  // ---- setup: open and bind every connection (persistent mode), a bounded number at a time ----
  let opened = 0
  let settled = 0
  let readyCount = 0
  const openConcurrency = o.openConcurrency ?? 256
  let setupDone: () => void = () => {}
  const setupFinished = new Promise<void>((r) => {
    setupDone = r
  })
  const openMore = () => {
    while (opened < conns.length && opened - settled < openConcurrency) conns[opened++].open()
    if (settled >= conns.length) setupDone()
  }
  const setupReady = (c: BenchConn) => {
    readyCount++
    settled++
    idle.push(c)
    openMore()
  }
  const setupFailed = () => {
    settled++
    openMore()
  }
  const onAbort = () => {
    interrupted = true
    if (phase === 'setup') {
      settled = conns.length
      setupDone()
      return
    }
    phase = 'drain'
    queueHead = queue.length
    maybeFinish()
  }
  o.signal?.addEventListener('abort', onAbort, { once: true })

  const t0 = performance.now()
  if (o.newConnection) idle.push(...conns)
  else {
    openMore()
    await setupFinished
    if (readyCount === 0 && !interrupted) {
      for (const t of timers) clearInterval(t)
      for (const c of conns) c.close()
      const kinds = Object.entries(setup.errors.toObject())
        .map(([k, n]) => `${k} x${n}`)
        .join(', ')
      throw new BenchError(`no connection to ${o.host}:${o.port} could be opened and bound (${kinds})`)
    }
  }

  // ---- load: warm-up, then the measured phase, then the drain of what is in flight ----
  let lastCount = 0
  let lastAt = performance.now()
  const onProgress = o.onProgress
  if (onProgress) {
    timers.push(
      setInterval(() => {
        const now = performance.now()
        const count = stats.verified
        const rate = count >= lastCount ? ((count - lastCount) * 1000) / (now - lastAt) : 0
        onProgress({
          phase,
          elapsedS: (now - t0) / 1000,
          activations: count,
          errors: stats.errors.total,
          currentRate: rate,
        })
        lastCount = count
        lastAt = now
      }, 1000),
    )
  }

  const beginMeasure = () => {
    if (phase !== 'warmup' && phase !== 'setup') return
    stats = new BenchStats()
    lastCount = 0
    phase = 'measure'
    measureStart = performance.now()
    cpuStart = cpuNow()
    if (o.requests === undefined) {
      const stop = () => {
        if (phase !== 'measure') return
        phase = 'drain'
        maybeFinish()
      }
      timers.push(setTimeout(stop, (o.durationS ?? 10) * 1000))
    }
  }

  if (interrupted) finish()
  else {
    if (o.warmupS > 0) {
      phase = 'warmup'
      timers.push(setTimeout(beginMeasure, o.warmupS * 1000))
    } else beginMeasure()
    if (closedLoop) {
      for (const c of idle.splice(0)) next(c)
    } else {
      const rate = o.rate as number
      const rateStart = performance.now()
      let scheduled = 0
      openTick = () => {
        // request k is due at rateStart + k / rate: by time t, floor(t * rate) + 1 of them
        const due = Math.floor(((performance.now() - rateStart) * rate) / 1000) + 1
        while (scheduled < due && mayIssue()) {
          queue.push(rateStart + (scheduled * 1000) / rate)
          scheduled++
          issued()
        }
        while (queueHead < queue.length && idle.length > 0) start(idle.pop() as BenchConn, queue[queueHead++])
        if (queueHead > 4096 && queueHead * 2 > queue.length) {
          queue.splice(0, queueHead)
          queueHead = 0
        }
        maybeFinish()
      }
      timers.push(setInterval(openTick, 1))
      openTick()
    }
  }

  await done
  o.signal?.removeEventListener('abort', onAbort)
  const cpu = cpuStart > 0 ? cpuNow() - cpuStart : 0
  for (const t of timers) clearInterval(t)
  for (const c of conns) c.close()
  const measured = measureStart > 0
  const m = measured ? stats : new BenchStats()
  const durationS = measured ? Math.max(1e-6, (measureEnd - measureStart) / 1000) : 0
  return {
    target: hostPort(o.host, o.port),
    protocol: o.protocol,
    product: o.product.name ?? o.product.kmsId,
    bind: o.bind,
    connections: o.connections,
    newConnection: o.newConnection,
    busyPoll: o.busyPoll ?? false,
    loop: closedLoop ? 'closed' : 'open',
    rate: o.rate ?? null,
    warmupS: o.warmupS,
    durationS: Math.round(durationS * 1000) / 1000,
    measureWindowEpochMs: measured
      ? [Math.round(performance.timeOrigin + measureStart), Math.round(performance.timeOrigin + measureEnd)]
      : [0, 0],
    requests: m.started,
    activations: m.verified,
    activationsPerSec: durationS > 0 ? Math.round((m.verified / durationS) * 10) / 10 : 0,
    belowThreshold: m.belowThreshold,
    latencyMs: latency(m.latency),
    sendLagMs: closedLoop ? null : latency(m.sendLag),
    errors: m.errors.total,
    errorsByKind: m.errors.toObject(),
    warningsByKind: m.warnings.toObject(),
    warmupErrorsByKind: setup.errors.toObject(),
    connects: m.connects,
    benchCpuS: Math.round(cpu * 1000) / 1000,
    interrupted,
    hosts: plans ? hostsReport(plans) : null,
  }
}

async function resolve(host: string): Promise<string> {
  try {
    return (await lookup(host)).address
  } catch (err) {
    throw new BenchError(`cannot resolve ${host}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`)
  }
}
