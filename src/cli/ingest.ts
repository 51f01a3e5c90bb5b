import type { CliCommand } from './command.js'

// Placeholder until the ingest command lands.
export const command: CliCommand = {
  spec: { name: 'cdn ingest', summary: 'not built yet', usage: 'cdn ingest', options: {} },
  async run(io) {
    io.stderr.write('cdn ingest: not built yet\n')
    return 1
  },
}
