// `kmslab dns` as users run it (from dist/, a child process, stopped by SIGTERM) and `kmslab dns
// zone` in its four formats; usage errors exit 64, an address that cannot be listened on 78.
import { spawn } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { dnsVerb } from '../src/cli/dns.js'
import { serverResolver } from '../src/client/server-resolver.js'
import { seededRandom } from '../src/crypto/random.js'
import { startDns } from '../src/index.js'
import { runVerb } from './fixtures/cli-io.js'
import { dig, digOrFail, needsDig } from './fixtures/dig.js'
import { BIN } from './fixtures/serve-process.js'

const HOSTS = ['--host', 'kms1=10.0.0.5,weight=10', '--host', 'kms2=[2001:db8::5]:1690,priority=5,ttl=86400']

t.test('kmslab dns zone: BIND, nsupdate, dnscmd, PowerShell', async (t) => {
  const zone = (format: string) =>
    runVerb(dnsVerb, ['zone', '--domain', 'lab.example', ...HOSTS, '--format', format])
  const bind = await zone('bind')
  t.equal(bind.code, 0, bind.err)
  t.equal(
    bind.out,
    [
      '; KMS discovery records for lab.example (kmslab dns zone --format bind)',
      '_vlmcs._tcp.lab.example. 3600 IN SRV 0 10 1688 kms1.lab.example.',
      '_vlmcs._tcp.lab.example. 86400 IN SRV 5 0 1690 kms2.lab.example.',
      'kms1.lab.example. 3600 IN A 10.0.0.5',
      'kms2.lab.example. 86400 IN AAAA 2001:db8::5',
      '',
    ].join('\n'),
  )
  const nsupdate = await zone('nsupdate')
  t.match(
    nsupdate.out,
    /^zone lab\.example\.\nupdate add _vlmcs\._tcp\.lab\.example\. 3600 IN SRV 0 10 1688 kms1\.lab\.example\.$/m,
  )
  t.match(nsupdate.out, /update add kms2\.lab\.example\. 86400 IN AAAA 2001:db8::5\nsend\n$/)
  const dnscmd = await zone('dnscmd')
  t.match(dnscmd.out, 'dnscmd /recordadd lab.example _vlmcs._tcp 3600 SRV 0 10 1688 kms1.lab.example\n')
  t.match(dnscmd.out, 'dnscmd /recordadd lab.example kms1 3600 A 10.0.0.5\n')
  const ps = await zone('powershell')
  t.match(
    ps.out,
    'Add-DnsServerResourceRecord -ZoneName "lab.example" -Name "_vlmcs._tcp" -Srv -DomainName "kms1.lab.example" -Priority 0 -Weight 10 -Port 1688 -TimeToLive 01:00:00\n',
  )
  t.match(
    ps.out,
    'Add-DnsServerResourceRecordAAAA -ZoneName "lab.example" -Name "kms2" -IPv6Address "2001:db8::5" -TimeToLive 1.00:00:00\n',
  )
  t.equal(
    (await runVerb(dnsVerb, ['zone', '--domain', 'lab.example', ...HOSTS])).out,
    bind.out,
    'bind is the default',
  )
})

t.test('usage errors exit 64 with one line', async (t) => {
  const cases: [string[], RegExp][] = [
    [['zone', '--domain', 'lab.test'], /give at least one --host/],
    [['zone', '--domain', 'lab.test', '--host', 'a=1.2.3'], /ADDR must be an IPv4 address/],
    [
      ['zone', '--domain', 'lab.test', '--host', 'a=::1'],
      /ADDR must be an IPv4 address or an IPv6 one in brackets/,
    ],
    [['zone', '--domain', 'lab.test', '--host', 'a=1.2.3.4,weight=70000'], /weight takes 0 to 65535/],
    [['zone', '--domain', 'lab.test', '--host', 'a.other.=1.2.3.4'], /outside the zone lab\.test/],
    [['zone', '--domain', 'lab.test', '--host', 'a=1.2.3.4', '--format', 'tinydns'], /--format is one of/],
    [['zone', '--host', 'a=1.2.3.4'], /--domain is required/],
    [['--host', 'a=1.2.3.4'], /--domain is required/],
    [['--domain', 'lab.test', '--listen', 'localhost:53'], /--listen takes IP:PORT/],
    [['--domain', 'lab.test', '--rate-limit', '-1'], /--rate-limit/],
    [['serve'], /unexpected argument "serve"/],
  ]
  for (const [argv, re] of cases) {
    const r = await runVerb(dnsVerb, argv)
    t.equal(r.code, 64, argv.join(' '))
    t.match(r.err, re)
    t.equal(r.err.trim().split('\n').length, 1)
  }
})

t.test('an address in use: exit 78', async (t) => {
  const taken = await startDns({ domain: 'lab.test', listen: ['127.0.0.1:0'], hosts: [] })
  t.teardown(() => taken.close())
  const r = await runVerb(dnsVerb, ['--domain', 'lab.test', '--listen', `127.0.0.1:${taken.port}`])
  t.equal(r.code, 78)
  t.match(r.err, /^kmslab dns: cannot listen on 127\.0\.0\.1:\d+: EADDRINUSE\n$/)
})

t.test('kmslab dns from dist/: --config, answers, SIGTERM prints the counters', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kmslab-dns-'))
  const config = join(dir, 'dns.json')
  writeFileSync(
    config,
    JSON.stringify({ domain: 'cfg.test', host: ['kms1=127.0.0.2:1700,priority=3'], listen: ['127.0.0.1:0'] }),
  )
  const child = spawn(process.execPath, [BIN, 'dns', '--config', config, '--json'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout.on('data', (d) => {
    out += d
  })
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  t.teardown(() => child.kill('SIGKILL'))
  const deadline = Date.now() + 20_000
  while (!out.includes('\n') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
  const start = JSON.parse(out.split('\n')[0])
  t.equal(start.event, 'listening')
  t.equal(start.domain, 'cfg.test')
  t.ok(start.records.includes('_vlmcs._tcp.cfg.test. 3600 IN SRV 3 0 1700 kms1.cfg.test.'))
  const server = start.addresses[0] as string
  const lab = serverResolver(server, 3000, seededRandom(1))
  t.same(await lab.resolveSrv('_vlmcs._tcp.cfg.test'), [
    { name: 'kms1.cfg.test', port: 1700, priority: 3, weight: 0, addresses: ['127.0.0.2'] },
  ])
  if (!needsDig) {
    const bin = digOrFail(t)
    if (bin) {
      const soa = await dig(bin, Number(server.split(':')[1]), ['+tcp', 'cfg.test', 'SOA'])
      t.equal(soa.status, 'NOERROR')
    }
  }
  child.kill('SIGTERM')
  t.equal(await exited, 0)
  const stopped = JSON.parse(out.trim().split('\n').at(-1)!)
  t.equal(stopped.event, 'stopped')
  t.ok(stopped.stats.queries >= 1)
})
