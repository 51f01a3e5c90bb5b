/** Checks that every port the demo needs (plain and HTTPS) is free before anything starts, naming each node. */
import { createServer } from 'node:net'
import { CdnError } from '../../errors.js'
import type { NodePlan } from './plan.js'

function probe(host: string, port: number): Promise<NodeJS.ErrnoException | undefined> {
  return new Promise((resolve) => {
    const srv = createServer()
    srv.once('error', (err: NodeJS.ErrnoException) => resolve(err))
    srv.listen({ host, port, exclusive: true }, () => srv.close(() => resolve(undefined)))
  })
}

/** Throws CDN_ERR_CONFIG listing every node whose port is taken. */
export async function assertPortsFree(nodes: readonly NodePlan[], host: string): Promise<void> {
  const problems: string[] = []
  for (const n of nodes)
    for (const port of n.tlsPort === undefined ? [n.port] : [n.port, n.tlsPort]) {
      const err = await probe(host, port)
      if (!err) continue
      if (err.code === 'EADDRINUSE')
        problems.push(`port ${port} (${n.role} ${n.id}) is already in use on ${host}`)
      else
        problems.push(
          `port ${port} (${n.role} ${n.id}): cannot listen on ${host}: ${err.code ?? err.message}`,
        )
    }
  if (problems.length)
    throw new CdnError(
      'CDN_ERR_CONFIG',
      `${problems.join('\n  ')}\n  Stop what holds it, or move the whole demo with --base-port (e.g. --base-port 9080).`,
      { details: { problems } },
    )
}
