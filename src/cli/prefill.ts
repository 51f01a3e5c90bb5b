import type { CliCommand } from './command.js'

// Placeholder until the prefill command lands.
export const command: CliCommand = {
  spec: { name: 'cdn prefill', summary: 'not built yet', usage: 'cdn prefill', options: {} },
  async run(io) {
    io.stderr.write('cdn prefill: not built yet\n')
    return 1
  },
}
