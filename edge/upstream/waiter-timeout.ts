/**
 * A client waiting for a fetch's headers gives up after --waiter-timeout (the fetch goes on for
 * the others); whichever answer comes first disarms it.
 */
import { CdnError } from '../../src/errors.js'
import type { Flight, FlightSink } from './flight.js'

export function armWaiterTimeout(flight: Flight, sink: FlightSink, waiterTimeout: number): void {
  const timer = setTimeout(() => {
    if (flight.state !== 'waiting' || !flight.sinks.has(sink)) return
    flight.leave(sink)
    sink.error(new CdnError('CDN_ERR_UPSTREAM_TIMEOUT', 'timed out waiting for the upstream'), false, flight)
  }, waiterTimeout)
  timer.unref()
  const wrapped = sink.headers.bind(sink)
  sink.headers = (f) => {
    clearTimeout(timer)
    wrapped(f)
  }
  const wrappedErr = sink.error.bind(sink)
  sink.error = (e, a, f) => {
    clearTimeout(timer)
    wrappedErr(e, a, f)
  }
  const wrappedEntry = sink.entry.bind(sink)
  sink.entry = (e, o, f) => {
    clearTimeout(timer)
    wrappedEntry(e, o, f)
  }
}
