/**
 * One request with node's http client (no connection reuse, any field, fetch refuses Connection,
 * Keep-Alive, TE...) for the HTTP-cache tests:
 * the status, every response field as node parsed it, the body, and the interim (1xx) answers
 * that came before it.
 */
import { request } from 'node:http'

export interface Got {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
  /** Interim answers (103 Early Hints...) in order, with their fields. */
  interim: { status: number; headers: Record<string, string | string[] | undefined> }[]
  /** A single-valued field (undefined when absent). */
  h(name: string): string | undefined
}

export function get(
  url: string,
  headers: Record<string, string> = {},
  method = 'GET',
  body?: string,
): Promise<Got> {
  return new Promise((resolve, reject) => {
    const interim: Got['interim'] = []
    const req = request(url, { method, headers, agent: false }, (res) => {
      let body = ''
      res.setEncoding('latin1')
      res.on('data', (c: string) => (body += c))
      res.on('end', () =>
        resolve({
          status: res.statusCode!,
          headers: res.headers,
          body,
          interim,
          h: (name) => {
            const v = res.headers[name]
            return Array.isArray(v) ? v.join(', ') : v
          },
        }),
      )
    })
    req.on('information', (info) => interim.push({ status: info.statusCode, headers: info.headers }))
    req.on('error', reject)
    req.end(body)
  })
}
