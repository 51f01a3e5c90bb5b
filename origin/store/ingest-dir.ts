/**
 * Confinement of POST /jobs sources to the configured ingest directory: the name must be
 * relative, free of `..`, NULs and backslashes, and its real path (after symlinks) must
 * still be inside the directory.
 */
import { realpath, stat } from 'node:fs/promises'
import { isAbsolute, resolve, sep } from 'node:path'
import { CdnError } from '../../src/errors.js'

export async function resolveIngestSource(ingestDir: string | undefined, source: unknown): Promise<string> {
  if (!ingestDir) throw new CdnError('CDN_ERR_FORBIDDEN', 'no ingest directory is configured (--ingest-dir)')
  if (typeof source !== 'string' || !source || source.length > 1024)
    throw new CdnError('CDN_ERR_BAD_BODY', 'source must be a file name relative to the ingest directory')
  const parts = source.split('/')
  if (isAbsolute(source) || source.includes('\0') || source.includes('\\') || parts.includes('..'))
    throw new CdnError('CDN_ERR_BAD_BODY', 'source must be a relative path inside the ingest directory', {
      details: { source },
    })
  const root = await realpath(ingestDir).catch((err: unknown) => {
    throw new CdnError('CDN_ERR_CONFIG', 'the ingest directory is unreadable', {
      cause: err,
      internal: { ingestDir },
    })
  })
  const real = await realpath(resolve(root, source)).catch(() => undefined)
  if (!real) throw new CdnError('CDN_ERR_NOT_FOUND', `no such source in the ingest directory: ${source}`)
  if (!real.startsWith(root + sep))
    throw new CdnError('CDN_ERR_BAD_BODY', 'source resolves outside the ingest directory', {
      details: { source },
    })
  const st = await stat(real)
  if (!st.isFile()) throw new CdnError('CDN_ERR_BAD_BODY', `source is not a file: ${source}`)
  return real
}
