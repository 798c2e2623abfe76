/**
 * Observability: the daemon's Effect metrics, published once a second and
 * at shutdown, and its stats() snapshot.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Metric, Scope } from "effect"
import { daemonMetrics, prometheusText } from "../../src/daemon/mod.ts"
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

// Each test's daemon has its own name, so its figures are its own even
// while other daemons in this process publish.
const M1 = daemonMetrics("metrics1")
const M2 = daemonMetrics("metrics2")
const M3 = daemonMetrics("metrics3")

describe("Daemon metrics", () => {
  it.live("DaemonMetrics counts sessions, groups, and messages and bytes in and out", () =>
    Effect.gen(function* () {
      const in0 = yield* counter(M1.messagesIn)
      const bytesIn0 = yield* counter(M1.bytesIn)
      const out0 = yield* counter(M1.messagesOut)
      const bytesOut0 = yield* counter(M1.bytesOut)
      const scope = yield* Scope.make()
      const d = yield* startDaemon({ name: "metrics1" }).pipe(Scope.extend(scope))
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
      expect(yield* poll(counter(M1.messagesIn), (n) => n - in0 >= 10)).toBe(in0 + 10)
      expect(yield* counter(M1.bytesIn)).toBe(bytesIn0 + 1800)
      expect(yield* counter(M1.messagesOut)).toBe(out0 + 23)
      // Membership frames: 48 + 32 per member + 56; one for a alone, two for a and b.
      expect(yield* counter(M1.bytesOut)).toBe(bytesOut0 + 136 + 2 * 168 + 20 * 180)
      expect(yield* gauge(M1.sessions)).toBe(2)
      expect(yield* gauge(M1.groups)).toBe(1)
      // Shutdown publishes the last figures.
      yield* Scope.close(scope, Exit.void)
      expect(yield* gauge(M1.sessions)).toBe(0)
      expect(yield* gauge(M1.groups)).toBe(0)
    }).pipe(quiet), T)

  it.live("DaemonMetrics publishes the deepest session outbox while a reader lags", () =>
    Effect.gen(function* () {
      yield* Effect.scoped(Effect.gen(function* () {
        const d = yield* startDaemon({ name: "metrics2", maxSessionMessages: 1_000_000 })
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
        expect(yield* poll(gauge(M2.outboxDepth), (n) => n >= depth)).toBeGreaterThanOrEqual(depth)
        expect(d.stats().cutOff).toBe(0)
      }))
    }).pipe(quiet), T)

  it.live("DaemonMetrics counts sessions cut off", () =>
    Effect.gen(function* () {
      const cut0 = yield* counter(M3.cutOff)
      yield* Effect.scoped(Effect.gen(function* () {
        const d = yield* startDaemon({ name: "metrics3", maxSessionBytes: 100_000 })
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
      expect(yield* counter(M3.cutOff)).toBe(cut0 + 1)
    }).pipe(quiet), T)

  it.live(
    "DaemonMetrics of two daemons in one process are tagged by name and never overwrite each other",
    () =>
      Effect.gen(function* () {
        const scope = yield* Scope.make()
        const busy = yield* startDaemon({ name: "busy" }).pipe(Scope.extend(scope))
        const calm = yield* startDaemon({ name: "calm" }).pipe(Scope.extend(scope))
        expect(busy.metrics).not.toBe(calm.metrics)
        const a = yield* RawClient.connect(tcp(busy), { name: "a" }).pipe(Scope.extend(scope))
        yield* RawClient.connect(tcp(busy), { name: "b" }).pipe(Scope.extend(scope))
        yield* joinNow(a, "g")
        yield* RawClient.connect(tcp(calm), { name: "c" }).pipe(Scope.extend(scope))
        expect(yield* poll(gauge(busy.metrics.sessions), (n) => n === 2)).toBe(2)
        expect(yield* poll(gauge(calm.metrics.sessions), (n) => n === 1)).toBe(1)
        // Both publish every second; after another round each still shows its own.
        yield* Effect.sleep("1100 millis")
        expect(yield* gauge(busy.metrics.sessions)).toBe(2)
        expect(yield* gauge(busy.metrics.groups)).toBe(1)
        expect(yield* gauge(calm.metrics.sessions)).toBe(1)
        expect(yield* gauge(calm.metrics.groups)).toBe(0)
        const text = yield* prometheusText
        expect(text).toContain('spreadfx_daemon_sessions{daemon="busy"} 2')
        expect(text).toContain('spreadfx_daemon_sessions{daemon="calm"} 1')
        yield* Scope.close(scope, Exit.void)
      }).pipe(quiet),
    T,
  )
})
