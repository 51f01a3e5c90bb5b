/**
 * What `cdn` does with its arguments, apart from the process: the commands (each loaded lazily
 * so `cdn --help` stays instant), `--help` and `--version`, and the one way a command's failure
 * is told. main.ts gives it the process's streams and signals; tests give it their own.
 *
 * A failure is one line on stderr, `cdn COMMAND: MESSAGE [CODE]` (CODE from src/errors.ts; a
 * server's own when it answered with one), never a stack. Exit status: 0 done, 1 failed, 2 the
 * command line or configuration was refused (CDN_ERR_CONFIG: usage, a bad value, a missing
 * option), 130 stopped by ^C while following a job.
 */
import { helpText } from '../config/options.js'
import { isCdnError } from '../errors.js'
import { type CliCommand, type CliIo, failureLine } from './command.js'
import { packageVersion } from './package-root.js'

export const COMMANDS: Readonly<
  Record<string, { summary: string; load: () => Promise<{ command: CliCommand }> }>
> = {
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
  purge: {
    summary: 'purge titles from edges (a parent before its children)',
    load: () => import('./purge.js'),
  },
  status: {
    summary: 'show the fleet as steering sees it: edges, state, load, hit ratio, titles',
    load: () => import('./status.js'),
  },
  demo: {
    summary: 'start a whole local CDN from a topology file (what `npm start` runs)',
    load: () => import('./demo.js'),
  },
}

/** Exit status of a refused command line or configuration. */
export const EXIT_USAGE = 2

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
    'Run `cdn COMMAND --help` for the options of one command, `cdn --version` for the version.',
    '',
  ].join('\n')
}

/** `cdn ARGS...`: the exit status. */
export async function runCli(args: readonly string[], io: Omit<CliIo, 'argv'>): Promise<number> {
  const [name, ...rest] = args
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    io.stdout.write(usage())
    return name ? 0 : EXIT_USAGE
  }
  if (name === '--version' || name === '-v') {
    io.stdout.write(`${packageVersion()}\n`)
    return 0
  }
  const entry = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined
  if (!entry) {
    io.stderr.write(`cdn: unknown command "${name}"\n\n${usage()}`)
    return EXIT_USAGE
  }
  const { command } = await entry.load()
  return runCommand(command, { ...io, argv: rest })
}

/** One command: its help, or its run with any failure told in one line. */
export async function runCommand(command: CliCommand, io: CliIo): Promise<number> {
  if (io.argv.includes('--help') || io.argv.includes('-h')) {
    io.stdout.write(helpText(command.spec))
    return 0
  }
  try {
    return await command.run(io)
  } catch (err) {
    io.stderr.write(`${failureLine(command.spec.name, err)}\n`)
    return isCdnError(err) && err.code === 'CDN_ERR_CONFIG' ? EXIT_USAGE : 1
  }
}
