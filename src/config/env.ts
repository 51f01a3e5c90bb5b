/** The only reader of process.env. Entry points pass this snapshot down. */
export function readEnv(): Readonly<Record<string, string | undefined>> {
  return Object.freeze({ ...process.env })
}
