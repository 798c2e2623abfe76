import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { encodeBlocks, type Request } from "../../src/client/batch.ts"
import { decodeMessage, nameFieldIs } from "../../src/client/message.ts"
import { adaptiveWindow, fixedWindow, noWindow } from "../../src/client/options.ts"
import { Sender } from "../../src/client/sender.ts"
import { ViewTracker } from "../../src/client/views.ts"
import { FlowControl } from "../../src/client/window.ts"
import {
  decodeServerMessage,
  encodeCommand,
  encodeFrame,
  encodeMembership,
  encodeMulticast,
  encodeRejectFor,
  Frame,
  FrameDecoder,
  latin1Bytes,
  type MulticastSpec,
  ServiceBits,
} from "../../src/protocol/mod.ts"
import { concatBytes } from "../../src/protocol/bytes.ts"

const PG = "#alice#localhost"
const frameOf = (bytes: Uint8Array, direction: "toClient" | "toDaemon" = "toClient"): Frame => {
  const d = new FrameDecoder(direction)
  d.push(bytes)
  const f = d.next()
  if (!(f instanceof Frame)) throw new Error("not a frame")
  return f
}
const multicast = (spec: Partial<MulticastSpec>): Request => {
  const full: MulticastSpec = { privateGroup: PG, service: "Agreed", groups: ["g"], data: new Uint8Array(10), ...spec }
  return { kind: "Multicast", spec: full, groups: full.groups, selfDiscard: full.selfDiscard ?? false }
}
const concat = (parts: ReadonlyArray<Uint8Array>): Uint8Array => concatBytes(parts)

describe("encodeBlocks", () => {
  it("encodeBlocks lays out the same bytes as encoding each frame, in order", () => {
    const requests: Array<Request> = [
      ...Array.from({ length: 5 }, (_, i) => multicast({ data: new Uint8Array(10).fill(i), groups: ["g"] })),
      multicast({ data: new Uint8Array(11), groups: ["g"] }), // another length: a new block
      { kind: "Join", groups: ["h"], frame: encodeCommand("Join", PG, "h") },
      multicast({ data: new Uint8Array(10), groups: ["g", "h"], messType: 3, selfDiscard: true }),
      multicast({ data: new Uint8Array(10).fill(9), groups: ["g", "h"], messType: 3, selfDiscard: true }),
    ]
    const blocks = encodeBlocks(requests, 0, requests.length, 64 * 1024)
    expect(blocks.map((b) => [b.from, b.to])).toEqual([[0, 5], [5, 6], [6, 7], [7, 9]])
    const expected = requests.map((r) => (r.kind === "Multicast" ? encodeMulticast(r.spec) : r.frame))
    expect(concat(blocks.map((b) => b.bytes))).toEqual(concat(expected))
  })

  it("encodeBlocks keeps blocks within maxBytes, a single larger frame alone", () => {
    const small = Array.from({ length: 10 }, () => multicast({ data: new Uint8Array(1000) })) // 1080-byte frames
    const blocks = encodeBlocks(small, 2, 10, 3000)
    expect(blocks.map((b) => [b.from, b.to])).toEqual([[2, 4], [4, 6], [6, 8], [8, 10]])
    for (const b of blocks) expect(b.bytes.length).toBeLessThanOrEqual(3000)
    const big = encodeBlocks([multicast({ data: new Uint8Array(5000) })], 0, 1, 3000)
    expect(big.length).toBe(1)
    expect(big[0].bytes.length).toBe(5080)
  })

  it("encodeBlocks does not merge messages whose service or mess_type differ", () => {
    const rs = [multicast({ service: "Fifo" }), multicast({ service: "Safe" }), multicast({ messType: 1 })]
    expect(encodeBlocks(rs, 0, 3, 1 << 20).length).toBe(3)
  })
})

describe("decodeMessage", () => {
  it("decodeMessage reads a data message lazily with the codec's fields", () => {
    const bytes = encodeMulticast({
      privateGroup: PG,
      service: "Fifo",
      groups: ["g1", "#bob#localhost"],
      messType: -7,
      data: Uint8Array.of(1, 2, 3),
    })
    const lazy = decodeMessage(frameOf(bytes))
    const eager = decodeServerMessage(frameOf(bytes))
    if (lazy._tag !== "Regular" || eager._tag !== "Regular") return expect.unreachable("not regular")
    for (const k of ["sender", "groups", "service", "type", "messType", "endianMismatch", "data"] as const) {
      expect(lazy[k]).toEqual(eager[k])
    }
  })

  it("decodeMessage leaves membership and reject frames to the codec", () => {
    const memb = encodeMembership("g", "Join", [PG], { procId: 1, time: 2, index: 3 }, PG)
    expect(decodeMessage(frameOf(memb))).toEqual(decodeServerMessage(frameOf(memb)))
    const rejected = frameOf(
      encodeMulticast({ privateGroup: PG, service: "Agreed", groups: ["g"], data: new Uint8Array(2) }),
      "toDaemon",
    )
    const reject = encodeRejectFor(rejected, PG)
    const m = decodeMessage(frameOf(reject))
    expect(m._tag).toBe("Reject")
    expect(m).toEqual(decodeServerMessage(frameOf(reject)))
  })

  it("nameFieldIs compares the name field as a C string, ignoring bytes after the NUL", () => {
    const bytes = encodeFrame({ type: ServiceBits.AGREED_MESS, name: PG, groups: ["g"] })
    const f = frameOf(bytes)
    expect(nameFieldIs(f, latin1Bytes(PG))).toBe(true)
    expect(nameFieldIs(f, latin1Bytes("#alice#localhos"))).toBe(false)
    expect(nameFieldIs(f, latin1Bytes("#alice#localhostx"))).toBe(false)
    bytes[4 + PG.length + 1] = 0x41 // garbage after the NUL
    expect(nameFieldIs(frameOf(bytes), latin1Bytes(PG))).toBe(true)
  })
})

describe("FlowControl", () => {
  it("FlowControl costs: adaptive takes the group size (capped), fixed takes one, off takes none", () => {
    const a = new FlowControl(adaptiveWindow(500))
    expect([a.capacity, a.costOf(0), a.costOf(1), a.costOf(3), a.costOf(10_000)]).toEqual([500, 1, 1, 3, 500])
    expect(a.batchLimit).toBe(125)
    const f = new FlowControl(fixedWindow(32))
    expect([f.capacity, f.costOf(7)]).toEqual([32, 1])
    const o = new FlowControl(noWindow)
    expect([o.enabled, o.capacity, o.costOf(7)]).toEqual([false, 0, 0])
  })

  it("FlowControl releases costs in the order messages were committed, and tracks peaks", () => {
    const w = new FlowControl(adaptiveWindow(10))
    w.commit(3)
    w.commit(0)
    w.commit(5)
    expect([w.inUse, w.inFlight, w.peakInUse, w.peakInFlight]).toEqual([8, 3, 8, 3])
    expect(w.returned()).toBe(3)
    expect(w.returned()).toBe(0)
    w.commit(2)
    expect(w.returned()).toBe(5)
    expect(w.returned()).toBe(2)
    expect(w.returned()).toBe(0) // nothing in flight
    expect([w.inUse, w.inFlight, w.peakInUse, w.peakInFlight]).toEqual([0, 0, 8, 3])
  })

  it.effect("FlowControl.wakeAll wakes every sender waiting for permits", () =>
    Effect.gen(function* () {
      const w = new FlowControl(fixedWindow(2))
      yield* w.take(2)
      const waiters = yield* Effect.forEach([1, 2, 3], () => Effect.fork(w.take(2)))
      yield* Effect.yieldNow()
      for (const f of waiters) expect(f.unsafePoll()).toBeNull()
      yield* w.wakeAll
      yield* Effect.forEach(waiters, Fiber.join)
    }))
})

describe("Sender", () => {
  const frame = (n: number) => new Uint8Array(n)

  it.effect("Sender queues frames whole and makes later senders wait behind earlier ones", () =>
    Effect.gen(function* () {
      const s = new Sender(2, 1000)
      const order: Array<string> = []
      expect(yield* s.queue(frame(10), () => order.push("a"))).toBe("Queued")
      expect(yield* s.queue(frame(10), () => order.push("b"))).toBe("Queued")
      const c = yield* Effect.fork(s.queue(frame(10), () => order.push("c")))
      yield* Effect.yieldNow()
      expect(s.waiting).toBe(1)
      // A newcomer does not overtake the waiting sender.
      expect(s.queueNow([frame(1)], 0, 1, () => order.push("d"))).toBe(0)
      const batch = yield* s.outbox.take
      expect(batch?.length).toBe(20)
      s.spaceFreed()
      expect(yield* Fiber.join(c)).toBe("Queued")
      expect(order).toEqual(["a", "b", "c"])
    }))

  it.effect("Sender.finish queues the last frame even when the outbox is full, then refuses everything", () =>
    Effect.gen(function* () {
      const s = new Sender(1, 1000)
      yield* s.queue(frame(1000), () => {})
      const waiting = yield* Effect.fork(s.queue(frame(10), () => {}))
      yield* Effect.yieldNow()
      s.finish(frame(48))
      expect(yield* Fiber.join(waiting)).toBe("Closed")
      expect(s.outbox.messages).toBe(2)
      expect(yield* s.queue(frame(1), () => {})).toBe("Closed")
    }))

  it.effect("interrupting a waiting sender queues nothing", () =>
    Effect.gen(function* () {
      const s = new Sender(1, 1000)
      yield* s.queue(frame(10), () => {})
      let committed = false
      const waiting = yield* Effect.fork(s.queue(frame(10), () => (committed = true)))
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(waiting)
      yield* s.outbox.take
      s.spaceFreed()
      expect(committed).toBe(false)
      expect(s.outbox.messages).toBe(0)
    }))
})

describe("ViewTracker", () => {
  it("ViewTracker applies memberships and self-leaves copy-on-write, once per flush", () => {
    const t = new ViewTracker()
    const gid = { procId: 1, time: 2, index: 3 }
    const before = t.current
    t.apply({
      _tag: "Membership",
      group: "g",
      cause: "Join",
      groupId: gid,
      members: ["a", "b"],
      vsSets: [],
      localVsSet: 0,
      changed: "b",
    })
    expect(t.size("g")).toBe(2)
    expect(t.current).toBe(before) // not flushed yet
    const after = t.flush()
    expect(after?.get("g")?.members).toEqual(["a", "b"])
    expect(before.size).toBe(0)
    expect(t.flush()).toBeUndefined()
    t.apply({ _tag: "SelfLeave", group: "g" })
    t.apply({ _tag: "SelfLeave", group: "other" })
    expect(t.flush()?.has("g")).toBe(false)
  })
})
