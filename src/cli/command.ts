/** What every `cdn` subcommand module exports. */
import type { CommandSpec } from '../config/options.js'
import { isCdnError } from '../errors.js'

export interface CliIo {
  readonly argv: readonly string[]
  readonly env: Readonly<Record<string, string | undefined>>
  readonly stdout: NodeJS.WritableStream & { isTTY?: boolean; columns?: number }
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean }
  /** Resolves when the process is asked to stop (SIGINT/SIGTERM); long-running commands await it. */
  readonly stopSignal: Promise<string>
  /**
   * Resolves at the next SIGINT/SIGTERM after the call (a second one while draining cuts the
   * drain short); one after that takes the default action (the process ends at once).
   */
  readonly nextSignal?: () => Promise<string>
  /** Calls `listener` on each SIGHUP (servers reload their TLS certificates). */
  readonly onHangup?: (listener: () => void) => void
}

export interface CliCommand {
  readonly spec: CommandSpec
  /** Returns the exit code. Long-running servers resolve after a clean shutdown. */
  run(io: CliIo): Promise<number>
}

/**
 * How a command's failure is told: `cdn COMMAND: MESSAGE [CODE]`, one line (a configuration's
 * problems are listed under it), never a stack; a message that already names the command is not
 * prefixed twice. CODE is the error's from src/errors.ts, CDN_ERR_INTERNAL for any other error.
 */
export function failureLine(name: string, err: unknown): string {
  const message = err instanceof Error ? err.message : String(err)
  const own = message.startsWith(`${name}: `) ? message.slice(name.length + 2) : message
  return `${name}: ${own} [${isCdnError(err) ? err.code : 'CDN_ERR_INTERNAL'}]`
}
