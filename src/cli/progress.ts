/**
 * Progress for long CLI work (ingest, prefill): a redrawn bar on a terminal, plain lines
 * otherwise (logs, CI), at most one per 10% step or phase change.
 */

export interface ProgressOut {
  write(s: string): unknown
  isTTY?: boolean
  columns?: number
}

export interface Progress {
  /** `fraction` in 0..1; `detail` e.g. the phase or "12/40 objects". */
  update(fraction: number, detail?: string): void
  /** Ends the bar with a final line. */
  done(message: string): void
  fail(message: string): void
}

export function renderBar(fraction: number, width: number): string {
  const f = Math.max(0, Math.min(1, Number.isFinite(fraction) ? fraction : 0))
  const filled = Math.round(f * width)
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${String(Math.floor(f * 100)).padStart(3)}%`
}

export function createProgress(out: ProgressOut, label: string, opts: { tty?: boolean } = {}): Progress {
  const tty = opts.tty ?? out.isTTY === true
  let lastLine = ''
  let lastStep = -1
  let lastDetail: string | undefined
  let open = false
  return {
    update(fraction, detail) {
      if (tty) {
        const cols = Math.max(40, out.columns ?? 80)
        const text = `${label} ${renderBar(fraction, Math.min(30, cols - label.length - 30))}${detail ? ` ${detail}` : ''}`
        const line = text.slice(0, cols - 1)
        if (line === lastLine) return
        out.write(`\r\x1b[2K${line}`)
        lastLine = line
        open = true
        return
      }
      const step = Math.floor(Math.max(0, Math.min(1, fraction)) * 10)
      if (step === lastStep && detail === lastDetail) return
      lastStep = step
      lastDetail = detail
      out.write(`${label}: ${step * 10}%${detail ? ` ${detail}` : ''}\n`)
    },
    done(message) {
      out.write(`${open ? '\r\x1b[2K' : ''}${label}: ${message}\n`)
      open = false
    },
    fail(message) {
      out.write(`${open ? '\n' : ''}${label}: FAILED: ${message}\n`)
      open = false
    },
  }
}
