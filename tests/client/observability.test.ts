import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Metric, type MetricState, Scope, Tracer } from "effect"
import { connect } from "../../src/client/connection.ts"
import { ClientMetrics, CONNECTION_TAG } from "../../src/client/core/observability.ts"
import { sleep, startDaemon } from "./_fixtures.ts"
import { daemonAndClients } from "../_helpers/clients.ts"

/** A tracer that records the name of every span, passing spans on to `base`. */
const recording = (base: Tracer.Tracer, names: Array<string>): Tracer.Tracer =>
  Tracer.make({
    span: (name, parent, context, links, startTime, kind, options) => {
      names.push(name)
      return base.span(name, parent, context, links, startTime, kind, options)
    },
    context: base.context,
  })

const counterOf = (m: Metric.Metric.Counter<number>, connection: string) =>
  Effect.map(
    Metric.value(Metric.tagged(m, CONNECTION_TAG, connection)),
    (s: MetricState.MetricState.Counter<number>) => s.count,
  )

describe("client observability", () => {
  it.scopedLive("spans for connect, join, leave and request — none per multicast", () =>
    Effect.gen(function* () {
      const d = yield* startDaemon()
      const names: Array<string> = []
      const tracer = recording(yield* Effect.tracer, names)
      yield* Effect.gen(function* () {
        const a = yield* connect({ daemon: d.spreadName, name: "alice" })
        yield* a.join("g")
        for (let i = 0; i < 50; i++) yield* a.multicast({ groups: "g", data: "x" })
        yield* a.leave("g")
        yield* Effect.either(a.request({ group: "nobody", data: "x", timeout: "20 millis" }))
      }).pipe(Effect.withTracer(tracer))
      expect(names).toEqual(["spread.connect", "spread.join", "spread.leave", "spread.request"])
    }), 10_000)

  it.scopedLive(
    "metrics count messages and bytes both ways, tagged with the connection, published at the end",
    () =>
      Effect.gen(function* () {
        const d = yield* startDaemon()
        const scope = yield* Scope.make()
        const a = yield* connect({ daemon: d.spreadName, name: "metered" }).pipe(Scope.extend(scope))
        yield* a.join("g")
        for (let i = 0; i < 10; i++) yield* a.multicast({ groups: "g", data: new Uint8Array(100) })
        for (let i = 0; i < 11; i++) yield* a.receive
        const stats = yield* a.stats
        yield* Scope.close(scope, Exit.void)
        const pg = "#metered#localhost"
        // What stats counted, and the disconnect that closing queued.
        expect(yield* counterOf(ClientMetrics.messagesSent, pg)).toBe(stats.sent + 1)
        expect(stats.sent).toBeGreaterThanOrEqual(11)
        expect(yield* counterOf(ClientMetrics.messagesReceived, pg)).toBeGreaterThanOrEqual(11)
        // 10 messages of 100 bytes, each with a 48-byte header and one 32-byte group.
        expect(yield* counterOf(ClientMetrics.bytesSent, pg)).toBeGreaterThanOrEqual(10 * (48 + 32 + 100))
        expect(yield* counterOf(ClientMetrics.bytesReceived, pg)).toBeGreaterThanOrEqual(10 * (48 + 32 + 100))
        expect(stats.bytesRead).toBeGreaterThanOrEqual(10 * (48 + 32 + 100))
        // Another connection's figures are its own.
        expect(yield* counterOf(ClientMetrics.messagesSent, "#other#localhost")).toBe(0)
      }),
    10_000,
  )

  it.scopedLive("gauges show the inbound depth while it lasts, once a second", () =>
    Effect.gen(function* () {
      const { daemon: d, clients: [a] } = yield* daemonAndClients("gauged")
      yield* a.join("g")
      for (let i = 0; i < 5; i++) yield* a.multicast({ groups: "g", data: "x" })
      yield* sleep(1300)
      const depth = yield* Metric.value(Metric.tagged(ClientMetrics.inboundDepth, CONNECTION_TAG, a.privateGroup))
      expect(depth.value).toBe(6)
      const off = yield* connect({ daemon: d.spreadName, name: "quiet", metrics: false })
      yield* off.join("g")
      yield* sleep(1100)
      expect(yield* counterOf(ClientMetrics.messagesSent, off.privateGroup)).toBe(0)
    }), 10_000)
})
