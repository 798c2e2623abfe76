import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Fiber, Stream } from "effect"
import { connect } from "../../src/client/connection.ts"
import { ConnectionError, type RequestError } from "../../src/client/core/errors.ts"
import { fixedWindow, noWindow } from "../../src/client/options.ts"
import { encodeFrame, ServiceBits } from "../../src/protocol/mod.ts"
import { acceptHandshake, fakeDaemon, serveUntilKill, sleep } from "./_fixtures.ts"

const TIMEOUT = 15_000

/** A promise the test resolves to let a fake daemon script go on. */
const gate = () => {
  let open = () => {}
  const opened = new Promise<void>((r) => (open = r))
  return { open, opened }
}

const regular = (sender: string, data: Uint8Array) =>
  encodeFrame({ type: ServiceBits.AGREED_MESS, name: sender, groups: ["g"], data })

/** Polls `check` every 5 ms for up to `ms`; answers whether it held. */
const until = (check: () => Effect.Effect<boolean>, ms = 5000) =>
  Effect.gen(function* () {
    const deadline = Date.now() + ms
    while (!(yield* check())) {
      if (Date.now() > deadline) return false
      yield* sleep(5)
    }
    return true
  })

describe("sticky errors", () => {
  it.scopedLive(
    "EOF in the middle of a message fails every blocked receiver and sender with one ConnectionClosed",
    () =>
      Effect.gen(function* () {
        const g = gate()
        const d = yield* fakeDaemon(async (c) => {
          const hs = await acceptHandshake(c)
          if (hs === undefined) return
          await g.opened
          const whole = regular("#other#localhost", new TextEncoder().encode("whole"))
          const cut = regular("#other#localhost", new Uint8Array(100)).subarray(0, 70)
          await c.write(whole)
          await c.write(cut)
          c.close()
        })
        // Without membership messages the join is not counted in the window.
        const conn = yield* connect({ daemon: d.spreadName, window: fixedWindow(1), membership: false })
        yield* conn.join("g")
        // The fake daemon never echoes: the first multicast holds the one
        // permit, the next ones wait for the window.
        yield* conn.multicast({ groups: "g", data: "first" })
        const senders = yield* Effect.forEach(
          [1, 2, 3],
          (i) => Effect.fork(Effect.either(conn.multicast({ groups: "g", data: `blocked ${i}` }))),
        )
        const receivers = yield* Effect.forEach([1, 2, 3, 4, 5], () => Effect.fork(Effect.either(conn.receive)))
        const streamer = yield* Effect.fork(Effect.either(Stream.runCollect(conn.messages)))
        const closed = yield* Effect.fork(conn.awaitClosed)
        yield* sleep(50)
        for (const s of senders) expect(s.unsafePoll()).toBeNull()
        g.open()
        const results: Array<Either.Either<unknown, ConnectionError | RequestError>> = [
          ...(yield* Effect.forEach(senders, Fiber.join)),
          ...(yield* Effect.forEach(receivers, Fiber.join)),
        ]
        const errors = results.filter(Either.isLeft).map((e) => e.left)
        // One receiver may get the whole message before the cut one ends the stream.
        expect(errors.length).toBeGreaterThanOrEqual(results.length - 1)
        const first = errors[0]
        expect(first).toBeInstanceOf(ConnectionError)
        if (!(first instanceof ConnectionError)) return
        expect(first.reason).toBe("ConnectionClosed")
        expect(first.detail).toContain("middle of a message")
        for (const e of errors) expect(e).toBe(first)
        const streamed = yield* Fiber.join(streamer)
        if (Either.isLeft(streamed)) expect(streamed.left).toBe(first)
        expect(yield* Fiber.join(closed)).toBe(first)
        // Every later call fails with the same error.
        expect(yield* Effect.flip(conn.multicast({ groups: "g", data: "later" }))).toBe(first)
        expect(yield* Effect.flip(conn.join("h"))).toBe(first)
        expect(yield* Effect.flip(conn.receive)).toBe(first)
        expect(yield* conn.state).toEqual({ _tag: "Failed", error: first })
        yield* conn.close
        expect(yield* conn.state).toEqual({ _tag: "Closed", error: first })
        expect(yield* Effect.flip(conn.leave("g"))).toBe(first)
      }),
    TIMEOUT,
  )

  it.scopedLive(
    "undecodable bytes from the daemon fail the connection with ProtocolViolation",
    () =>
      Effect.gen(function* () {
        const d = yield* fakeDaemon(async (c) => {
          await acceptHandshake(c)
          const bad = new Uint8Array(48)
          bad[0] = 0x80 // one endian marker bit of two
          await c.write(bad)
          await serveUntilKill(c)
        })
        const conn = yield* connect({ daemon: d.spreadName })
        const e = yield* Effect.flip(conn.receive)
        expect(e.reason).toBe("ProtocolViolation")
        expect(e.code).toBe(-13)
        expect(e.detail).toContain("endian")
        expect(yield* conn.awaitClosed).toBe(e)
      }),
    TIMEOUT,
  )

  it.scopedLive("a daemon closing cleanly gives ConnectionClosed to every receiver", () =>
    Effect.gen(function* () {
      const g = gate()
      const d = yield* fakeDaemon(async (c) => {
        await acceptHandshake(c)
        await g.opened
        c.close()
      })
      const conn = yield* connect({ daemon: d.spreadName })
      const receivers = yield* Effect.forEach([1, 2, 3], () => Effect.fork(Effect.flip(conn.receive)))
      g.open()
      const errors = yield* Effect.forEach(receivers, Fiber.join)
      expect(errors[0].reason).toBe("ConnectionClosed")
      expect(errors[0].detail).toBe("the daemon closed the connection")
      for (const e of errors) expect(e).toBe(errors[0])
    }), TIMEOUT)

  it.scopedLive(
    "senders wait (never fail, never drop) while the outbox is full, and close wakes them in bounded time",
    () =>
      Effect.gen(function* () {
        // This daemon completes the handshake and then never reads again.
        const stop = gate()
        const d = yield* fakeDaemon(async (c) => {
          await acceptHandshake(c)
          await stop.opened
        })
        yield* Effect.addFinalizer(() => Effect.sync(stop.open))
        const conn = yield* connect({
          daemon: d.spreadName,
          window: noWindow,
          outboxBytes: 256 * 1024,
          closeTimeout: "500 millis",
        })
        const data = new Uint8Array(64 * 1024)
        const senders = yield* Effect.forEach(
          Array.from({ length: 20 }, (_, i) => i),
          () =>
            Effect.fork(Effect.either(Effect.forEach(
              Array.from({ length: 50 }),
              () => conn.multicast({ groups: "elsewhere", data }),
              { discard: true },
            ))),
        )
        // 20 x 50 x 64 KiB = 64 MiB: far more than the socket buffers and outbox hold.
        expect(yield* until(() => Effect.map(conn.stats, (s) => s.sendersWaiting > 0))).toBe(true)
        const before = yield* conn.stats
        expect(before.outboxBytes).toBeGreaterThan(128 * 1024)
        for (const s of senders) expect(s.unsafePoll()).toBeNull()
        const t0 = Date.now()
        yield* conn.close
        const elapsed = Date.now() - t0
        // closeTimeout holds with a peer that stops reading: within twice the timeout.
        expect(elapsed).toBeLessThan(1000)
        const results = yield* Effect.forEach(senders, Fiber.join)
        const errors = results.filter(Either.isLeft).map((r) => r.left)
        expect(errors.length).toBe(20)
        for (const e of errors) {
          expect(e).toBeInstanceOf(ConnectionError)
          expect(e).toBe(errors[0])
        }
        expect((errors[0] as ConnectionError).reason).toBe("Closed")
      }),
    TIMEOUT,
  )
})
