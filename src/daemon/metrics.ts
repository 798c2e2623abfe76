/**
 * Effect metrics of a daemon. The hot path only bumps plain counters in the
 * engine; a metrics fiber publishes them once a second (and at shutdown), so
 * observing costs nothing per message. Every daemon publishes under its own
 * `daemon` tag (its name), so two daemons in one process never overwrite
 * each other's figures.
 *
 * @module
 */
import { Effect, Metric, MetricState, type Scope } from "effect"
import type { EngineStats } from "./engine.ts"
import { DaemonError } from "./errors.ts"

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
  /** Joins refused with a REJECT (`spreadfx_daemon_joins_refused`). */
  readonly joinsRefused: Metric.Metric.Counter<number>
  /**
   * The deepest session outbox, in frames, since the previous publication
   * (`spreadfx_daemon_outbox_depth_max`).
   */
  readonly outboxDepth: Metric.Metric.Gauge<number>
}

/**
 * The daemon's metrics by name, untagged. A daemon publishes them tagged
 * `daemon=<its name>`: read a daemon's figures with {@link daemonMetrics}
 * or `Daemon.metrics`.
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
  joinsRefused: Metric.counter("spreadfx_daemon_joins_refused", { description: "Joins refused with a REJECT" }),
  outboxDepth: Metric.gauge("spreadfx_daemon_outbox_depth_max", {
    description: "Deepest session outbox since the previous publication (frames)",
  }),
}

/**
 * The metrics of the daemon named `name` (each tagged `daemon=<name>`).
 *
 * @since 0.1.0
 * @category metrics
 */
export const daemonMetrics = (name: string): DaemonMetricSet => {
  const m = DaemonMetrics
  const tag = "daemon"
  return {
    sessions: Metric.tagged(m.sessions, tag, name),
    groups: Metric.tagged(m.groups, tag, name),
    messagesIn: Metric.tagged(m.messagesIn, tag, name),
    bytesIn: Metric.tagged(m.bytesIn, tag, name),
    messagesOut: Metric.tagged(m.messagesOut, tag, name),
    bytesOut: Metric.tagged(m.bytesOut, tag, name),
    cutOff: Metric.tagged(m.cutOff, tag, name),
    joinsRefused: Metric.tagged(m.joinsRefused, tag, name),
    outboxDepth: Metric.tagged(m.outboxDepth, tag, name),
  }
}

/**
 * Publishes the change since the last call to `metrics`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const publish = (
  metrics: DaemonMetricSet,
  now: EngineStats,
  last: EngineStats,
  outboxDepth: number,
): Effect.Effect<void> =>
  Effect.all([
    Metric.set(metrics.sessions, now.sessions),
    Metric.set(metrics.groups, now.groups),
    Metric.incrementBy(metrics.messagesIn, now.messagesIn - last.messagesIn),
    Metric.incrementBy(metrics.bytesIn, now.bytesIn - last.bytesIn),
    Metric.incrementBy(metrics.messagesOut, now.messagesOut - last.messagesOut),
    Metric.incrementBy(metrics.bytesOut, now.bytesOut - last.bytesOut),
    Metric.incrementBy(metrics.cutOff, now.cutOff - last.cutOff),
    Metric.incrementBy(metrics.joinsRefused, now.joinsRefused - last.joinsRefused),
    Metric.set(metrics.outboxDepth, outboxDepth),
  ], { discard: true })

const escapeLabel = (v: string): string => v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"')

/**
 * Every counter and gauge in the metric registry whose name starts with
 * `spreadfx_`, in the Prometheus text exposition format (version 0.0.4),
 * each with its `# HELP` and `# TYPE` line and its tags as labels.
 *
 * @since 0.1.0
 * @category metrics
 */
export const prometheusText: Effect.Effect<string> = Effect.map(Metric.snapshot, (pairs) => {
  const families = new Map<string, { type: string; help: string; lines: Array<string> }>()
  for (const { metricKey, metricState } of pairs) {
    const name = metricKey.name
    if (!name.startsWith("spreadfx_")) continue
    let type: string
    let value: number
    if (MetricState.isCounterState(metricState)) {
      type = "counter"
      value = Number(metricState.count)
    } else if (MetricState.isGaugeState(metricState)) {
      type = "gauge"
      value = Number(metricState.value)
    } else {
      continue
    }
    const labels = metricKey.tags.map((t) => `${t.key}="${escapeLabel(t.value)}"`).join(",")
    const help = metricKey.description._tag === "Some" ? metricKey.description.value : name
    const family = families.get(name) ?? { type, help, lines: [] }
    family.lines.push(`${name}${labels.length > 0 ? `{${labels}}` : ""} ${value}`)
    families.set(name, family)
  }
  let out = ""
  for (const [name, f] of [...families].sort(([a], [b]) => a < b ? -1 : 1)) {
    out += `# HELP ${name} ${f.help.replace(/\n/g, " ")}\n# TYPE ${name} ${f.type}\n${f.lines.sort().join("\n")}\n`
  }
  return out
})

/**
 * Where {@link serveMetrics} listens.
 *
 * @since 0.1.0
 * @category models
 */
export interface MetricsEndpoint {
  /** The interface; `127.0.0.1` unless told (the metrics are not for the world). */
  readonly host: string
  /** The bound port (the real one when asked for 0). */
  readonly port: number
}

/**
 * Serves {@link prometheusText} over HTTP at `/metrics` (anything else is a
 * 404) until the scope closes. Opt-in, and on loopback by default.
 *
 * @since 0.1.0
 * @category metrics
 */
export const serveMetrics = (
  options: { readonly port: number; readonly host?: string },
): Effect.Effect<MetricsEndpoint, DaemonError, Scope.Scope> =>
  Effect.gen(function* () {
    const host = options.host ?? "127.0.0.1"
    const runPromise = Effect.runPromise
    const server = yield* Effect.acquireRelease(
      Effect.try({
        try: () =>
          Deno.serve({ hostname: host, port: options.port, onListen: () => {} }, (req) => {
            if (new URL(req.url).pathname !== "/metrics") return new Response("not found\n", { status: 404 })
            return runPromise(prometheusText).then((text) =>
              new Response(text, { headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" } })
            )
          }),
        catch: (cause) =>
          new DaemonError({
            reason: "ListenFailed",
            detail: `cannot serve metrics on ${host}:${options.port}${
              cause instanceof Error ? `: ${cause.message}` : ""
            }`,
            cause,
          }),
      }),
      (s) => Effect.promise(() => s.shutdown()).pipe(Effect.timeout(1000), Effect.ignore),
    )
    return { host, port: server.addr.port }
  })
