import type { CliCommand } from './command.js'

// Placeholder until the steering command lands.
export const command: CliCommand = {
  spec: { name: 'cdn steering', summary: 'not built yet', usage: 'cdn steering', options: {} },
  async run(io) {
    io.stderr.write('cdn steering: not built yet\n')
    return 1
  },
}
