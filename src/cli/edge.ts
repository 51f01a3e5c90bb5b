import type { CliCommand } from './command.js'

// Placeholder until the edge command lands.
export const command: CliCommand = {
  spec: { name: 'cdn edge', summary: 'not built yet', usage: 'cdn edge', options: {} },
  async run(io) {
    io.stderr.write('cdn edge: not built yet\n')
    return 1
  },
}
