#!/usr/bin/env -S node --initial-old-space-size=128
import type { CliCommand, CliIo } from './command.js'
/**
 * The `cdn` command: one binary, one subcommand per role or operator task. This file only
 * touches `process`; each subcommand is loaded lazily so `cdn --help` stays instant.
 */
import { readEnv } from '../config/env.js'
import { helpText } from '../config/options.js'
import { isCdnError } from '../errors.js'

const COMMANDS: Record<string, { summary: string; load: () => Promise<{ command: CliCommand }> }> = {
  origin: {
    summary: 'run an origin: serve the content store, accept ingest jobs',
    load: () => import('./origin.js'),
  },
  edge: {
    summary: 'run an edge: tiered memory/disk cache in front of an upstream',
    load: () => import('./edge.js'),
  },
  steering: {
    summary: 'run steering: send each player to the nearest healthy edge',
    load: () => import('./steering.js'),
  },
  ingest: {
    summary: 'transcode a source video into an HLS ladder (locally or on an origin)',
    load: () => import('./ingest.js'),
  },
  prefill: {
    summary: 'fill an edge with titles ahead of demand and follow the job',
    load: () => import('./prefill.js'),
  },
  purge: { summary: 'purge a title from an edge', load: () => import('./purge.js') },
  status: {
    summary: 'show the fleet as steering sees it: edges, state, load, hit ratio, titles',
    load: () => import('./status.js'),
  },
  demo: {
    summary: 'start a whole local CDN from a topology file (what `npm start` runs)',
    load: () => import('./demo.js'),
  },
}

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((k) => k.length)) + 4
  return [
    'Usage: cdn COMMAND [options]',
    '',
    'An open video CDN: an origin that packages HLS, tiered-cache edges, and steering.',
    '',
    'Commands:',
    ...Object.entries(COMMANDS).map(([k, v]) => `  ${k.padEnd(width)}${v.summary}`),
    '',
    'Run `cdn COMMAND --help` for the options of one command.',
    '',
  ].join('\n')
}

async function main(): Promise<number> {
  const [name, ...rest] = process.argv.slice(2)
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage())
    return name ? 0 : 2
  }
  if (name === '--version' || name === '-v') {
    const { readFileSync } = await import('node:fs')
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version: string
    }
    process.stdout.write(`${pkg.version}\n`)
    return 0
  }
  const entry = COMMANDS[name]
  if (!entry) {
    process.stderr.write(`cdn: unknown command "${name}"\n\n${usage()}`)
    return 2
  }
  const { command } = await entry.load()
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(helpText(command.spec))
    return 0
  }
  const stopSignal = new Promise<string>((resolve) => {
    for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => resolve(sig))
  })
  const io: CliIo = {
    argv: rest,
    env: readEnv(),
    stdout: process.stdout,
    stderr: process.stderr,
    stopSignal,
    onHangup: (listener) => process.on('SIGHUP', listener),
  }
  return command.run(io)
}

main().then(
  (code) => {
    process.exitCode = code
  },
  (err: unknown) => {
    if (isCdnError(err)) process.stderr.write(`cdn: ${err.message} [${err.code}]\n`)
    else process.stderr.write(`cdn: ${(err as Error)?.stack ?? String(err)}\n`)
    process.exitCode = 1
  },
)
