/** What every `cdn` subcommand module exports. */
import type { CommandSpec } from '../config/options.js'

export interface CliIo {
  readonly argv: readonly string[]
  readonly env: Readonly<Record<string, string | undefined>>
  readonly stdout: NodeJS.WritableStream & { isTTY?: boolean; columns?: number }
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean }
  /** Resolves when the process is asked to stop (SIGINT/SIGTERM); long-running commands await it. */
  readonly stopSignal: Promise<string>
  /** Calls `listener` on each SIGHUP (servers reload their TLS certificates). */
  readonly onHangup?: (listener: () => void) => void
}

export interface CliCommand {
  readonly spec: CommandSpec
  /** Returns the exit code. Long-running servers resolve after a clean shutdown. */
  run(io: CliIo): Promise<number>
}
