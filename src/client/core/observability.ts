/**
 * Effect metrics of client connections. The hot path only bumps plain
 * counters (per frame in the sender, per socket read and write in the
 * reader and writer); a publisher fiber per connection turns them into
 * metric updates once a second and once more when the connection ends, so
 * observing costs nothing per message. Every metric is tagged with the
 * connection's private group (`spread.connection`).
 *
 * Spans: `spread.connect`, `spread.join`, `spread.leave`, `spread.request`,
 * `spread.requestMany`, `spread.respond` (one per request answered) and
 * `spread.reconnect` (one per lost session, over its attempts) —
 * not one per multicast.
 *
 * @module
 */
import { Duration, Effect, Metric, Schedule } from "effect"

/**
 * The client's metrics: counters for running totals, gauges for what is now.
 *
 * @since 0.2.0
 * @category metrics
 */
export interface ClientMetricSet {
  /** Frames queued to the daemon: multicasts, joins, leaves (`spreadfx_client_messages_sent`). */
  readonly messagesSent: Metric.Metric.Counter<number>
  /** Bytes written to the daemon (`spreadfx_client_bytes_sent`). */
  readonly bytesSent: Metric.Metric.Counter<number>
  /** Messages received, data and membership (`spreadfx_client_messages_received`). */
  readonly messagesReceived: Metric.Metric.Counter<number>
  /** Bytes read from the daemon (`spreadfx_client_bytes_received`). */
  readonly bytesReceived: Metric.Metric.Counter<number>
  /** Flow-window permits held by own messages in flight (`spreadfx_client_window_in_use`). */
  readonly windowInUse: Metric.Metric.Gauge<number>
  /** Messages waiting in the shared inbound buffer (`spreadfx_client_inbound_depth`). */
  readonly inboundDepth: Metric.Metric.Gauge<number>
  /** Lost sessions replaced by new ones (`spreadfx_client_reconnects`). */
  readonly reconnects: Metric.Metric.Counter<number>
}

/**
 * The client's metrics, by name (untagged; each connection's updates carry
 * its `spread.connection` tag).
 *
 * @since 0.2.0
 * @category metrics
 */
export const ClientMetrics: ClientMetricSet = {
  messagesSent: Metric.counter("spreadfx_client_messages_sent", {
    description: "Frames queued to the daemon (multicasts, joins, leaves)",
  }),
  bytesSent: Metric.counter("spreadfx_client_bytes_sent", { description: "Bytes written to the daemon" }),
  messagesReceived: Metric.counter("spreadfx_client_messages_received", { description: "Messages received" }),
  bytesReceived: Metric.counter("spreadfx_client_bytes_received", { description: "Bytes read from the daemon" }),
  windowInUse: Metric.gauge("spreadfx_client_window_in_use", {
    description: "Flow-window permits held by own messages in flight",
  }),
  inboundDepth: Metric.gauge("spreadfx_client_inbound_depth", {
    description: "Messages waiting in the shared inbound buffer",
  }),
  reconnects: Metric.counter("spreadfx_client_reconnects", {
    description: "Lost sessions replaced by new ones",
  }),
}

/**
 * The tag every metric update of a connection carries.
 *
 * @since 0.2.0
 * @category metrics
 */
export const CONNECTION_TAG = "spread.connection"

/**
 * What the publisher samples.
 *
 * @since 0.2.0
 * @category models
 */
export interface MetricSample {
  /** Frames queued so far. */
  readonly sent: number
  /** Bytes written so far. */
  readonly bytesSent: number
  /** Messages received so far. */
  readonly received: number
  /** Bytes read so far. */
  readonly bytesReceived: number
  /** Window permits held now. */
  readonly windowInUse: number
  /** Messages in the shared inbound buffer now. */
  readonly inbound: number
  /** Reconnects so far (0 when absent). */
  readonly reconnects?: number
}

/**
 * A fiber body that publishes the change in `sample()` every `interval`,
 * and once more when interrupted (the connection's end).
 *
 * @since 0.2.0
 * @category metrics
 */
export const publishMetrics = (
  connection: string,
  sample: () => MetricSample,
  interval: Duration.DurationInput = Duration.seconds(1),
): Effect.Effect<void> => {
  const tag = <T, I, O>(m: Metric.Metric<T, I, O>) => Metric.tagged(m, CONNECTION_TAG, connection)
  const sent = tag(ClientMetrics.messagesSent)
  const bytesSent = tag(ClientMetrics.bytesSent)
  const received = tag(ClientMetrics.messagesReceived)
  const bytesReceived = tag(ClientMetrics.bytesReceived)
  const windowInUse = tag(ClientMetrics.windowInUse)
  const inbound = tag(ClientMetrics.inboundDepth)
  const reconnects = tag(ClientMetrics.reconnects)
  let last: MetricSample = { sent: 0, bytesSent: 0, received: 0, bytesReceived: 0, windowInUse: 0, inbound: 0 }
  const publish = Effect.suspend(() => {
    const now = sample()
    const before = last
    last = now
    return Effect.all([
      Metric.incrementBy(sent, now.sent - before.sent),
      Metric.incrementBy(bytesSent, now.bytesSent - before.bytesSent),
      Metric.incrementBy(received, now.received - before.received),
      Metric.incrementBy(bytesReceived, now.bytesReceived - before.bytesReceived),
      Metric.set(windowInUse, now.windowInUse),
      Metric.set(inbound, now.inbound),
      Metric.incrementBy(reconnects, (now.reconnects ?? 0) - (before.reconnects ?? 0)),
    ], { discard: true })
  })
  return publish.pipe(
    Effect.repeat(Schedule.spaced(interval)),
    Effect.asVoid,
    Effect.ensuring(publish),
  )
}
