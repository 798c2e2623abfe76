/**
 * `close` returns in bounded time wherever the connection was made: in an
 * uninterruptible region, in acquireRelease's acquire, or plainly.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Schedule, Scope } from "effect"
import { connect } from "../../src/client/connection.ts"
import { startDaemon } from "./_fixtures.ts"

const TIMEOUT = 20_000

describe("close wherever the connection was made", () => {
  it.scopedLive(
    "a connection made in Effect.uninterruptible closes, and its scope too, in bounded time",
    () =>
      Effect.gen(function* () {
        const d = yield* startDaemon()
        const scope = yield* Scope.make()
        const conn = yield* Effect.uninterruptible(Scope.extend(connect({ daemon: d.spreadName }), scope))
        yield* conn.join("g", { confirmed: true })
        yield* conn.multicast({ groups: "g", data: "x" })
        const closed = yield* Effect.timeout(conn.close, "3 seconds").pipe(Effect.exit)
        expect(Exit.isSuccess(closed)).toBe(true)
        const released = yield* Effect.timeout(Scope.close(scope, Exit.void), "3 seconds").pipe(Effect.exit)
        expect(Exit.isSuccess(released)).toBe(true)
      }),
    TIMEOUT,
  )

  it.scopedLive(
    "a connection made in acquireRelease's acquire closes in bounded time, and so does the scope",
    () =>
      Effect.gen(function* () {
        const d = yield* startDaemon()
        const scope = yield* Scope.make()
        const conn = yield* Scope.extend(
          Effect.acquireRelease(connect({ daemon: d.spreadName }), (c) => c.close),
          scope,
        )
        yield* conn.join("g", { confirmed: true })
        const released = yield* Effect.timeout(Scope.close(scope, Exit.void), "3 seconds").pipe(Effect.exit)
        expect(Exit.isSuccess(released)).toBe(true)
        expect((yield* conn.state)._tag).toBe("Closed")
      }),
    TIMEOUT,
  )

  it.scopedLive(
    "a connection with reconnect made in an uninterruptible region closes while its daemon is gone",
    () =>
      Effect.gen(function* () {
        const dscope = yield* Scope.make()
        const d = yield* Scope.extend(startDaemon(), dscope)
        const scope = yield* Scope.make()
        const conn = yield* Effect.uninterruptible(
          Scope.extend(connect({ daemon: d.spreadName, reconnect: Schedule.spaced("20 millis") }), scope),
        )
        yield* conn.join("g", { confirmed: true })
        yield* Scope.close(dscope, Exit.void)
        yield* Effect.repeat(conn.state, {
          until: (s) => s._tag === "Reconnecting",
          schedule: Schedule.spaced("10 millis"),
        })
        const closed = yield* Effect.timeout(conn.close, "3 seconds").pipe(Effect.exit)
        expect(Exit.isSuccess(closed)).toBe(true)
        const released = yield* Effect.timeout(Scope.close(scope, Exit.void), "3 seconds").pipe(Effect.exit)
        expect(Exit.isSuccess(released)).toBe(true)
      }),
    TIMEOUT,
  )

  it.scopedLive("a plain connection closes in bounded time", () =>
    Effect.gen(function* () {
      const d = yield* startDaemon()
      const conn = yield* connect({ daemon: d.spreadName })
      const closed = yield* Effect.timeout(conn.close, "3 seconds").pipe(Effect.exit)
      expect(Exit.isSuccess(closed)).toBe(true)
    }), TIMEOUT)
})
