import t from 'tap'
import { isCdnError } from '../../src/errors.js'
import { clientAddress, locate, PrefixTable, parseZones } from '../../steering/geo.js'
import { type Cidr, cidrContains, parseAddress, parseCidr } from '../../steering/ip.js'

t.test('addresses', async (t) => {
  const cases: [string, 4 | 6 | undefined, number | bigint | undefined][] = [
    ['10.1.2.3', 4, 0x0a010203],
    ['255.255.255.255', 4, 0xffffffff],
    ['0.0.0.0', 4, 0],
    ['::ffff:10.1.2.3', 4, 0x0a010203], // what a dual-stack socket reports
    ['::FFFF:a01:203', 4, 0x0a010203],
    ['::1', 6, 1n],
    ['2001:db8::1', 6, (0x20010db8n << 96n) | 1n],
    ['fe80::1%eth0', 6, (0xfe80n << 112n) | 1n],
    ['1:2:3:4:5:6:7:8', 6, 0x00010002000300040005000600070008n],
    ['256.1.1.1', undefined, undefined],
    ['01.1.1.1', undefined, undefined],
    ['1.1.1', undefined, undefined],
    ['1::2::3', undefined, undefined],
    ['1:2:3:4:5:6:7:8:9', undefined, undefined],
    ['12345::', undefined, undefined],
    ['hello', undefined, undefined],
    ['', undefined, undefined],
  ]
  for (const [s, family, value] of cases) {
    const a = parseAddress(s)
    t.same(a && { family: a.family, value: a.value }, family === undefined ? undefined : { family, value }, s)
  }
})

t.test('CIDR blocks', async (t) => {
  const ok: [string, Partial<Cidr>][] = [
    ['10.0.0.0/8', { family: 4, bits: 8, value: 0x0a000000 }],
    ['0.0.0.0/0', { family: 4, bits: 0, value: 0 }],
    ['192.0.2.7', { family: 4, bits: 32 }],
    ['2001:db8::/32', { family: 6, bits: 32 }],
    ['::ffff:10.0.0.0/104', { family: 4, bits: 8, value: 0x0a000000 }],
  ]
  for (const [s, want] of ok) t.match(parseCidr(s), want, s)
  for (const bad of [
    '10.0.0.1/8',
    '10.0.0.0/33',
    '10.0.0.0/-1',
    '10.0.0.0/',
    'x/8',
    '2001:db8::1/32',
    '2001:db8::/129',
    42,
    '',
  ])
    t.type(parseCidr(bad), 'string', `refused: ${String(bad)}`)
})

t.test('longest-prefix match, IPv4 and IPv6', async (t) => {
  const table = new PrefixTable<string>()
  for (const [c, v] of [
    ['0.0.0.0/0', 'world'],
    ['10.0.0.0/8', 'ten'],
    ['10.1.0.0/16', 'ten-one'],
    ['10.1.2.0/24', 'ten-one-two'],
    ['10.1.2.3/32', 'host'],
    ['2001:db8::/32', 'doc'],
    ['2001:db8:1::/48', 'doc-1'],
  ] as const)
    t.ok(table.insert(parseCidr(c) as Cidr, v))
  t.notOk(table.insert(parseCidr('10.0.0.0/8') as Cidr, 'again'), 'duplicate refused')
  const want: [string, string | undefined][] = [
    ['10.1.2.3', 'host'],
    ['10.1.2.4', 'ten-one-two'],
    ['10.1.3.1', 'ten-one'],
    ['10.200.0.1', 'ten'],
    ['192.0.2.1', 'world'],
    ['::ffff:10.1.2.9', 'ten-one-two'],
    ['2001:db8:1:2::5', 'doc-1'],
    ['2001:db8:2::5', 'doc'],
    ['2001:db9::1', undefined],
  ]
  for (const [a, v] of want) t.equal(table.lookup(parseAddress(a)!), v, a)
  t.equal(table.size, 7)
})

t.test('a zones file with many problems is refused listing every one', async (t) => {
  try {
    parseZones({
      regions: { rome: { lat: 41.9, lon: 12.5 }, nowhere: { lat: 91, lon: 0 } },
      zones: [
        { cidr: '10.1.0.0/16', region: 'rome' },
        { cidr: '10.1.0.0/16', region: 'rome' },
        { cidr: '10.2.0.1/16', region: 'rome' },
        { cidr: 'banana', region: 'rome' },
        { cidr: '10.3.0.0/16', region: 'atlantis' },
        { cidr: '10.4.0.0/16', lat: 12 },
        { cidr: '10.5.0.0/16' },
        'junk',
      ],
      extra: true,
    })
    t.fail('should throw')
  } catch (err) {
    t.ok(isCdnError(err))
    const problems = (err as { details: { problems: string[] } }).details.problems
    t.equal(problems.length, 9, problems.join('\n'))
    for (const frag of [
      '/extra: unknown key',
      '/regions/nowhere/lat: must be <= 90 (got 91)',
      '/zones/1/cidr: duplicate block 10.1.0.0/16',
      '/zones/2/cidr: "10.2.0.1/16" has host bits set',
      '/zones/3/cidr: "banana" is not a valid IPv4 address',
      '/zones/4/region: unknown region "atlantis"',
      '/zones/5/lon: required with lat',
      '/zones/6: needs a region or lat and lon',
      '/zones/7: must be object (got "junk")',
    ])
      t.ok(
        problems.some((p) => p.startsWith(frag)),
        frag,
      )
  }
})

t.test('zones: inline lat/lon with a region name define that region', async (t) => {
  const z = parseZones({ zones: [{ cidr: '2001:db8::/32', lat: 40.7, lon: -74, region: 'new-york' }] })
  t.same(z.regions.get('new-york'), { name: 'new-york', lat: 40.7, lon: -74, region: 'new-york' })
  t.same(z.table.lookup(parseAddress('2001:db8::9')!), { lat: 40.7, lon: -74, region: 'new-york' })
})

t.test('client address: X-Forwarded-For only from trusted proxies', async (t) => {
  const trusted = [parseCidr('127.0.0.0/8') as Cidr, parseCidr('10.255.0.0/16') as Cidr]
  const cases: [string, string | undefined, string | undefined][] = [
    // socket, XFF, expected client
    ['203.0.113.9', '10.1.2.3', '203.0.113.9'], // spoofed XFF from an untrusted socket: ignored
    ['127.0.0.1', '10.1.2.3', '10.1.2.3'],
    ['127.0.0.1', '6.6.6.6, 10.1.2.3', '10.1.2.3'], // leftmost is the client's word: not believed
    ['127.0.0.1', '10.1.2.3, 10.255.0.7', '10.1.2.3'], // skip a trusted hop
    ['127.0.0.1', '10.255.0.8, 10.255.0.7', '10.255.0.8'], // all trusted: the leftmost
    ['127.0.0.1', 'garbage, 10.1.2.3', '10.1.2.3'],
    ['127.0.0.1', '10.1.2.3, garbage', '127.0.0.1'], // a proxy wrote junk: stop at the proxy
    ['::ffff:127.0.0.1', '2001:db8::5', '2001:db8::5'],
    ['127.0.0.1', undefined, '127.0.0.1'],
    // A hop with the port a proxy added, or a bracketed IPv6: the address.
    ['127.0.0.1', '10.1.2.3:51234', '10.1.2.3'],
    ['127.0.0.1', '[2001:db8::5]:443', '2001:db8::5'],
    ['127.0.0.1', '[2001:db8::5]', '2001:db8::5'],
    ['127.0.0.1', '10.1.2.3:51234, 10.255.0.7:80', '10.1.2.3'],
    ['127.0.0.1', '10.1.2.3:99999', '127.0.0.1'], // not a port: junk, stop at the proxy
  ]
  for (const [sock, xff, want] of cases) {
    const got = clientAddress(sock, xff, trusted)
    t.same(got, parseAddress(want!), `${sock} XFF=${xff}`)
  }
  t.same(clientAddress('127.0.0.1', '10.1.2.3', []), parseAddress('127.0.0.1'), 'no proxies configured')
  t.same(
    clientAddress('127.0.0.1', ['10.9.9.9', '10.1.2.3'], trusted),
    parseAddress('10.1.2.3'),
    'repeated headers',
  )
})

t.test('locate: overrides, zones, default', async (t) => {
  const zones = parseZones({
    regions: { rome: { lat: 41.9, lon: 12.5 } },
    zones: [{ cidr: '10.1.0.0/16', region: 'rome' }],
  })
  const fallback = { lat: 1, lon: 2 }
  const a = parseAddress('10.1.2.3')
  t.same(locate({}, a, zones, fallback), {
    location: { name: 'rome', lat: 41.9, lon: 12.5, region: 'rome' },
    source: 'zone',
  })
  t.same(locate({}, parseAddress('8.8.8.8'), zones, fallback), { location: fallback, source: 'default' })
  t.same(locate({ lat: '40.5', lon: '-73' }, a, zones, fallback), {
    location: { lat: 40.5, lon: -73 },
    source: 'query',
  })
  t.equal(locate({ region: 'rome' }, undefined, zones, fallback).source, 'region')
  t.same(
    locate({ lat: '1e-7', lon: '-.5' }, a, zones, fallback).location,
    { lat: 1e-7, lon: -0.5 },
    'as JS prints numbers',
  )
  for (const q of [
    { region: 'mars' },
    { lat: '95', lon: '0' },
    { lat: '1' },
    { lat: 'x', lon: '1' },
    { lat: '', lon: '' },
    { lat: '0x10', lon: '1' },
    { lat: 'Infinity', lon: '1' },
    { lat: ' 1', lon: '1' },
  ])
    t.throws(() => locate(q, a, zones, fallback), { code: 'CDN_ERR_BAD_REQUEST' }, JSON.stringify(q))
})

t.test('the range index agrees with a brute-force longest match on random nested blocks', async (t) => {
  let seed = 42
  const rnd = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0
    return seed / 2 ** 32
  }
  const table = new PrefixTable<number>()
  const blocks: Cidr[] = []
  const base = [parseCidr('10.0.0.0/8') as Cidr, parseCidr('2001:db8::/32') as Cidr]
  for (let i = 0; blocks.length < 400; i++) {
    const fam = rnd() < 0.6 ? 0 : 1
    const parent = base[fam]!
    const bits = parent.bits + 1 + Math.floor(rnd() * (fam === 0 ? 20 : 40))
    const a =
      fam === 0
        ? ((parent.value as number) | Math.floor(rnd() * 2 ** 24)) >>> 0
        : (parent.value as bigint) |
          (BigInt(Math.floor(rnd() * 2 ** 30)) << 66n) |
          BigInt(Math.floor(rnd() * 2 ** 30))
    const c =
      fam === 0
        ? ({
            family: 4,
            bits,
            value: Number((BigInt(a as number) >> BigInt(32 - bits)) << BigInt(32 - bits)),
          } as Cidr)
        : ({ family: 6, bits, value: ((a as bigint) >> BigInt(128 - bits)) << BigInt(128 - bits) } as Cidr)
    if (table.insert(c, blocks.length)) blocks.push(c)
  }
  table.insert(base[0]!, -1)
  blocks.push(base[0]!)
  const brute = (a: ReturnType<typeof parseAddress>) => {
    let best: number | undefined
    let bestBits = -1
    blocks.forEach((c, i) => {
      if (c.bits > bestBits && cidrContains(c, a!)) {
        best = i === blocks.length - 1 ? -1 : i
        bestBits = c.bits
      }
    })
    return best
  }
  let mismatches = 0
  for (let i = 0; i < 3000; i++) {
    const c = blocks[Math.floor(rnd() * blocks.length)]!
    // Addresses inside a block, at its edges, and just outside it.
    const span = c.family === 4 ? 2 ** (32 - c.bits) : 2n ** BigInt(128 - c.bits)
    const pick = Math.floor(rnd() * 4)
    let a: ReturnType<typeof parseAddress>
    if (c.family === 4) {
      const v =
        (c.value as number) +
        [0, (span as number) - 1, Math.floor(rnd() * (span as number)), span as number][pick]!
      a = { family: 4, value: v % 2 ** 32 }
    } else {
      const v =
        (c.value as bigint) + [0n, (span as bigint) - 1n, (span as bigint) / 3n, span as bigint][pick]!
      a = { family: 6, value: v }
    }
    if (table.lookup(a) !== brute(a)) mismatches++
  }
  t.equal(mismatches, 0)
})

t.test('zones: a bad region name is named by its path', async (t) => {
  t.throws(() => parseZones({ regions: { 'no/slash!': { lat: 1, lon: 1 } }, zones: [] }), {
    code: 'CDN_ERR_CONFIG',
    message: /\/regions\/no~1slash!: bad key, expected a region name/,
  })
  t.throws(() => parseZones({ regions: { rome: { lat: 1, lon: 1, alt: 3 } } }), {
    code: 'CDN_ERR_CONFIG',
    details: { problems: ['/zones: required', '/regions/rome/alt: unknown key'] },
  })
})
