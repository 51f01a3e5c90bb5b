/**
 * hls.js errors in words for the player page. hls.js reports many non-fatal errors while it
 * recovers by itself (a segment retried, a stall nudged past): those are warnings a viewer can
 * read, not red lines of codes. Fatal ones say what stopped and why.
 */
const PHRASES = {
  manifestLoadError: 'the master playlist could not be loaded',
  manifestLoadTimeOut: 'the master playlist took too long to arrive',
  manifestParsingError: 'the master playlist could not be read',
  levelLoadError: 'a rendition playlist could not be loaded',
  levelLoadTimeOut: 'a rendition playlist took too long to arrive',
  levelParsingError: 'a rendition playlist could not be read',
  audioTrackLoadError: 'the audio playlist could not be loaded',
  audioTrackLoadTimeOut: 'the audio playlist took too long to arrive',
  fragLoadError: 'a segment could not be loaded',
  fragLoadTimeOut: 'a segment took too long to arrive',
  fragParsingError: 'a segment could not be read',
  fragGap: 'a segment is missing from the playlist',
  keyLoadError: 'a decryption key could not be loaded',
  bufferStalledError: 'playback stalled: the buffer ran dry while waiting for data',
  bufferNudgeOnStall: 'playback was stuck and was nudged forward',
  bufferSeekOverHole: 'skipped a small gap in the buffered media',
  bufferAppendError: 'the browser refused a piece of media',
  bufferFullError: 'the buffer is full; loading paused',
  levelSwitchError: 'switching rendition failed',
  steeringManifestLoadError: 'the content-steering manifest could not be loaded',
  internalException: 'the player hit an internal error',
}

/** "fooBarError" → "foo bar error" for details without a phrase of their own. */
const spaced = (s) =>
  String(s ?? 'unknown problem')
    .replace(/([a-z])([A-Z])/g, '$1 $2')
    .toLowerCase()

/** One sentence for an hls.js ERROR event's data. */
export function describeError(d) {
  const what = PHRASES[d.details] ?? spaced(d.details)
  const code = d.response?.code
  const why =
    code === 0
      ? ' (no answer: connection refused, reset or blocked)'
      : code !== undefined
        ? ` (HTTP ${code})`
        : d.error?.message && !PHRASES[d.details]
          ? ` (${d.error.message})`
          : ''
  const then = d.fatal ? '' : '; retrying'
  return `${what[0].toUpperCase()}${what.slice(1)}${why}${then}.`
}
