/**
 * Partitions in process: virtual daemons of one embedded daemon split into
 * components and merged again, compared with what real Spread 5.0.1 daemons
 * showed their clients (tests/fixtures/spread-traces/27-*).
 */
import { describe, expect, it, layer } from "@effect/vitest"
import { Effect, Exit } from "effect"
import { decodeServerMessage, type Frame, readU32, ServiceBits } from "../../src/protocol/mod.ts"
import type { Address } from "../../src/protocol/address.ts"
import * as Daemon from "../../src/daemon/mod.ts"
import { RawClient, text, untext } from "../_helpers/raw_client.ts"
import { traceStreams } from "../_helpers/traces.ts"
import { clientVersion, normalize, parseD2c } from "./replay.ts"
import { joinNow, quiet, startDaemon } from "./_fixtures.ts"
import { Spread } from "../../src/client/mod.ts"
import { connectTestAt, layerTest, SpreadDaemon } from "../../src/testing/mod.ts"

const T = 15_000

/** The proc ids the real d1 and d2 had in trace 27 (README of the traces). */
const D1 = 1552775919
const D2 = 348480928

const at = (d: Daemon.Daemon, name: string): Address => {
  const v = d.daemons.find((x) => x.name === name)
  if (v === undefined) throw new Error(`no daemon "${name}"`)
  return { _tag: "Tcp", hostname: v.host, port: v.port }
}

const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("")

/** Membership frames compared as the traces README says: proc id kept, time only by its order. */
const shape = (frames: ReadonlyArray<Frame>) => {
  const times: Array<number> = []
  return frames.map((f) => {
    const n = normalize({ kind: "frame", frame: f }, (s) => s) as Record<string, unknown>
    const member = (f.type & ServiceBits.REG_MEMB_MESS) !== 0 || (f.type & ServiceBits.TRANSITION_MESS) !== 0
    if (!member || f.data.length < 12) return n
    const time = readU32(f.data, 4, true)
    if (!times.includes(time)) times.push(time)
    return {
      ...n,
      data: undefined,
      index: readU32(f.data, 8, true),
      procId: readU32(f.data, 0, true),
      timeRank: times.indexOf(time),
    }
  })
}

const withTimeOrder = (frames: ReadonlyArray<Frame>): boolean => {
  // Each new time seen is later than the one before.
  let last = -1
  for (const f of frames) {
    if ((f.type & (ServiceBits.REG_MEMB_MESS | ServiceBits.TRANSITION_MESS)) === 0 || f.data.length < 12) continue
    const t = readU32(f.data, 4, true)
    if (t < last) return false
    last = t
  }
  return true
}

const twoDaemons = { port: 0, unixSocket: false, name: "d1", procId: D1, virtualDaemons: [{ name: "d2", procId: D2 }] }

const membershipOf = (f: Frame) => {
  const m = decodeServerMessage(f)
  if (m._tag !== "Membership") throw new Error(`not a membership message: ${hex(f.bytes.subarray(0, 4))}`)
  return m
}

describe("Daemon partitions", () => {
  it.scoped(
    "Daemon.partition and heal show alice at d1 what real Spread showed her in 27-network-partition-merge",
    () =>
      Effect.gen(function* () {
        const streams = traceStreams("27-network-partition-merge")
        const c2d = streams.find((s) => s.conn === 1 && s.dir === "c2d")
        const d2c = streams.find((s) => s.conn === 1 && s.dir === "d2c")
        if (c2d === undefined || d2c === undefined) throw new Error("trace 27 has no conn1")
        const real = parseD2c(d2c.bytes, clientVersion(c2d.bytes)).items.flatMap((i) =>
          i.kind === "frame" ? [i.frame] : []
        )
        expect(real.length).toBe(6)

        const d = yield* startDaemon(twoDaemons)
        const alice = yield* RawClient.connect(at(d, "d1"), { name: "alice" })
        const bob = yield* RawClient.connect(at(d, "d2"), { name: "bob" })
        expect(alice.privateGroup).toBe("#alice#d1")
        expect(bob.privateGroup).toBe("#bob#d2")
        yield* alice.join("net")
        const ours: Array<Frame> = [yield* alice.frame(T)]
        yield* joinNow(bob, "net")
        ours.push(yield* alice.frame(T))
        yield* d.partition([["d1"], ["d2"]])
        expect(d.components()).toEqual([["d1"], ["d2"]])
        ours.push(...(yield* alice.frames(2, T)))
        yield* d.heal
        expect(d.components()).toEqual([["d1", "d2"]])
        ours.push(...(yield* alice.frames(1, T)))
        yield* bob.kill()
        ours.push(...(yield* alice.frames(1, T)))
        expect(shape(ours)).toEqual(shape(real))
        expect(withTimeOrder(ours)).toBe(true)
        // And byte for byte, but the times.
        const mask = (f: Frame) => {
          const b = f.bytes.slice()
          b.fill(0, 48 + 32 * f.numGroups + 4, 48 + 32 * f.numGroups + 8)
          return hex(b)
        }
        expect(ours.map(mask)).toEqual(real.map(mask))
      }),
    30_000,
  )

  it.scoped("Daemon.partition shows bob at d2 the transitional signal, himself alone, then the merge with 2 vs sets", () =>
    Effect.gen(function* () {
      const d = yield* startDaemon(twoDaemons)
      const alice = yield* RawClient.connect(at(d, "d1"), { name: "alice" })
      const bob = yield* RawClient.connect(at(d, "d2"), { name: "bob" })
      yield* joinNow(alice, "net")
      yield* joinNow(bob, "net")
      yield* d.partition([["d1"], ["d2"]])
      const [trans, alone] = yield* bob.frames(2, T)
      expect(trans.type & ServiceBits.TRANSITION_MESS).not.toBe(0)
      expect(readU32(trans.data, 0, true)).toBe(D1)
      expect(readU32(trans.data, 8, true)).toBe(2)
      const a = membershipOf(alone)
      expect(alone.type).toBe(ServiceBits.REG_MEMB_MESS | ServiceBits.CAUSED_BY_NETWORK)
      expect(a.members).toEqual(["#bob#d2"])
      // d2 leads its own component: the group id names d2, index 1.
      expect(readU32(alone.data, 0, true)).toBe(D2)
      expect(readU32(alone.data, 8, true)).toBe(1)
      expect(a.vsSets).toEqual([["#bob#d2"]])
      yield* d.heal
      const merged = yield* bob.frame(T)
      const m = membershipOf(merged)
      expect(m.members).toEqual(["#alice#d1", "#bob#d2"])
      // As bob's copy in the real trace (client.txt of 27): bob's set first
      // (d2's proc id is the smaller), his offset 0; d1 leads the merged configuration.
      expect(m.vsSets).toEqual([["#bob#d2"], ["#alice#d1"]])
      expect(readU32(merged.data, 16, true)).toBe(0)
      expect(readU32(merged.data, 0, true)).toBe(D1)
    }))

  it.scoped("Daemon delivers only inside a component while split, and in one order inside it", () =>
    Effect.gen(function* () {
      const d = yield* startDaemon({
        port: 0,
        unixSocket: false,
        name: "a",
        virtualDaemons: [{ name: "b" }, { name: "c" }],
      })
      const names = [["a", "x1"], ["a", "x2"], ["b", "y1"], ["c", "z1"], ["c", "z2"]] as const
      const cs = yield* Effect.forEach(names, ([dn, n]) => RawClient.connect(at(d, dn), { name: n }))
      for (const c of cs) yield* joinNow(c, "g")
      // Drain the joins of the others.
      for (const [i, c] of cs.entries()) yield* c.frames(cs.length - 1 - i, T)
      yield* d.partition([["a"], ["b", "c"]])
      // a: x1, x2 lose y1, z1, z2; b+c: y1, z1, z2 lose x1, x2.
      for (const c of cs) {
        const [t, m] = yield* c.frames(2, T)
        expect(t.type & ServiceBits.TRANSITION_MESS).not.toBe(0)
        const mm = membershipOf(m)
        expect(mm.members).toEqual(c.privateGroup.endsWith("#a") ? ["#x1#a", "#x2#a"] : ["#y1#b", "#z1#c", "#z2#c"])
      }
      // Concurrent AGREED senders on both sides.
      const N = 50
      yield* Effect.forEach(cs, (c) =>
        Effect.forEach(
          Array.from({ length: N }, (_, k) => k),
          (k) => c.multicast({ service: "Agreed", groups: ["g"], data: text(`${c.privateGroup}:${k}`) }),
        ), { concurrency: "unbounded" })
      const received = yield* Effect.forEach(
        cs,
        (c) =>
          Effect.map(c.frames((c.privateGroup.endsWith("#a") ? 2 : 3) * N, T), (fs) => fs.map((f) => untext(f.data))),
      )
      const side = (pg: string) => pg.endsWith("#a") ? "a" : "bc"
      for (const [i, got] of received.entries()) {
        // Only from its own component.
        expect(got.every((s) => side(s.split(":")[0]) === side(cs[i].privateGroup))).toBe(true)
        // Each sender's messages in the order sent.
        for (const sender of new Set(got.map((s) => s.split(":")[0]))) {
          const ks = got.filter((s) => s.startsWith(sender + ":")).map((s) => Number(s.split(":")[1]))
          expect(ks).toEqual(Array.from({ length: N }, (_, k) => k))
        }
      }
      // One total order per component.
      expect(received[1]).toEqual(received[0])
      expect(received[3]).toEqual(received[2])
      expect(received[4]).toEqual(received[2])
      // A private message across the split is not delivered; inside, it is.
      yield* cs[0].multicast({ service: "Agreed", groups: ["#y1#b"], data: text("across") })
      yield* cs[2].multicast({ service: "Agreed", groups: ["#z1#c"], data: text("inside") })
      expect(untext((yield* cs[3].frame(T)).data)).toBe("inside")
      const nothing = yield* cs[2].next(300)
      expect(nothing._tag).toBe("Timeout")
    }))

  it.scoped("Daemon gives a session on daemon B private names #x#B and #x is unique per daemon", () =>
    Effect.gen(function* () {
      const d = yield* startDaemon({ ...twoDaemons, name: "daemonA", virtualDaemons: [{ name: "daemonB" }] })
      const x1 = yield* RawClient.connect(at(d, "daemonA"), { name: "x" })
      const x2 = yield* RawClient.connect(at(d, "daemonB"), { name: "x" })
      expect(x1.privateGroup).toBe("#x#daemonA")
      expect(x2.privateGroup).toBe("#x#daemonB")
      yield* x1.multicast({ service: "Reliable", groups: ["#x#daemonB"], data: text("hi B") })
      const f = yield* x2.frame(T)
      expect(f.sender).toBe("#x#daemonA")
      expect(untext(f.data)).toBe("hi B")
      yield* joinNow(x1, "g")
      yield* joinNow(x2, "g")
      // Members listed by daemon in configuration order, then name.
      expect(d.members("g")).toEqual(["#x#daemonA", "#x#daemonB"])
    }))

  it.scoped("Daemon.partition refuses a split that does not name every daemon once, and changes nothing", () =>
    Effect.gen(function* () {
      const d = yield* startDaemon(twoDaemons)
      for (const bad of [[["d1"]], [["d1"], ["d1", "d2"]], [["d1"], ["d3", "d2"]], [["d1", "d2"], []]]) {
        const exit = yield* Effect.exit(d.partition(bad))
        expect(Exit.isFailure(exit)).toBe(true)
        if (Exit.isFailure(exit)) expect(String(exit.cause)).toContain("InvalidPartition")
      }
      expect(d.components()).toEqual([["d1", "d2"]])
    }))

  it.scoped("Daemon refuses virtual daemons with a repeated or illegal name", () =>
    Effect.gen(function* () {
      const r1 = yield* Effect.exit(
        quiet(Daemon.make({ port: 0, unixSocket: false, name: "a", virtualDaemons: [{ name: "a" }] })),
      )
      expect(Exit.isFailure(r1)).toBe(true)
      const r2 = yield* Effect.exit(
        quiet(Daemon.make({ port: 0, unixSocket: false, name: "a", virtualDaemons: [{ name: "b#c" }] })),
      )
      expect(Exit.isFailure(r2)).toBe(true)
    }))
})

describe("Daemon partitions through the client and the test layer", () => {
  layer(layerTest({ daemon: { name: "a", virtualDaemons: [{ name: "b" }] }, connect: { name: "alice" } }), {
    excludeTestServices: true,
  })("layerTest with a virtual daemon", (it) => {
    it.scoped("a Spread client sees Transitional, then a Network membership, then the merge", () =>
      Effect.gen(function* () {
        const alice = yield* Spread
        const bob = yield* connectTestAt("b", { name: "bob" })
        const d = yield* SpreadDaemon
        yield* alice.join("g")
        yield* bob.join("g")
        // Until alice's view holds both (the joins may be sequenced either way).
        for (;;) {
          const r = yield* alice.receive
          if (r._tag === "Membership" && r.members.length === 2) break
        }
        yield* d.partition([["a"], ["b"]])
        const t = yield* alice.receive
        expect(t._tag).toBe("Transitional")
        const m = yield* alice.receive
        expect(m._tag === "Membership" && [m.cause, m.members]).toEqual(["Network", ["#alice#a"]])
        yield* d.heal
        const merged = yield* alice.receive
        expect(merged._tag === "Membership" && [merged.cause, merged.members]).toEqual([
          "Network",
          ["#alice#a", "#bob#b"],
        ])
        // Who came with whom: one vs set per side (their order follows the proc ids).
        expect(merged._tag === "Membership" && [...merged.vsSets].map((s) => s.join()).sort()).toEqual([
          "#alice#a",
          "#bob#b",
        ])
      }))
  })
})
