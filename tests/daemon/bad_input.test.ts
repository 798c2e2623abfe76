/**
 * Hostile input after the handshake: every header check failure, oversize
 * messages (including the sizes that crash a real 5.0.1 daemon), garbage
 * and truncated frames kill only the offending session; the daemon logs one
 * warning naming it and the reason, and everyone else carries on
 * (protocol reference 6.5, 8.5, 11).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { decodeServerMessage } from "../../src/protocol/mod.ts"
import { RawClient, text, untext } from "../_helpers/raw_client.ts"
import { captureLogs, eventually, joinNow, LogLevel, type LogLine, startDaemon, tcp } from "./_fixtures.ts"

const T = 10_000

interface Spec {
  readonly type?: number
  /** The name field; the sender's own private group by default. */
  readonly name?: string
  readonly groups?: ReadonlyArray<string>
  readonly numGroups?: number
  readonly hint?: number
  readonly data?: number
  readonly dataLen?: number
  readonly bigEndian?: boolean
}

/** A frame with any header values at all (little-endian unless told). */
const frame = (own: string, s: Spec): Uint8Array => {
  const groups = s.groups ?? ["watch"]
  const data = s.data ?? 4
  const out = new Uint8Array(48 + 32 * groups.length + data)
  const v = new DataView(out.buffer)
  const le = !(s.bigEndian ?? false)
  v.setUint32(0, (s.type ?? 0x80000090) >>> 0, le)
  out.set(text(s.name ?? own), 4)
  v.setInt32(36, s.numGroups ?? groups.length, le)
  v.setUint32(40, (s.hint ?? 0x80000080) >>> 0, le)
  v.setInt32(44, s.dataLen ?? data, le)
  groups.forEach((g, i) => out.set(text(g), 48 + 32 * i))
  out.fill(0x61, 48 + 32 * groups.length)
  return out
}

interface Case {
  readonly what: string
  readonly bytes: (own: string) => Uint8Array
  /** Close the write side after sending (EOF). */
  readonly eof?: boolean
  /** What the warning must say. */
  readonly reason: RegExp
}

const CASES: ReadonlyArray<Case> = [
  {
    what: "a 143153-byte payload, where Spread 5.0.1 aborts",
    bytes: (o) => frame(o, { data: 143121 }),
    reason: /143153/,
  },
  {
    what: "a 143952-byte payload, the top of Spread 5.0.1's crash range",
    bytes: (o) => frame(o, { data: 143920 }),
    reason: /143952/,
  },
  { what: "a 143953-byte payload", bytes: (o) => frame(o, { data: 143921 }), reason: /143953/ },
  { what: "data_len 144001 in a bare header", bytes: (o) => frame(o, { data: 0, dataLen: 144001 }), reason: /144001/ },
  { what: "data_len -5", bytes: (o) => frame(o, { dataLen: -5 }), reason: /data_len = -5/ },
  { what: "101 groups", bytes: (o) => frame(o, { groups: new Array(101).fill("watch") }), reason: /num_groups = 101/ },
  { what: "num_groups -1", bytes: (o) => frame(o, { numGroups: -1 }), reason: /num_groups = -1/ },
  { what: "endian marker bits that disagree", bytes: (o) => frame(o, { type: 0x00000090 }), reason: /Endian/ },
  { what: "64 bytes of 0xff", bytes: () => new Uint8Array(64).fill(0xff), reason: /killed/ },
  {
    what: "an HTTP request",
    bytes: () => text("GET / HTTP/1.1\r\nHost: localhost:4803\r\nAccept: */*\r\n\r\n"),
    reason: /killed/,
  },
  { what: "two service bits (AGREED|SAFE)", bytes: (o) => frame(o, { type: 0x800000b0 }), reason: /one service/ },
  { what: "JOIN|AGREED", bytes: (o) => frame(o, { type: 0x80010090 }), reason: /one service/ },
  { what: "no service bit (type 0)", bytes: (o) => frame(o, { type: 0x80000080 }), reason: /one service/ },
  { what: "JOIN|LEAVE", bytes: (o) => frame(o, { type: 0x80030080 }), reason: /one service/ },
  { what: "GROUPS_MESS on a multicast", bytes: (o) => frame(o, { type: 0x80080090 }), reason: /GROUPS_MESS/ },
  { what: "REJECT_MESS on a multicast", bytes: (o) => frame(o, { type: 0x80400090 }), reason: /REJECT_MESS/ },
  { what: "another session's name", bytes: (o) => frame(o, { name: "#obs#localhost" }), reason: /does not match/ },
  {
    what: "another daemon's name",
    bytes: (o) => frame(o, { name: o.replace("localhost", "elsewhere") }),
    reason: /does not match/,
  },
  {
    what: "a name field that is no private group",
    bytes: (o) => frame(o, { name: "watch" }),
    reason: /not #name#daemon/,
  },
  { what: "a hint bit outside mess_type", bytes: (o) => frame(o, { hint: 0x80000081 }), reason: /hint/ },
  {
    what: "a join with no group",
    bytes: (o) => frame(o, { type: 0x80010080, groups: [], data: 0 }),
    reason: /one group/,
  },
  {
    what: "a frame cut short by EOF",
    bytes: (o) => frame(o, { data: 10, dataLen: 100 }),
    eof: true,
    reason: /EOF inside a message/,
  },
  { what: "a header cut short by EOF", bytes: (o) => frame(o, {}).subarray(0, 20), eof: true, reason: /EOF inside/ },
]

describe("Daemon bad input", () => {
  for (const [i, c] of CASES.entries()) {
    it.scopedLive(`Daemon kills the session that sends ${c.what}, logs it once, and no one else notices`, () => {
      const lines: Array<LogLine> = []
      return Effect.gen(function* () {
        const d = yield* startDaemon()
        const obs = yield* RawClient.connect(tcp(d), { name: "obs" })
        const chat = yield* RawClient.connect(tcp(d), { name: "chat" })
        const mal = yield* RawClient.connect(tcp(d), { name: `mal${i}` })
        yield* joinNow(obs, "watch")
        yield* joinNow(mal, "watch")
        expect(decodeServerMessage(yield* obs.frame())._tag).toBe("Membership") // mal's join
        yield* chat.multicast({ service: "Agreed", groups: ["watch"], data: text("before") })
        expect(untext((yield* obs.frame()).data)).toBe("before")
        expect(untext((yield* mal.frame()).data)).toBe("before")

        yield* mal.write(c.bytes(mal.privateGroup))
        if (c.eof === true) yield* mal.closeWrite
        // The offender gets nothing more; its connection closes.
        expect(yield* mal.next(3000)).toEqual({ _tag: "Eof" })
        // The observer sees its disconnect, and nothing of what it sent.
        const gone = decodeServerMessage(yield* obs.frame())
        expect(gone._tag === "Membership" && [gone.cause, gone.changed, gone.members]).toEqual([
          "Disconnect",
          mal.privateGroup,
          ["#obs#localhost"],
        ])
        // The daemon carries on.
        yield* chat.multicast({ service: "Agreed", groups: ["watch"], data: text("after") })
        expect(untext((yield* obs.frame()).data)).toBe("after")
        expect((yield* obs.next(100))._tag).toBe("Timeout")
        expect(d.stats().sessions).toBe(2)
        // One warning, naming the session and the reason.
        const mine = () => lines.filter((l) => l.message.includes(mal.privateGroup))
        expect(yield* eventually(() => mine().length > 0)).toBe(true)
        expect(mine().map((l) => l.level)).toEqual([LogLevel.Warning])
        expect(mine()[0].message).toMatch(new RegExp(`^Session ${mal.privateGroup} killed: `))
        expect(mine()[0].message).toMatch(c.reason)
      }).pipe(Effect.provide(captureLogs(lines)))
    }, T)
  }

  it.scopedLive("Daemon closes a session that sends KILL without a warning, and the others see its disconnect", () => {
    const lines: Array<LogLine> = []
    return Effect.gen(function* () {
      const d = yield* startDaemon()
      const obs = yield* RawClient.connect(tcp(d), { name: "obs" })
      const bye = yield* RawClient.connect(tcp(d), { name: "bye" })
      yield* joinNow(obs, "watch")
      yield* joinNow(bye, "watch")
      yield* obs.frame()
      yield* bye.kill()
      expect(yield* bye.next(2000)).toEqual({ _tag: "Eof" })
      const gone = decodeServerMessage(yield* obs.frame())
      expect(gone._tag === "Membership" && [gone.cause, gone.changed]).toEqual(["Disconnect", "#bye#localhost"])
      expect(yield* eventually(() => d.stats().sessions === 1)).toBe(true)
      expect(lines.filter((l) => l.level === LogLevel.Warning)).toEqual([])
    }).pipe(Effect.provide(captureLogs(lines)))
  }, T)

  it.scopedLive(
    "Daemon survives every crash-range size in turn and keeps delivering the largest legal message",
    () =>
      Effect.gen(function* () {
        const d = yield* startDaemon()
        const obs = yield* RawClient.connect(tcp(d), { name: "obs" })
        yield* joinNow(obs, "watch")
        for (const data of [143121, 143300, 143500, 143700, 143920]) {
          const mal = yield* RawClient.connect(tcp(d), { name: `m${data}` })
          yield* mal.write(frame(mal.privateGroup, { data }))
          expect(yield* mal.next(3000)).toEqual({ _tag: "Eof" })
        }
        const big = yield* RawClient.connect(tcp(d), { name: "big" })
        yield* big.write(frame(big.privateGroup, { data: 143120 }))
        const f = yield* obs.frame()
        expect([f.dataLen, f.bytes.length]).toEqual([143120, 48 + 32 + 143120])
        expect(d.stats().sessions).toBe(2)
      }).pipe(Effect.provide(captureLogs([]))),
    T,
  )
})
