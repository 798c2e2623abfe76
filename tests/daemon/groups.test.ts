/**
 * Groups and delivery: membership messages, multicast destinations, service
 * levels, SELF_DISCARD, the hint and byte order (protocol reference 6–8).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import {
  decodeServerMessage,
  encodeCommand,
  encodeFrame,
  type Frame,
  type MembershipMessage,
  ServiceBits,
  type ServiceLevel,
} from "../../src/protocol/mod.ts"
import { RawClient, text, untext } from "../_helpers/raw_client.ts"
import { eventually, joinNow, quiet, startDaemon, tcp } from "./_fixtures.ts"

const T = 10_000
const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("")
const typeHex = (f: Frame): string => hex(f.bytes.subarray(0, 4))
const pg = (name: string): string => `#${name}#localhost`

const membership = (f: Frame): MembershipMessage => {
  const m = decodeServerMessage(f)
  if (m._tag === "Membership") return m
  throw new Error(`not a membership message: type ${typeHex(f)}`)
}

/** Sends a marker to the client's own private group and answers the frames before it. */
const untilMarker = (c: RawClient) =>
  Effect.gen(function* () {
    const marker = `marker-${Math.random()}`
    yield* c.multicast({ service: "Agreed", groups: [c.privateGroup], data: text(marker) })
    const before: Array<Frame> = []
    for (;;) {
      const f = yield* c.frame()
      if (f.sender === c.privateGroup && untext(f.data) === marker) return before
      before.push(f)
    }
  })

describe("Daemon groups", () => {
  it.scopedLive(
    "Daemon sends every member CAUSED_BY_JOIN with the byte-wise sorted members and the joiner as vs set",
    () =>
      Effect.gen(function* () {
        const d = yield* startDaemon()
        // Joined in this order; byte-wise order of "#x#localhost" is Zed, a, a$, ab.
        const names = ["ab", "a", "Zed", "a$"]
        const clients: Array<RawClient> = []
        for (const n of names) {
          const c = yield* RawClient.connect(tcp(d), { name: n })
          yield* c.join("grp")
          clients.push(c)
          // Everyone in the group so far gets the same message.
          const msgs = yield* Effect.forEach(clients, (m) => m.frame())
          for (const f of msgs) expect(hex(f.bytes)).toBe(hex(msgs[0].bytes))
          const m = membership(msgs[0])
          expect(m.members).toEqual(names.slice(0, clients.length).map(pg).sort())
          expect(typeHex(msgs[0])).toBe("80110080")
          expect(m.group).toBe("grp")
          expect(m.cause).toBe("Join")
          expect(m.groupId.index).toBe(clients.length)
          expect(m.changed).toBe(pg(n))
          expect(m.vsSets).toEqual([[pg(n)]])
          expect(msgs[0].dataLen).toBe(56)
          expect(hex(msgs[0].bytes.subarray(40, 44))).toBe("80000080")
        }
        const last = yield* clients[0].next(100)
        expect(last._tag).toBe("Timeout")
        expect(d.members("grp")).toEqual([pg("Zed"), pg("a"), pg("a$"), pg("ab")])
      }).pipe(quiet),
    T,
  )

  it.scopedLive(
    "Daemon answers a join past maxGroupMembers with a REJECT to the joiner alone and changes nothing",
    () =>
      Effect.gen(function* () {
        const d = yield* startDaemon({ maxGroupMembers: 2 })
        const a = yield* RawClient.connect(tcp(d), { name: "a" })
        const b = yield* RawClient.connect(tcp(d), { name: "b" })
        const c = yield* RawClient.connect(tcp(d), { name: "c" })
        yield* joinNow(a, "full")
        yield* joinNow(b, "full")
        yield* a.frame() // b's join, as seen by a
        yield* c.join("full")
        const f = yield* c.frame()
        const r = decodeServerMessage(f)
        expect(r._tag).toBe("Reject")
        if (r._tag !== "Reject") return
        expect(r.oldType).toBe(0x100) // CAUSED_BY_JOIN in place of JOIN
        expect(r.sender).toBe(pg("c"))
        expect(r.groups).toEqual(["full", pg("c")])
        expect(typeHex(f)).toBe("80004080")
        expect(d.members("full")).toEqual([pg("a"), pg("b")])
        // Nobody else heard anything.
        expect((yield* a.next(100))._tag).toBe("Timeout")
        expect((yield* b.next(100))._tag).toBe("Timeout")
        // After a member leaves, the join goes through.
        yield* b.leave("full")
        yield* joinNow(c, "full")
        expect(d.members("full")).toEqual([pg("a"), pg("c")])
      }).pipe(quiet),
    T,
  )

  it.scopedLive(
    "Daemon sends the leaver a self-leave and the others CAUSED_BY_LEAVE without it",
    () =>
      Effect.gen(function* () {
        const d = yield* startDaemon()
        const alice = yield* RawClient.connect(tcp(d), { name: "alice" })
        const bob = yield* RawClient.connect(tcp(d), { name: "bob" })
        yield* alice.join("grp")
        yield* alice.frame()
        yield* bob.join("grp")
        yield* alice.frame()
        yield* bob.frame()
        yield* bob.leave("grp")
        const self = yield* bob.frame()
        expect(hex(self.bytes)).toBe(
          hex(encodeFrame({ type: ServiceBits.CAUSED_BY_LEAVE, name: "grp", groups: [] })),
        )
        expect(self.bytes.length).toBe(48)
        const left = yield* alice.frame()
        const m = membership(left)
        expect(typeHex(left)).toBe("80120080")
        expect([m.cause, m.members, m.changed, m.vsSets, m.groupId.index]).toEqual([
          "Leave",
          [pg("alice")],
          pg("bob"),
          [[pg("bob")]],
          3,
        ])
        // bob is out: a message to the group no longer reaches it.
        yield* alice.multicast({ service: "Agreed", groups: ["grp"], data: text("after") })
        expect(untext((yield* alice.frame()).data)).toBe("after")
        expect(yield* untilMarker(bob)).toEqual([])
      }).pipe(quiet),
    T,
  )

  it.scopedLive(
    "Daemon ignores a duplicate join and a leave of a group the session is not in",
    () =>
      Effect.gen(function* () {
        const d = yield* startDaemon()
        const alice = yield* RawClient.connect(tcp(d), { name: "alice" })
        const bob = yield* RawClient.connect(tcp(d), { name: "bob" })
        yield* alice.join("grp")
        yield* alice.join("grp")
        yield* alice.leave("nothere")
        yield* bob.leave("grp")
        const seen = yield* untilMarker(alice)
        expect(seen.map((f) => membership(f).groupId.index)).toEqual([1])
        yield* bob.join("grp")
        expect(membership(yield* alice.frame()).groupId.index).toBe(2)
        expect(d.stats().groups).toBe(1)
      }).pipe(quiet),
    T,
  )

  for (const how of ["KILL", "EOF", "abrupt close"] as const) {
    it.scopedLive(
      `Daemon sends CAUSED_BY_DISCONNECT for each group of a session that ends by ${how}`,
      () =>
        Effect.gen(function* () {
          const d = yield* startDaemon()
          const alice = yield* RawClient.connect(tcp(d), { name: "alice" })
          const bob = yield* RawClient.connect(tcp(d), { name: "bob" })
          for (const g of ["dc", "dc2"]) {
            yield* alice.join(g)
            yield* alice.frame()
            yield* bob.join(g)
            yield* alice.frame()
            yield* bob.frame()
          }
          if (how === "KILL") yield* bob.kill()
          else if (how === "EOF") yield* bob.closeWrite
          else yield* bob.close
          const notices = yield* alice.frames(2)
          expect(notices.map((f) => typeHex(f))).toEqual(["80140080", "80140080"])
          expect(notices.map((f) => {
            const m = membership(f)
            return [m.group, m.members, m.changed, m.groupId.index]
          })).toEqual([["dc", [pg("alice")], pg("bob"), 3], ["dc2", [pg("alice")], pg("bob"), 3]])
          if (how !== "abrupt close") {
            // bob gets nothing more, and its socket is closed.
            expect(yield* bob.next(1000)).toEqual({ _tag: "Eof" })
          }
          expect(yield* eventually(() => d.stats().sessions === 1)).toBe(true)
          expect(d.members("dc")).toEqual([pg("alice")])
        }).pipe(quiet),
      T,
    )
  }

  it.scopedLive(
    "Daemon deletes an empty group, and a new join starts it again at index 1",
    () =>
      Effect.gen(function* () {
        const d = yield* startDaemon()
        const alice = yield* RawClient.connect(tcp(d), { name: "alice" })
        yield* alice.join("grp")
        expect(membership(yield* alice.frame()).groupId.index).toBe(1)
        yield* alice.leave("grp")
        expect(typeHex(yield* alice.frame())).toBe("80020080")
        expect(yield* eventually(() => d.stats().groups === 0)).toBe(true)
        expect(d.members("grp")).toEqual([])
        yield* alice.join("grp")
        expect(membership(yield* alice.frame()).groupId.index).toBe(1)
      }).pipe(quiet),
    T,
  )

  it.scopedLive("Daemon delivers a multicast to a group the sender is not in", () =>
    Effect.gen(function* () {
      const d = yield* startDaemon()
      const alice = yield* RawClient.connect(tcp(d), { name: "alice" })
      const bob = yield* RawClient.connect(tcp(d), { name: "bob" })
      yield* bob.join("open")
      yield* bob.frame()
      yield* alice.multicast({ service: "Agreed", groups: ["open"], data: text("hi") })
      const f = yield* bob.frame()
      expect([f.sender, f.groups, untext(f.data)]).toEqual([pg("alice"), ["open"], "hi"])
      expect(yield* untilMarker(alice)).toEqual([])
      // A group with no members delivers nothing, and nothing is reported.
      yield* alice.multicast({ service: "Agreed", groups: ["empty"], data: text("lost") })
      expect(yield* untilMarker(alice)).toEqual([])
    }).pipe(quiet), T)

  it.scopedLive(
    "Daemon delivers to a private group only that session, and nothing for unknown ones",
    () =>
      Effect.gen(function* () {
        const d = yield* startDaemon()
        const alice = yield* RawClient.connect(tcp(d), { name: "alice" })
        const bob = yield* RawClient.connect(tcp(d), { name: "bob" })
        const carol = yield* RawClient.connect(tcp(d), { name: "carol" })
        yield* alice.multicast({
          service: "Reliable",
          groups: [pg("bob"), pg("nobody"), "#bob#elsewhere"],
          data: text("p2p"),
        })
        const f = yield* bob.frame()
        expect([f.sender, f.groups, untext(f.data)]).toEqual([
          pg("alice"),
          [pg("bob"), pg("nobody"), "#bob#elsewhere"],
          "p2p",
        ])
        expect(yield* untilMarker(alice)).toEqual([])
        expect(yield* untilMarker(carol)).toEqual([])
      }).pipe(quiet),
    T,
  )

  it.scopedLive(
    "Daemon delivers one copy of a multi-group message, listing the groups as sent, duplicates included",
    () =>
      Effect.gen(function* () {
        const d = yield* startDaemon()
        const alice = yield* RawClient.connect(tcp(d), { name: "alice" })
        const bob = yield* RawClient.connect(tcp(d), { name: "bob" })
        const carol = yield* RawClient.connect(tcp(d), { name: "carol" })
        for (const [c, gs] of [[alice, ["g1"]], [bob, ["g2"]], [carol, ["g1", "g2"]]] as const) {
          for (const g of gs) yield* joinNow(c, g)
        }
        for (const c of [alice, bob, carol]) yield* untilMarker(c)
        const groups = ["g1", "g2", "g2", pg("carol")]
        yield* alice.multicast({ service: "Agreed", groups, data: text("multi") })
        for (const c of [alice, bob, carol]) {
          const got = yield* untilMarker(c)
          expect(got.map((f) => [f.sender, f.groups, untext(f.data)])).toEqual([[pg("alice"), groups, "multi"]])
        }
      }).pipe(quiet),
    T,
  )

  it.scopedLive(
    "Daemon withholds a SELF_DISCARD message from its sender only, with the bit kept for the others",
    () =>
      Effect.gen(function* () {
        const d = yield* startDaemon()
        const alice = yield* RawClient.connect(tcp(d), { name: "alice" })
        const bob = yield* RawClient.connect(tcp(d), { name: "bob" })
        yield* joinNow(alice, "sd")
        yield* joinNow(bob, "sd")
        yield* untilMarker(alice)
        yield* untilMarker(bob)
        yield* alice.multicast({ service: "Agreed", selfDiscard: true, groups: ["sd", pg("alice")], data: text("x") })
        yield* alice.multicast({ service: "Agreed", groups: ["sd"], data: text("y") })
        const atBob = yield* untilMarker(bob)
        expect(atBob.map((f) => [typeHex(f), untext(f.data)])).toEqual([["d0000080", "x"], ["90000080", "y"]])
        const atAlice = yield* untilMarker(alice)
        expect(atAlice.map((f) => untext(f.data))).toEqual(["y"])
      }).pipe(quiet),
    T,
  )

  it.scopedLive(
    "Daemon delivers all six service levels unchanged, in send order, to every member",
    () =>
      Effect.gen(function* () {
        const d = yield* startDaemon()
        const alice = yield* RawClient.connect(tcp(d), { name: "alice" })
        const bob = yield* RawClient.connect(tcp(d), { name: "bob" })
        yield* joinNow(alice, "svc")
        yield* joinNow(bob, "svc")
        yield* untilMarker(alice)
        yield* untilMarker(bob)
        const levels: ReadonlyArray<ServiceLevel> = ["Unreliable", "Reliable", "Fifo", "Causal", "Agreed", "Safe"]
        for (const [i, service] of levels.entries()) {
          yield* alice.multicast({ service, groups: ["svc"], messType: i + 1, data: text(service) })
        }
        for (const c of [alice, bob]) {
          const got = yield* c.frames(6)
          expect(got.map((f) => [typeHex(f), f.messType, untext(f.data)])).toEqual([
            ["81000080", 1, "Unreliable"],
            ["82000080", 2, "Reliable"],
            ["84000080", 3, "Fifo"],
            ["88000080", 4, "Causal"],
            ["90000080", 5, "Agreed"],
            ["a0000080", 6, "Safe"],
          ])
        }
      }).pipe(quiet),
    T,
  )

  it.scopedLive(
    "Daemon passes mess_type and the hint bytes through untouched, and zero-length data",
    () =>
      Effect.gen(function* () {
        const d = yield* startDaemon()
        const alice = yield* RawClient.connect(tcp(d), { name: "alice" })
        const cases: ReadonlyArray<[number, string]> = [
          [0, "80000080"],
          [1, "80010080"],
          [-1, "80ffff80"],
          [255, "80ff0080"],
          [256, "80000180"],
          [0x1234, "80341280"],
          [32767, "80ff7f80"],
          [-32768, "80008080"],
        ]
        for (const [messType] of cases) {
          yield* alice.multicast({ service: "Fifo", groups: [pg("alice")], messType, data: new Uint8Array(0) })
        }
        const got = yield* alice.frames(cases.length)
        expect(got.map((f) => [f.messType, hex(f.bytes.subarray(40, 44)), f.dataLen])).toEqual(
          cases.map(([m, h]) => [m, h, 0]),
        )
      }).pipe(quiet),
    T,
  )

  it.scopedLive(
    "Daemon delivers a big-endian client's messages little-endian, leaving its hint bytes as sent",
    () =>
      Effect.gen(function* () {
        const d = yield* startDaemon()
        const alice = yield* RawClient.connect(tcp(d), { name: "alice" })
        const big = yield* RawClient.connect(tcp(d), { name: "bigend" })
        yield* alice.join("endian")
        yield* alice.frame()
        yield* big.write(encodeCommand("Join", big.privateGroup, "endian", false))
        const joined = yield* big.frame()
        expect(typeHex(joined)).toBe("80110080")
        expect(membership(joined).members).toEqual([pg("alice"), pg("bigend")])
        yield* alice.frame()
        yield* big.multicast({
          service: "Agreed",
          groups: ["endian"],
          messType: 0x1234,
          data: text("BEmsg"),
          littleEndian: false,
        })
        for (const c of [alice, big]) {
          const f = yield* c.frame()
          expect({
            type: typeHex(f),
            numGroups: hex(f.bytes.subarray(36, 40)),
            hint: hex(f.bytes.subarray(40, 44)),
            dataLen: hex(f.bytes.subarray(44, 48)),
            data: untext(f.data),
            messType: f.messType,
            hintLittleEndian: f.hintLittleEndian,
          }).toEqual({
            type: "90000080",
            numGroups: "01000000",
            hint: "00123400",
            dataLen: "05000000",
            data: "BEmsg",
            messType: 0x1234,
            hintLittleEndian: false,
          })
        }
        yield* alice.multicast({ service: "Agreed", groups: ["endian"], messType: 0x1234, data: text("LE") })
        for (const c of [alice, big]) {
          expect(hex((yield* c.frame()).bytes.subarray(0, 48))).toMatch(/^90000080.*80341280/)
        }
        yield* big.write(encodeCommand("Kill", big.privateGroup, big.privateGroup, false))
        expect(membership(yield* alice.frame()).cause).toBe("Disconnect")
      }).pipe(quiet),
    T,
  )
})
