// One address vocabulary for every layer: a TCP endpoint, and how it is written for people
// ("127.0.0.1:1688", IPv6 in brackets: "[::1]:1688"), as in logs, reports and capture records.

export interface Endpoint {
  address: string
  port: number
}

/** "host:port", an IPv6 address in brackets. */
export function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
}

export function endpointText(e: Endpoint): string {
  return hostPort(e.address, e.port)
}
