import type { CliCommand } from './command.js'

// Placeholder until the origin command lands.
export const command: CliCommand = {
  spec: { name: 'cdn origin', summary: 'not built yet', usage: 'cdn origin', options: {} },
  async run(io) {
    io.stderr.write('cdn origin: not built yet\n')
    return 1
  },
}
