/**
 * The daemon's time and randomness come from Effect: the handshake
 * deadlines, the unfinished-frame deadline and the stall rule read the
 * `Clock` (so these tests run on TestClock, exactly and without waiting the
 * deadlines out), and generated private names come from each daemon's own
 * counter.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, TestClock } from "effect"
import { encodeMulticast } from "../../src/protocol/mod.ts"
import { RawClient, text } from "../_helpers/raw_client.ts"
import { eventually, joinNow, quiet, sleep, startDaemon, tcp } from "./_fixtures.ts"

const T = 10_000
const connectBytes = (name: string): Uint8Array => Uint8Array.from([5, 0, 1, 1, name.length, ...text(name)])
// Lets the daemon's fibers (real sockets) catch up; no Clock time passes.
const settle = sleep(50)

describe("Daemon on the Effect Clock", () => {
  it.scoped(
    "Daemon closes a silent connection when the Clock reaches handshakeTimeoutMs (1000 by default)",
    () =>
      Effect.gen(function* () {
        const d = yield* startDaemon()
        expect(d.config.handshakeTimeoutMs).toBe(1000)
        const silent = yield* RawClient.open(tcp(d))
        expect(yield* eventually(() => d.stats().handshaking === 1)).toBe(true)
        yield* settle
        yield* TestClock.adjust(999)
        expect(yield* silent.awaitEof(200)).toBe(false)
        yield* TestClock.adjust(1)
        expect(yield* silent.awaitEof(2000)).toBe(true)
      }).pipe(quiet),
    T,
  )

  it.scoped(
    "Daemon gives a name split across writes 100 ms of Clock time, then REJECT_ILLEGAL_NAME",
    () =>
      Effect.gen(function* () {
        const d = yield* startDaemon({ handshakeTimeoutMs: 60_000 })
        const c = yield* RawClient.open(tcp(d))
        yield* c.write(connectBytes("splitx").subarray(0, 8))
        yield* settle
        yield* TestClock.adjust(99)
        expect(yield* c.awaitEof(200)).toBe(false)
        yield* TestClock.adjust(1)
        const r = yield* c.readUntilEof()
        expect({ got: Array.from(r.bytes), eof: r.eof }).toEqual({ got: [0xfb], eof: true })
      }).pipe(quiet),
    T,
  )

  it.scoped(
    "Daemon closes a session whose frame stays unfinished once the Clock passes partialFrameTimeoutMs",
    () =>
      Effect.gen(function* () {
        const d = yield* startDaemon({ partialFrameTimeoutMs: 60_000 })
        const c = yield* RawClient.connect(tcp(d), { name: "half" })
        const other = yield* RawClient.connect(tcp(d), { name: "other" })
        yield* c.write(
          encodeMulticast({ privateGroup: c.privateGroup, service: "Agreed", groups: ["g"], data: new Uint8Array(8) })
            .subarray(0, 20),
        )
        yield* settle
        yield* TestClock.adjust(59_000)
        expect(yield* c.awaitEof(200)).toBe(false)
        // The sweep runs every second of Clock time.
        yield* TestClock.adjust(2_000)
        expect(yield* c.awaitEof(2000)).toBe(true)
        expect(d.stats().sessions).toBe(1)
        expect(other.eof).toBe(false)
      }).pipe(quiet),
    T,
  )

  it.scoped(
    "Daemon counts maxSessionMessages against a stalled socket only once 100 ms of Clock time pass",
    () =>
      Effect.gen(function* () {
        const d = yield* startDaemon({ maxSessionMessages: 10 })
        const sender = yield* RawClient.connect(tcp(d), { name: "sender" })
        const stuck = yield* RawClient.connect(tcp(d), { name: "stuck" })
        yield* joinNow(stuck, "flood")
        const frame = encodeMulticast({
          privateGroup: sender.privateGroup,
          service: "Reliable",
          groups: ["flood"],
          data: new Uint8Array(8000),
        })
        // Far more than the socket buffers take: the stuck reader's writes stall.
        const burst = new Uint8Array(frame.length * 500)
        for (let i = 0; i < 500; i++) burst.set(frame, i * frame.length)
        for (let k = 0; k < 8; k++) yield* sender.write(burst)
        expect(yield* eventually(() => d.stats().messagesIn === 4000)).toBe(true)
        // Real time passes, Clock time does not: queued far past the limit, not cut off.
        yield* sleep(150)
        expect(d.stats().outboxDepth).toBeGreaterThan(10)
        expect(d.stats().cutOff).toBe(0)
        yield* TestClock.adjust(100)
        yield* sender.write(frame)
        expect(yield* eventually(() => d.stats().cutOff === 1)).toBe(true)
        expect(yield* stuck.awaitEof(2000)).toBe(true)
      }).pipe(quiet),
    T,
  )

  it.scopedLive(
    "Daemon numbers generated names per daemon: two daemons in one process both start at 1",
    () =>
      Effect.gen(function* () {
        const names: Array<string> = []
        for (let i = 0; i < 2; i++) {
          const d = yield* startDaemon()
          for (let k = 0; k < 2; k++) {
            const c = yield* RawClient.connect(tcp(d), { name: "" })
            names.push(c.privateGroup)
          }
        }
        expect(names.map((n) => /^#r\d{1,4}-(\d+)#localhost$/.exec(n)?.[1])).toEqual(["1", "2", "1", "2"])
      }).pipe(quiet),
    T,
  )
})
