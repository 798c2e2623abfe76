/**
 * Observability: the daemon's Effect metrics, published once a second and
 * at shutdown, and its stats() snapshot.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Metric, Scope } from "effect"
import { DaemonMetrics } from "../../src/daemon/mod.ts"
import { encodeMulticast } from "../../src/protocol/mod.ts"
import { concat, RawClient } from "../_helpers/raw_client.ts"
import { eventually, joinNow, quiet, startDaemon, tcp } from "./_fixtures.ts"

const T = 10_000

const counter = (m: Metric.Metric.Counter<number>): Effect.Effect<number> => Effect.map(Metric.value(m), (s) => s.count)
const gauge = (m: Metric.Metric.Gauge<number>): Effect.Effect<number> => Effect.map(Metric.value(m), (s) => s.value)

/** Polls an effect until `ok` holds for its value (up to `ms`); answers the last value. */
const poll = <A>(e: Effect.Effect<A>, ok: (a: A) => boolean, ms = 3000): Effect.Effect<A> =>
  Effect.gen(function* () {
    const deadline = Date.now() + ms
    for (;;) {
      const a = yield* e
      if (ok(a) || Date.now() > deadline) return a
      yield* Effect.sleep("50 millis")
    }
  })

describe("Daemon metrics", () => {
  it.live("DaemonMetrics counts sessions, groups, and messages and bytes in and out", () =>
    Effect.gen(function* () {
      const in0 = yield* counter(DaemonMetrics.messagesIn)
      const bytesIn0 = yield* counter(DaemonMetrics.bytesIn)
      const out0 = yield* counter(DaemonMetrics.messagesOut)
      const bytesOut0 = yield* counter(DaemonMetrics.bytesOut)
      const scope = yield* Scope.make()
      const d = yield* startDaemon().pipe(Scope.extend(scope))
      const a = yield* RawClient.connect(tcp(d), { name: "a" }).pipe(Scope.extend(scope))
      const b = yield* RawClient.connect(tcp(d), { name: "b" }).pipe(Scope.extend(scope))
      yield* joinNow(a, "g")
      yield* joinNow(b, "g")
      yield* a.frame()
      for (let i = 0; i < 10; i++) yield* a.multicast({ service: "Agreed", groups: ["g"], data: new Uint8Array(100) })
      yield* a.frames(10)
      yield* b.frames(10)
      // Three membership messages (1 + 2) and 10 × 2 copies, 180-byte frames.
      expect(d.stats()).toMatchObject({ sessions: 2, groups: 1, messagesIn: 10, bytesIn: 1800, messagesOut: 23 })
      expect(yield* poll(counter(DaemonMetrics.messagesIn), (n) => n - in0 >= 10)).toBe(in0 + 10)
      expect(yield* counter(DaemonMetrics.bytesIn)).toBe(bytesIn0 + 1800)
      expect(yield* counter(DaemonMetrics.messagesOut)).toBe(out0 + 23)
      // Membership frames: 48 + 32 per member + 56; one for a alone, two for a and b.
      expect(yield* counter(DaemonMetrics.bytesOut)).toBe(bytesOut0 + 136 + 2 * 168 + 20 * 180)
      expect(yield* gauge(DaemonMetrics.sessions)).toBe(2)
      expect(yield* gauge(DaemonMetrics.groups)).toBe(1)
      // Shutdown publishes the last figures.
      yield* Scope.close(scope, Exit.void)
      expect(yield* gauge(DaemonMetrics.sessions)).toBe(0)
      expect(yield* gauge(DaemonMetrics.groups)).toBe(0)
    }).pipe(quiet), T)

  it.live("DaemonMetrics publishes the deepest session outbox while a reader lags", () =>
    Effect.gen(function* () {
      yield* Effect.scoped(Effect.gen(function* () {
        const d = yield* startDaemon({ maxSessionMessages: 1_000_000 })
        const sloth = yield* RawClient.connect(tcp(d), { name: "sloth" })
        const writer = yield* RawClient.connect(tcp(d), { name: "writer" })
        const one = encodeMulticast({
          privateGroup: writer.privateGroup,
          service: "Agreed",
          groups: [sloth.privateGroup],
          data: new Uint8Array(10_000),
        })
        // 30 MB for a reader that reads nothing: the kernel takes some, the outbox the rest.
        for (let i = 0; i < 30; i++) yield* writer.write(concat(new Array<Uint8Array>(100).fill(one)))
        expect(yield* eventually(() => d.stats().messagesIn === 3000)).toBe(true)
        const depth = d.stats().outboxDepth
        expect(depth).toBeGreaterThan(100)
        expect(d.stats().outboxPeak).toBeGreaterThanOrEqual(depth)
        expect(yield* poll(gauge(DaemonMetrics.outboxDepth), (n) => n >= depth)).toBeGreaterThanOrEqual(depth)
        expect(d.stats().cutOff).toBe(0)
      }))
    }).pipe(quiet), T)

  it.live("DaemonMetrics counts sessions cut off", () =>
    Effect.gen(function* () {
      const cut0 = yield* counter(DaemonMetrics.cutOff)
      yield* Effect.scoped(Effect.gen(function* () {
        const d = yield* startDaemon({ maxSessionBytes: 100_000 })
        const sloth = yield* RawClient.connect(tcp(d), { name: "sloth" })
        const writer = yield* RawClient.connect(tcp(d), { name: "writer" })
        const one = encodeMulticast({
          privateGroup: writer.privateGroup,
          service: "Agreed",
          groups: [sloth.privateGroup],
          data: new Uint8Array(10_000),
        })
        for (let i = 0; i < 30 && d.stats().cutOff === 0; i++) {
          yield* writer.write(concat(new Array<Uint8Array>(100).fill(one)))
          yield* Effect.sleep("5 millis")
        }
        expect(yield* eventually(() => d.stats().cutOff === 1)).toBe(true)
        expect(yield* sloth.awaitEof(5000)).toBe(true)
      }))
      expect(yield* counter(DaemonMetrics.cutOff)).toBe(cut0 + 1)
    }).pipe(quiet), T)
})
