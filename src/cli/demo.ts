import type { CliCommand } from './command.js'

// Placeholder until the demo command lands.
export const command: CliCommand = {
  spec: { name: 'cdn demo', summary: 'not built yet', usage: 'cdn demo', options: {} },
  async run(io) {
    io.stderr.write('cdn demo: not built yet\n')
    return 1
  },
}
