/**
 * External tools a benchmark needs (nginx, wrk). Missing ones are installed with apt-get when
 * this process may (root, or passwordless sudo); otherwise the error says what to run.
 */
import { accessSync, constants } from 'node:fs'
import { runCommand } from './proc.js'

export interface Tool {
  /** Binary name or absolute path. */
  readonly bin: string
  /** Debian package that provides it. */
  readonly apt: string
}

export function onPath(bin: string, pathVar: string): string | undefined {
  const dirs = bin.includes('/') ? [''] : pathVar.split(':')
  for (const d of dirs) {
    const p = d ? `${d}/${bin}` : bin
    try {
      accessSync(p, constants.X_OK)
      return p
    } catch {
      // not here; try the next directory
    }
  }
  return undefined
}

/** Returns the resolved path of each tool, installing the missing ones when it can. */
export async function ensureTools(
  tools: readonly Tool[],
  env: Readonly<Record<string, string | undefined>>,
  log: (line: string) => void,
): Promise<Map<string, string>> {
  const pathVar = `${env.PATH ?? ''}:/usr/sbin:/sbin`
  const missing = tools.filter((t) => !onPath(t.bin, pathVar))
  if (missing.length) {
    const pkgs = missing.map((t) => t.apt)
    const isRoot = process.getuid?.() === 0
    const sudo = isRoot
      ? []
      : (await runCommand('sudo', ['-n', 'true'], 5000)).code === 0
        ? ['sudo', '-n']
        : null
    if (!sudo) {
      throw new Error(`missing ${pkgs.join(', ')}; install with: sudo apt-get install -y ${pkgs.join(' ')}`)
    }
    log(`installing ${pkgs.join(' ')} with apt-get`)
    const run = (args: string[]) =>
      sudo.length
        ? runCommand(sudo[0]!, [...sudo.slice(1), ...args], 600_000)
        : runCommand(args[0]!, args.slice(1), 600_000)
    await run(['apt-get', 'update', '-qq'])
    const r = await run(['apt-get', 'install', '-y', '-qq', ...pkgs])
    if (r.code !== 0) throw new Error(`apt-get install ${pkgs.join(' ')} failed: ${r.stderr.slice(-1000)}`)
  }
  const out = new Map<string, string>()
  for (const t of tools) {
    const p = onPath(t.bin, pathVar)
    if (!p) throw new Error(`${t.bin} still not found after installing ${t.apt}`)
    out.set(t.bin, p)
  }
  return out
}
