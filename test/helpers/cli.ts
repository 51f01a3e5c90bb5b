/** Runs one `cdn` subcommand in-process, as src/cli/main.ts would, and collects what it wrote. */
import { PassThrough } from 'node:stream'
import type { CliCommand } from '../../src/cli/command.js'

export async function runCommand(
  command: CliCommand,
  argv: string[],
): Promise<{ code: number; out: string; err: string }> {
  const stdout = new PassThrough()
  const stderr = new PassThrough()
  let out = ''
  let err = ''
  stdout.on('data', (b: Buffer) => (out += b))
  stderr.on('data', (b: Buffer) => (err += b))
  const code = await command.run({ argv, env: {}, stdout, stderr, stopSignal: new Promise(() => {}) })
  return { code, out, err }
}
