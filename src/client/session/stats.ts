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
import type { Reassembly } from "../features/reassembly.ts"
import type { Inbound } from "../core/inbound.ts"
import type { FlowWindow } from "../options.ts"
import type { MetricSample } from "../core/observability.ts"
import type { ReadCounters } from "./reader.ts"
import type { Router } from "../features/router.ts"
import type { Sender } from "../admission/send.ts"

/**
 * Gauges of a connection.
 *
 * @since 0.1.0
 * @category models
 */
export interface ConnectionStats {
  /** The flow window in force. */
  readonly window: FlowWindow
  /** Permits of the flow window (0 when it is off). */
  readonly windowCapacity: number
  /** Permits held by own messages in flight. */
  readonly windowInUse: number
  /**
   * The highest `windowInUse` so far (of the current session, after a
   * reconnect); never above `windowCapacity`.
   */
  readonly windowPeak: number
  /** Own counted messages in flight (multicast and not yet received back). */
  readonly inFlight: number
  /** The highest `inFlight` so far (of the current session, after a reconnect). */
  readonly inFlightPeak: number
  /**
   * Messages decoded and not yet taken by a receiver: at most the capacity
   * plus the rest of the one read the reader is waiting to hand over.
   */
  readonly inbound: number
  /** Capacity of the inbound buffer, in messages. */
  readonly inboundCapacity: number
  /** Whether the consumer was last seen falling behind. */
  readonly slowConsumer: boolean
  /** How many `SlowConsumer` events were published. */
  readonly slowConsumerEvents: number
  /** Frames encoded for the writer and not yet handed to the socket. */
  readonly outboxMessages: number
  /** Bytes queued for the writer and not yet written. */
  readonly outboxBytes: number
  /** Senders waiting their turn to be admitted (for window credit or outbox space). */
  readonly sendersWaiting: number
  /** Frames queued so far (multicasts, joins, leaves). */
  readonly sent: number
  /** Messages received so far (those that went to subscriptions and requests included). */
  readonly received: number
  /** Running `subscribe` streams. */
  readonly subscribers: number
  /** Requests waiting for replies. */
  readonly pendingRequests: number
  /** Replies that came after their request had ended (dropped). */
  readonly lateReplies: number
  /** Large messages received in fragments and delivered whole. */
  readonly largeMessagesAssembled: number
  /** Large messages dropped partway (out of order, over a bound, or their sender left). */
  readonly largeMessagesDropped: number
  /** Bytes held by large messages partly received. */
  readonly reassemblyBytes: number
  /** Socket reads so far (each decoded as a batch). */
  readonly reads: number
  /** Socket writes so far (each a coalesced batch of frames). */
  readonly writes: number
  /** Bytes read from the socket so far. */
  readonly bytesRead: number
  /** Bytes handed to the socket so far. */
  readonly bytesWritten: number
  /** Sessions replaced after a loss so far (with the `reconnect` option). */
  readonly reconnects: number
}

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
  /** Its target is the buffer and window senders use now. */
  readonly sender: Sender
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
  const { counters, inbound, reassembly, router, sender } = s
  const { flow, out } = sender.target
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
    sendersWaiting: sender.waiting,
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
  windowInUse: s.sender.target.flow.inUse,
  inbound: s.inbound.buffered,
  reconnects: s.counters.reconnects,
})

// Frames queued so far, through this buffer and the earlier sessions' ones.
const sentOf = (s: StatsSources): number => s.counters.sentBefore + s.sender.target.out.framesQueued

// Messages received so far, those routed to subscriptions and requests included.
const receivedOf = (s: StatsSources): number => s.counters.received + s.router.routed
