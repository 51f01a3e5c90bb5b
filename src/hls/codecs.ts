/** RFC 6381 codec strings for the master playlist, from the real streams. */

const PROFILE_IDC: Readonly<Record<string, number>> = {
  'constrained baseline': 66,
  baseline: 66,
  main: 77,
  extended: 88,
  high: 100,
  'high 10': 110,
  'high 4:2:2': 122,
  'high 4:4:4 predictive': 244,
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0')
}

/**
 * avc1.PPCCLL from the avcC box of an fMP4 init segment: the exact profile, constraint flags
 * and level the encoder signalled. Undefined when the buffer holds no avcC.
 */
export function avc1FromInit(init: Uint8Array): string | undefined {
  const buf = Buffer.from(init.buffer, init.byteOffset, init.byteLength)
  const at = buf.indexOf('avcC')
  if (at < 0 || at + 8 > buf.length || buf[at + 4] !== 1) return undefined
  return `avc1.${hex2(buf[at + 5]!)}${hex2(buf[at + 6]!)}${hex2(buf[at + 7]!)}`
}

/** avc1.PPCCLL from ffprobe's profile name and level (constraint flags as x264 sets them). */
export function avc1FromProfile(profile: string | undefined, level: number | undefined): string {
  const p = (profile ?? 'high').toLowerCase()
  const idc = PROFILE_IDC[p] ?? 100
  const constraints = p === 'constrained baseline' ? 0xc0 : 0
  return `avc1.${hex2(idc)}${hex2(constraints)}${hex2(level && level > 0 ? level : 31)}`
}

/** AAC-LC is what the ladder encodes; HE-AAC would be mp4a.40.5. */
export function mp4aFromProfile(profile: string | undefined): string {
  const p = (profile ?? 'LC').toLowerCase()
  if (p.includes('he-aacv2')) return 'mp4a.40.29'
  if (p.includes('he-aac')) return 'mp4a.40.5'
  return 'mp4a.40.2'
}
