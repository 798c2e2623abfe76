/**
 * Effect metrics of a daemon. The hot path only bumps plain counters in the
 * engine; a metrics fiber publishes them once a second (and at shutdown), so
 * observing costs nothing per message.
 *
 * @module
 */
import { Effect, Metric } from "effect"
import type { EngineStats } from "./engine.ts"

/**
 * The daemon's metrics: gauges for what is now, counters for running totals.
 *
 * @since 0.1.0
 * @category metrics
 */
export interface DaemonMetricSet {
  /** Operational sessions (`spreadfx_daemon_sessions`). */
  readonly sessions: Metric.Metric.Gauge<number>
  /** Non-empty groups (`spreadfx_daemon_groups`). */
  readonly groups: Metric.Metric.Gauge<number>
  /** Multicasts received (`spreadfx_daemon_messages_in`). */
  readonly messagesIn: Metric.Metric.Counter<number>
  /** Bytes of the multicasts received (`spreadfx_daemon_bytes_in`). */
  readonly bytesIn: Metric.Metric.Counter<number>
  /** Frames queued to sessions (`spreadfx_daemon_messages_out`). */
  readonly messagesOut: Metric.Metric.Counter<number>
  /** Bytes queued to sessions (`spreadfx_daemon_bytes_out`). */
  readonly bytesOut: Metric.Metric.Counter<number>
  /** Sessions cut off as slow readers (`spreadfx_daemon_sessions_cut_off`). */
  readonly cutOff: Metric.Metric.Counter<number>
  /**
   * The deepest session outbox, in frames, since the previous publication
   * (`spreadfx_daemon_outbox_depth_max`).
   */
  readonly outboxDepth: Metric.Metric.Gauge<number>
}

/**
 * The daemon's metrics, by name.
 *
 * @since 0.1.0
 * @category metrics
 */
export const DaemonMetrics: DaemonMetricSet = {
  sessions: Metric.gauge("spreadfx_daemon_sessions", { description: "Operational sessions" }),
  groups: Metric.gauge("spreadfx_daemon_groups", { description: "Non-empty groups" }),
  messagesIn: Metric.counter("spreadfx_daemon_messages_in", { description: "Multicasts received" }),
  bytesIn: Metric.counter("spreadfx_daemon_bytes_in", { description: "Multicast bytes received" }),
  messagesOut: Metric.counter("spreadfx_daemon_messages_out", { description: "Frames queued to sessions" }),
  bytesOut: Metric.counter("spreadfx_daemon_bytes_out", { description: "Bytes queued to sessions" }),
  cutOff: Metric.counter("spreadfx_daemon_sessions_cut_off", { description: "Sessions cut off as slow readers" }),
  outboxDepth: Metric.gauge("spreadfx_daemon_outbox_depth_max", {
    description: "Deepest session outbox since the previous publication (frames)",
  }),
}

/**
 * Publishes the change since the last call.
 *
 * @since 0.1.0
 * @category metrics
 */
export const publish = (
  now: EngineStats,
  last: EngineStats,
  outboxDepth: number,
): Effect.Effect<void> =>
  Effect.all([
    Metric.set(DaemonMetrics.sessions, now.sessions),
    Metric.set(DaemonMetrics.groups, now.groups),
    Metric.incrementBy(DaemonMetrics.messagesIn, now.messagesIn - last.messagesIn),
    Metric.incrementBy(DaemonMetrics.bytesIn, now.bytesIn - last.bytesIn),
    Metric.incrementBy(DaemonMetrics.messagesOut, now.messagesOut - last.messagesOut),
    Metric.incrementBy(DaemonMetrics.bytesOut, now.bytesOut - last.bytesOut),
    Metric.incrementBy(DaemonMetrics.cutOff, now.cutOff - last.cutOff),
    Metric.set(DaemonMetrics.outboxDepth, outboxDepth),
  ], { discard: true })
