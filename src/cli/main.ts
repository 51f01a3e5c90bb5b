#!/usr/bin/env -S node --initial-old-space-size=128
/**
 * The `cdn` command: one binary, one subcommand per role or operator task (run.ts). This file
 * only touches `process`: its arguments, environment, streams and signals.
 */
import { readEnv } from '../config/env.js'
import { type CliIo, failureLine } from './command.js'
import { runCli } from './run.js'

const STOP_SIGNALS = ['SIGINT', 'SIGTERM'] as const
const stopSignal = new Promise<string>((resolve) => {
  for (const sig of STOP_SIGNALS) process.once(sig, () => resolve(sig))
})
const nextSignal = () =>
  new Promise<string>((resolve) => {
    const on = (sig: string) => {
      for (const s of STOP_SIGNALS) process.removeListener(s, on)
      resolve(sig)
    }
    for (const sig of STOP_SIGNALS) process.on(sig, on)
  })
const io: Omit<CliIo, 'argv'> = {
  env: readEnv(),
  stdout: process.stdout,
  stderr: process.stderr,
  stopSignal,
  nextSignal,
  onHangup: (listener) => process.on('SIGHUP', listener),
}

runCli(process.argv.slice(2), io).then(
  (code) => {
    process.exitCode = code
  },
  (err: unknown) => {
    // runCli tells a command's failure itself; this is one of loading the command.
    process.stderr.write(`${failureLine('cdn', err)}\n`)
    process.exitCode = 1
  },
)
