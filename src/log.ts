/** Logger options shared by every node: fastify's pino, structured JSON, one level knob. */
export interface LogOptions {
  level: string
}

export function loggerOptions(level: string, name: string): Record<string, unknown> | false {
  if (level === 'silent') return false
  return {
    level,
    name,
    base: { node: name },
    redact: ['req.headers.authorization'],
  }
}
