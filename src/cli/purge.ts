import type { CliCommand } from './command.js'

// Placeholder until the purge command lands.
export const command: CliCommand = {
  spec: { name: 'cdn purge', summary: 'not built yet', usage: 'cdn purge', options: {} },
  async run(io) {
    io.stderr.write('cdn purge: not built yet\n')
    return 1
  },
}
