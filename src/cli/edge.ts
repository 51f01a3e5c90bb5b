/** `cdn edge`: run an edge node until SIGINT/SIGTERM. Options: edge/config/spec.ts. */
import { startEdgeCluster, workerCount } from '../../edge/cluster/primary.js'
import { EDGE_SPEC, type EdgeConfig } from '../../edge/config/spec.js'
import { validateEdgeConfig } from '../../edge/config/validate.js'
import { startEdge } from '../../edge/main.js'
import { parseCommand } from '../config/options.js'
import type { CliCommand } from './command.js'
import { NODE_FLAGS, startedWithNodeFlags } from './node-flags.js'

export const command: CliCommand = {
  spec: EDGE_SPEC,
  async run(io) {
    const parsed = parseCommand<EdgeConfig>(EDGE_SPEC, io.argv, io.env)
    const config = validateEdgeConfig({ ...parsed.config })
    const workers = workerCount(config)
    const running =
      workers > 1
        ? await startEdgeCluster(config)
        : await startEdge(config).then(({ app, url, httpUrl }) => ({
            url,
            httpUrl,
            reloadTls: () => app.edge.tls?.reload() ?? false,
            app,
            close: () => app.close(),
          }))
    if (!startedWithNodeFlags())
      io.stderr.write(
        `cdn edge ${config.id}: warning: node was started without ${NODE_FLAGS.join(' ')}; ` +
          'under misses and prefills V8 may then run a full GC every few hundred ms (docs/edge.md)\n',
      )
    const procs = workers > 1 ? ` (${workers} workers)` : ''
    const plain = running.httpUrl ? ` and ${running.httpUrl}` : ''
    io.stderr.write(
      `cdn edge ${config.id}: listening on ${running.url}${plain}${procs}, upstream ${config.upstream.join(', ')}\n`,
    )
    io.onHangup?.(() => running.reloadTls())
    let sig = await io.stopSignal
    if (config.drainDelay > 0) {
      // Steering (registry, /status) and kubernetes (/readyz) stop sending clients here, while
      // those already here are served on until the delay is over, or a second SIGINT/SIGTERM.
      const again = io.nextSignal?.()
      io.stderr.write(`cdn edge ${config.id}: ${sig}, draining for ${config.drainDelay} ms, then closing\n`)
      let timer: ReturnType<typeof setTimeout> | undefined
      let over = false
      const drained = running.app.edge.drain().then(
        () =>
          new Promise<undefined>((resolve) => {
            if (over) return
            io.stderr.write(
              `cdn edge ${config.id}: draining: keep-alive clients told to go` +
                `${config.registryEtcd.length ? ', out of the fleet registry' : ''}\n`,
            )
            timer = setTimeout(() => resolve(undefined), config.drainDelay)
          }),
      )
      const second = await Promise.race([drained, ...(again ? [again] : [])])
      over = true
      clearTimeout(timer)
      if (second) sig = `${second} while draining`
    }
    io.stderr.write(`cdn edge ${config.id}: ${sig}, closing\n`)
    await running.close()
    return 0
  },
}
