/**
 * The shape of the demo's topology file as a JSON Schema (validated with ajv by
 * src/config/schema.ts). References between entries (sites, upstreams, regions) and
 * uniqueness are checked in topology.ts, which names paths the same way.
 */
import type { SchemaObject } from 'ajv'
import { LATITUDE as lat, LONGITUDE as lon } from '../../config/schema.js'
import { TITLE_RE } from '../../http/paths.js'

export const NODE_ID_RE = /^[a-z0-9][a-z0-9-]{0,31}$/

const id = {
  type: 'string',
  pattern: NODE_ID_RE.source,
  hint: 'an id of lowercase letters, digits and "-" (at most 32)',
}
const name = { type: 'string', minLength: 1 }
const port = { type: 'integer', minimum: 1, maximum: 65535 }
const size = { type: 'string', format: 'size', hint: 'a size with a unit, such as "64MB" or "2GB"' }

/** An object with exactly these keys (and `$comment`, allowed anywhere). */
function object(properties: Record<string, SchemaObject>, required: string[] = []): SchemaObject {
  return {
    type: 'object',
    properties: { $comment: { type: 'string' }, ...properties },
    required,
    additionalProperties: false,
  }
}

export const TOPOLOGY_SCHEMA: SchemaObject = object(
  {
    host: name,
    basePort: port,
    adminToken: name,
    samples: {
      type: 'array',
      minItems: 1,
      items: object(
        {
          title: { type: 'string', pattern: TITLE_RE.source, hint: 'a title id such as "feature"' },
          seconds: { type: 'integer', minimum: 2, maximum: 600 },
          popularity: { type: 'number', minimum: 0, maximum: 1e9 },
        },
        ['title', 'seconds'],
      ),
    },
    origin: object({ id, port }, ['port']),
    steering: object({ id, port, defaultRegion: name }, ['port', 'defaultRegion']),
    sites: {
      type: 'array',
      minItems: 1,
      items: object({ id, name, lat, lon }, ['id', 'lat', 'lon']),
    },
    edges: {
      type: 'array',
      minItems: 1,
      items: object(
        {
          id,
          site: name,
          tier: { enum: [1, 2] },
          port,
          upstream: name,
          memorySize: size,
          diskSize: size,
          capacityBytesPerSec: { type: 'number', minimum: 1, maximum: 1e13 },
        },
        ['id', 'site', 'port'],
      ),
    },
    regions: {
      type: 'array',
      minItems: 1,
      items: object({ name: id, lat, lon, cidrs: { type: 'array', items: { type: 'string' } } }, [
        'name',
        'lat',
        'lon',
      ]),
    },
    prefill: object({ site: name }, ['site']),
  },
  ['adminToken', 'samples', 'origin', 'steering', 'sites', 'edges', 'regions'],
)
