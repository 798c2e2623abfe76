/**
 * A connection's gauges: the running totals its fibers keep, and the two
 * readings taken from them — the {@link ConnectionStats} snapshot that
 * `stats` answers and the sample the metrics publisher turns into metric
 * updates (observability.ts).
 *
 * The totals are plain numbers bumped in place (per read by the reader, per
 * write by the writer), never an Effect per message; the readings add what
 * the buffer, window, inbound buffer, router and reassembly count
 * themselves. Both readings take `sent` and `received` the same way, so
 * the metrics and `stats` agree.
 *
 * @module
 */
import type { Reassembly } from "./fragments.ts"
import type { Inbound } from "./inbound.ts"
import type { ConnectionStats } from "./model.ts"
import type { MetricSample } from "./observability.ts"
import type { Outbound } from "./outbound.ts"
import type { ReadCounters } from "./receive.ts"
import type { Router } from "./router.ts"
import type { FlowControl } from "./window.ts"

/**
 * The running totals of one connection, across its sessions.
 *
 * @since 0.2.0
 * @category models
 */
export class Counters implements ReadCounters {
  /** Messages the reader handed on (those the router routed are counted there). */
  received = 0
  /** Socket reads. */
  reads = 0
  /** Bytes read from the socket. */
  bytes = 0
  /** Bytes handed to the socket. */
  bytesWritten = 0
  /** Sessions replaced after a loss. */
  reconnects = 0
  /** Frames queued through the buffers of earlier sessions. */
  sentBefore = 0
  /** Writes made from the buffers of earlier sessions. */
  writesBefore = 0
}

/**
 * Where the readings come from; `out` and `flow` are the buffer and window
 * the senders use now.
 *
 * @since 0.2.0
 * @category models
 */
export interface StatsSources {
  readonly out: Outbound
  readonly flow: FlowControl
  readonly inbound: Inbound
  readonly router: Router
  readonly reassembly: Reassembly
  readonly counters: Counters
}

/**
 * The gauges now.
 *
 * @since 0.2.0
 * @category constructors
 */
export const statsOf = (s: StatsSources): ConnectionStats => {
  const { counters, flow, inbound, out, reassembly, router } = s
  return {
    window: flow.window,
    windowCapacity: flow.capacity,
    windowInUse: flow.inUse,
    windowPeak: flow.peakInUse,
    inFlight: flow.inFlight,
    inFlightPeak: flow.peakInFlight,
    inbound: inbound.buffered,
    inboundCapacity: inbound.capacity,
    slowConsumer: inbound.health === "Slow",
    slowConsumerEvents: inbound.slowEvents,
    outboxMessages: out.frames,
    outboxBytes: out.bytes,
    sendersWaiting: out.waiting + flow.waiting,
    sent: sentOf(s),
    received: receivedOf(s),
    subscribers: router.subscribers,
    pendingRequests: router.pendingRequests,
    lateReplies: router.lateReplies,
    largeMessagesAssembled: reassembly.stats.assembled,
    largeMessagesDropped: reassembly.stats.dropped,
    reassemblyBytes: reassembly.stats.pendingBytes,
    reads: counters.reads,
    bytesRead: counters.bytes,
    bytesWritten: counters.bytesWritten,
    writes: counters.writesBefore + out.writes,
    reconnects: counters.reconnects,
  }
}

/**
 * What the metrics publisher samples now.
 *
 * @since 0.2.0
 * @category constructors
 */
export const metricSampleOf = (s: StatsSources): MetricSample => ({
  sent: sentOf(s),
  bytesSent: s.counters.bytesWritten,
  received: receivedOf(s),
  bytesReceived: s.counters.bytes,
  windowInUse: s.flow.inUse,
  inbound: s.inbound.buffered,
  reconnects: s.counters.reconnects,
})

// Frames queued so far, through this buffer and the earlier sessions' ones.
const sentOf = (s: StatsSources): number => s.counters.sentBefore + s.out.framesQueued

// Messages received so far, those routed to subscriptions and requests included.
const receivedOf = (s: StatsSources): number => s.counters.received + s.router.routed
