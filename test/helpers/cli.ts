/**
 * Runs one `cdn` subcommand in-process through the runner src/cli/main.ts uses (src/cli/run.ts),
 * and collects what it wrote: the exit status and the failure line are what a user would see.
 */
import { PassThrough } from 'node:stream'
import type { CliCommand } from '../../src/cli/command.js'
import { runCli, runCommand as runOne } from '../../src/cli/run.js'

export interface CliRun {
  readonly code: number
  readonly out: string
  readonly err: string
}

function streams() {
  const stdout = new PassThrough()
  const stderr = new PassThrough()
  const seen = { out: '', err: '' }
  stdout.on('data', (b: Buffer) => (seen.out += b))
  stderr.on('data', (b: Buffer) => (seen.err += b))
  return { stdout, stderr, seen }
}

/**
 * `stopSignal` never settles unless given: a test that expects a refusal at start may pass a
 * settled one, so that a node which starts after all stops at once rather than running on.
 */
export async function runCommand(
  command: CliCommand,
  argv: string[],
  env: Record<string, string> = {},
  stopSignal: Promise<string> = new Promise(() => {}),
): Promise<CliRun> {
  const { stdout, stderr, seen } = streams()
  const code = await runOne(command, { argv, env, stdout, stderr, stopSignal })
  return { code, ...seen }
}

/** `cdn ARGS...` as main.ts runs it (`--version`, unknown commands, each command). */
export async function runCdn(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  const { stdout, stderr, seen } = streams()
  const code = await runCli(args, { env, stdout, stderr, stopSignal: new Promise(() => {}) })
  return { code, ...seen }
}
