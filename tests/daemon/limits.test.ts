/**
 * Limits on what a client can make the daemon hold, each tested against a
 * daemon in its own process (seen from outside, as a hostile client sees
 * it): groups per session, groups in all, a frame begun and left unfinished,
 * and connections still shaking hands.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { decodeServerMessage, type Frame } from "../../src/protocol/mod.ts"
import { encodeMulticast } from "../../src/protocol/mod.ts"
import { RawClient } from "../_helpers/raw_client.ts"
import { startDaemonProcess } from "../_helpers/daemon_process.ts"
import { eventually, joinNow } from "./_fixtures.ts"

const T = 20_000
const pg = (name: string): string => `#${name}#localhost`
const count = (text: string, pattern: RegExp): number => text.split("\n").filter((l) => pattern.test(l)).length

// The REJECT a refused join comes back as: the join's groups plus the sender.
const expectReject = (f: Frame, group: string, name: string): void => {
  const r = decodeServerMessage(f)
  expect(r._tag).toBe("Reject")
  if (r._tag !== "Reject") return
  expect(r.oldType).toBe(0x100) // CAUSED_BY_JOIN in place of JOIN
  expect(r.groups).toEqual([group, pg(name)])
}

describe("Daemon limits (daemon in its own process)", () => {
  it.scopedLive(
    "Daemon answers a join past maxGroupsPerSession with a REJECT, logs it once, and keeps the session",
    () =>
      Effect.gen(function* () {
        const d = yield* startDaemonProcess({ maxGroupsPerSession: 3 })
        const a = yield* RawClient.connect(d.address, { name: "a" })
        for (const g of ["g1", "g2", "g3"]) yield* joinNow(a, g)
        yield* a.join("g4")
        expectReject(yield* a.frame(), "g4", "a")
        yield* a.join("g5")
        expectReject(yield* a.frame(), "g5", "a")
        // Still a member of what it joined, still served.
        yield* a.multicast({ service: "Agreed", groups: ["g1"], data: Uint8Array.of(1) })
        expect(decodeServerMessage(yield* a.frame())._tag).toBe("Regular")
        // A leave makes room again.
        yield* a.leave("g1")
        yield* a.frame() // the self-leave
        yield* joinNow(a, "g4")
        expect(yield* eventually(() => /join of \\?"g4\\?" refused/.test(d.output()))).toBe(true)
        expect(count(d.output(), /refused: the session is in 3 groups \(maxGroupsPerSession\)/)).toBe(1)
      }),
    T,
  )

  it.scopedLive(
    "Daemon answers a join that would create a group past maxGroups with a REJECT; existing groups stay open",
    () =>
      Effect.gen(function* () {
        const d = yield* startDaemonProcess({ maxGroups: 2 })
        const a = yield* RawClient.connect(d.address, { name: "a" })
        const b = yield* RawClient.connect(d.address, { name: "b" })
        yield* joinNow(a, "x")
        yield* joinNow(a, "y")
        yield* b.join("z")
        expectReject(yield* b.frame(), "z", "b")
        yield* joinNow(b, "x")
        expect(yield* eventually(() => /refused: the daemon has 2 groups \(maxGroups\)/.test(d.output()))).toBe(
          true,
        )
      }),
    T,
  )

  it.scopedLive(
    "Daemon closes a session whose frame stays unfinished past partialFrameTimeoutMs; bystanders keep going",
    () =>
      Effect.gen(function* () {
        const d = yield* startDaemonProcess({ partialFrameTimeoutMs: 300 })
        const bystander = yield* RawClient.connect(d.address, { name: "by" })
        const slow = yield* RawClient.connect(d.address, { name: "slow" })
        const half = yield* RawClient.connect(d.address, { name: "half" })
        const frame = (who: string) =>
          encodeMulticast({ privateGroup: pg(who), service: "Agreed", groups: [pg(who)], data: new Uint8Array(16) })
        // A frame split in two, finished in time, is delivered.
        const s = frame("slow")
        yield* slow.write(s.subarray(0, 20))
        yield* Effect.sleep(100)
        yield* slow.write(s.subarray(20))
        expect(decodeServerMessage(yield* slow.frame())._tag).toBe("Regular")
        // A header half-sent and left there ends the session.
        const start = Date.now()
        yield* half.write(frame("half").subarray(0, 20))
        expect(yield* half.awaitEof(5000)).toBe(true)
        const took = Date.now() - start
        expect(took).toBeGreaterThanOrEqual(250)
        expect(took).toBeLessThan(3000)
        expect(yield* eventually(() => /Session #half#localhost killed: a frame begun \d+ ms ago/.test(d.output())))
          .toBe(true)
        // Idle sessions with nothing half-sent stay.
        yield* bystander.write(frame("by"))
        expect(decodeServerMessage(yield* bystander.frame())._tag).toBe("Regular")
        yield* slow.write(frame("slow"))
        expect(decodeServerMessage(yield* slow.frame())._tag).toBe("Regular")
      }),
    T,
  )

  it.scopedLive(
    "Daemon bounds connections still shaking hands by maxHandshaking: a newcomer displaces the oldest, and they never take places of sessions",
    () =>
      Effect.gen(function* () {
        const d = yield* startDaemonProcess({ maxSessions: 2, maxHandshaking: 3, handshakeTimeoutMs: 10_000 })
        // Three connections that never finish their handshake.
        const silent = [
          yield* RawClient.open(d.address),
          yield* RawClient.open(d.address),
          yield* RawClient.open(d.address),
        ]
        yield* Effect.sleep(200)
        // A fourth is over the handshake bound: the oldest unfinished
        // handshake makes room (REJECT_QUOTA), the others stay.
        const fourth = yield* RawClient.open(d.address)
        const r = yield* silent[0].readUntilEof()
        expect({ bytes: Array.from(r.bytes), eof: r.eof }).toEqual({ bytes: [0xfd], eof: true })
        expect(yield* silent[1].awaitEof(300)).toBe(false)
        expect(yield* fourth.awaitEof(10)).toBe(false)
        expect(yield* eventually(() => /3 handshakes in progress \(maxHandshaking\)/.test(d.output()))).toBe(true)
        // A real client gets in though every handshake place is held by a
        // stalled one: it displaces the oldest. Once it is in, a place is
        // free for the next. Both session places are theirs.
        yield* RawClient.connect(d.address, { name: "real1" })
        expect(yield* silent[1].awaitEof(2000)).toBe(true)
        yield* RawClient.connect(d.address, { name: "real2" })
        expect(yield* silent[2].awaitEof(300)).toBe(false)
        expect(yield* fourth.awaitEof(10)).toBe(false)
        // The session places are full now: REJECT_QUOTA before anything is read.
        const third = yield* RawClient.open(d.address)
        expect(Array.from((yield* third.readUntilEof()).bytes)).toEqual([0xfd])
        expect(count(d.output(), /handshakes in progress/)).toBe(1)
      }),
    T,
  )
})
