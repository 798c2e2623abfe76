import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { ConnectionError, RequestError } from "../../src/client/core/errors.ts"
import { frameAt, messageAt, ReceivedMessage } from "../../src/client/core/message.ts"
import { adaptiveWindow, fixedWindow, noWindow } from "../../src/client/options.ts"
import { Admission, type Target } from "../../src/client/admission/admission.ts"
import { Counting } from "../../src/client/admission/counting.ts"
import { prepareCommand, type PreparedFrame, prepareMulticast } from "../../src/client/admission/frames.ts"
import { NameCache } from "../../src/client/admission/name_cache.ts"
import { Outbound } from "../../src/client/admission/outbound.ts"
import { type OutgoingMessage, Sender } from "../../src/client/admission/send.ts"
import { ViewTracker } from "../../src/client/core/views.ts"
import { FlowControl } from "../../src/client/admission/window.ts"
import {
  decodeServerMessage,
  encodeCommand,
  encodeMembership,
  encodeMulticast,
  encodeRejectFor,
  Frame,
  FrameDecoder,
  type MulticastSpec,
} from "../../src/protocol/mod.ts"
import { concatBytes } from "../../src/protocol/bytes.ts"
import { groupEntry } from "../../src/protocol/encode.ts"
import { isCStringAt, readCString } from "../../src/protocol/names.ts"

const PG = "#alice#localhost"
const targetFor = (privateGroup: string, out: Outbound, flow: FlowControl): Target => ({
  out,
  flow,
  privateGroup,
  nameField: groupEntry(privateGroup),
})
const frameOf = (bytes: Uint8Array, direction: "toClient" | "toDaemon" = "toClient"): Frame => {
  const d = new FrameDecoder(direction)
  d.push(bytes)
  const f = d.next()
  if (!(f instanceof Frame)) throw new Error("not a frame")
  return f
}
const decoderAt = (bytes: Uint8Array): FrameDecoder => {
  const d = new FrameDecoder("toClient")
  d.push(bytes)
  if (d.advance() !== true) throw new Error("not a frame")
  return d
}
// The codec's frame for a message to one group, sent by PG: what the Sender must encode in place.
const codecFrame = (m: OutgoingMessage & { readonly groups: string }): Uint8Array =>
  encodeMulticast({
    privateGroup: PG,
    service: m.service ?? "Agreed",
    groups: [m.groups],
    data: typeof m.data === "string" ? new TextEncoder().encode(m.data) : m.data,
    messType: m.messType,
    selfDiscard: m.selfDiscard,
  })
const closedError = new ConnectionError({ reason: "Closed", privateGroup: PG, detail: "test" })
const senderOf = (out: Outbound, flow = new FlowControl(noWindow), membership = true) =>
  ((to) => new Sender(() => to, new ViewTracker(), membership, Effect.fail(closedError)))(targetFor(PG, out, flow))

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

  it.effect("FlowControl takes permits in runs into a credit that sends use synchronously, within the window", () =>
    Effect.gen(function* () {
      const w = new FlowControl(adaptiveWindow(8))
      expect(w.tryUse(1)).toBe(false) // no credit yet
      yield* w.acquire(1)
      // One permit asked, a run of a quarter of the window (2) taken.
      expect(w.credit).toBe(2)
      expect(w.tryUse(1)).toBe(true)
      w.commit(1)
      expect(w.tryUse(1)).toBe(true)
      w.commit(1)
      expect(w.tryUse(1)).toBe(false)
      // With nobody waiting, returned permits go straight to the credit.
      yield* w.giveBack(w.returned())
      expect([w.credit, w.inUse]).toEqual([1, 1])
    }))

  it.effect("FlowControl.acquire waits while the window is full and wakes when permits come back", () =>
    Effect.gen(function* () {
      const w = new FlowControl(fixedWindow(2))
      yield* w.acquire(2)
      expect(w.tryUse(2)).toBe(true)
      w.commit(1)
      w.commit(1)
      const waiter = yield* Effect.fork(w.acquire(1))
      yield* Effect.yieldNow()
      expect(waiter.unsafePoll()).toBeNull()
      expect(w.waiting).toBe(1)
      // A sender waits: returned permits go to the semaphore, not the credit.
      yield* w.giveBack(w.returned())
      yield* Fiber.join(waiter)
      expect([w.waiting, w.credit, w.inUse]).toEqual([0, 1, 1])
      expect(w.peakInUse).toBeLessThanOrEqual(w.capacity)
    }))

  it.effect("FlowControl.end wakes every wait for permits with what it asked (no resize), and later waits return at once", () =>
    Effect.gen(function* () {
      const w = new FlowControl(fixedWindow(2))
      yield* w.acquire(2)
      w.tryUse(2)
      w.commit(2)
      const waiters = yield* Effect.forEach([1, 2, 3], () => Effect.fork(w.acquire(2)))
      yield* Effect.yieldNow()
      for (const f of waiters) expect(f.unsafePoll()).toBeNull()
      yield* w.end
      yield* Effect.forEach(waiters, Fiber.join)
      // Each got exactly the 2 permits it asked for.
      expect([w.ended, w.credit, w.waiting]).toEqual([true, 6, 0])
      yield* w.acquire(1)
      expect(w.credit).toBe(6)
    }))

  it.effect("FlowControl.acquire interrupted loses no permits", () =>
    Effect.gen(function* () {
      const w = new FlowControl(fixedWindow(2))
      yield* w.acquire(2)
      w.tryUse(2)
      w.commit(2)
      const waiter = yield* Effect.fork(w.acquire(1))
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(waiter)
      yield* w.giveBack(w.returned()) // nobody waits now: straight to the credit
      expect(w.credit).toBe(2)
    }))
})

describe("Outbound", () => {
  const put = (o: Outbound, n: number, fill: number): boolean => {
    const buf = o.room(n)
    if (buf === undefined) return false
    buf.fill(fill, o.end, o.end + n)
    o.commit(n)
    return true
  }

  it.effect("Outbound hands every frame encoded since the last write to the writer as one view, in order", () =>
    Effect.gen(function* () {
      const o = new Outbound({ maxFrames: 100, maxBytes: 1 << 20 })
      for (let i = 1; i <= 3; i++) expect(put(o, 10_000, i)).toBe(true)
      const first = yield* o.take
      expect(first?.length).toBe(30_000)
      expect([first?.[0], first?.[10_000], first?.[29_999]]).toEqual([1, 2, 3])
      // Encoding goes on into the other buffer while `first` is written.
      expect(put(o, 5, 9)).toBe(true)
      expect(first?.[0]).toBe(1)
      const second = yield* o.take
      expect(Array.from(second ?? [])).toEqual([9, 9, 9, 9, 9])
      expect(o.writes).toBe(2)
    }))

  it.effect("Outbound.awaitRoom waits for the writer's next swap, and returns at once when the buffer is empty", () =>
    Effect.gen(function* () {
      const o = new Outbound({ maxFrames: 2, maxBytes: 1000 })
      yield* o.awaitRoom // empty: at once
      expect(put(o, 10, 1) && put(o, 10, 2)).toBe(true)
      expect(o.room(10)).toBeUndefined() // two frames waiting: full
      const waiting = yield* Effect.fork(o.awaitRoom)
      yield* Effect.yieldNow()
      expect(waiting.unsafePoll()).toBeNull()
      yield* o.take
      yield* Fiber.join(waiting)
      expect(o.room(10)).toBeDefined()
    }))

  it.effect("Outbound.finish appends the last frame even when full; a wait for room then ends", () =>
    Effect.gen(function* () {
      const o = new Outbound({ maxFrames: 1, maxBytes: 1000 })
      put(o, 1000, 1)
      const waiting = yield* Effect.fork(o.awaitRoom)
      yield* Effect.yieldNow()
      o.finish(new Uint8Array(48))
      yield* Fiber.join(waiting)
      expect(o.closed).toBe(true)
      expect((yield* o.take)?.length).toBe(1048)
      expect(yield* o.take).toBeUndefined()
      expect(o.room(1)).toBeUndefined()
    }))
})

describe("Admission", () => {
  const admissionOf = (out: Outbound, flow = new FlowControl(noWindow)) =>
    ((to) => new Admission(() => to, new Counting(new ViewTracker(), true), Effect.fail(closedError)))(
      targetFor(PG, out, flow),
    )
  const frame = (data: string, names = new NameCache()): PreparedFrame => {
    const p = prepareMulticast({ groups: "g", data }, names)
    if (p instanceof RequestError) throw p
    return p
  }
  const sent = (bytes: Uint8Array | undefined): Array<string> => {
    const d = new FrameDecoder("toDaemon")
    d.push(bytes ?? new Uint8Array(0))
    const out: Array<string> = []
    for (let f = d.next(); f instanceof Frame; f = d.next()) out.push(new TextDecoder().decode(f.data))
    return out
  }

  it.effect("Admission makes senders wait their turn, first come first served; an interrupted one admits nothing", () =>
    Effect.gen(function* () {
      const out = new Outbound({ maxFrames: 2, maxBytes: 1000 })
      const a = admissionOf(out)
      expect(a.tryAdmit(frame("a1")) && a.tryAdmit(frame("a2"))).toBe(true)
      expect(a.tryAdmit(frame("full"))).toBe(false) // two frames waiting: full
      const b = yield* Effect.fork(a.admit(frame("b")))
      const gone = yield* Effect.fork(a.admit(frame("gone")))
      const c = yield* Effect.fork(a.admit(frame("c")))
      yield* Effect.yieldNow()
      expect(a.waiting).toBe(3)
      expect(a.isOpen(a.target)).toBe(false)
      yield* Fiber.interrupt(gone)
      expect(sent(yield* out.take)).toEqual(["a1", "a2"])
      // While b and c wait, a newcomer does not skip ahead, even with room.
      expect(a.tryAdmit(frame("late"))).toBe(false)
      yield* Fiber.join(b)
      yield* Fiber.join(c)
      expect([a.waiting, a.isOpen(a.target)]).toEqual([0, true])
      expect(sent(yield* out.take)).toEqual(["b", "c"])
    }))

  it.effect("Admission admits, in one pass and in order, every waiter that can go once the first is admitted", () =>
    Effect.gen(function* () {
      const out = new Outbound({ maxFrames: 3, maxBytes: 1000 })
      const a = admissionOf(out)
      expect(a.tryAdmit(frame("a1")) && a.tryAdmit(frame("a2")) && a.tryAdmit(frame("a3"))).toBe(true)
      const b = yield* Effect.fork(a.admit(frame("b")))
      const c = yield* Effect.fork(a.admit(frame("c")))
      const d = yield* Effect.fork(a.admit(frame("d")))
      yield* Effect.yieldNow()
      expect(a.waiting).toBe(3)
      expect(sent(yield* out.take)).toEqual(["a1", "a2", "a3"])
      yield* Fiber.join(b)
      // b's admission admitted c's and d's frames too, before either ran again:
      // no fiber hop per waiting frame.
      expect(a.waiting).toBe(0)
      expect(sent(yield* out.take)).toEqual(["b", "c", "d"])
      yield* Fiber.join(c)
      yield* Fiber.join(d)
    }))

  it.effect("Admission's first waiter waits for window credit, and the next one goes after it", () =>
    Effect.gen(function* () {
      const out = new Outbound({ maxFrames: 100, maxBytes: 1 << 20 })
      const flow = new FlowControl(fixedWindow(1))
      const a = admissionOf(out, flow)
      const names = new NameCache()
      yield* a.admit(prepareCommand("Join", "g", names)) // counted: answered by a membership message
      const first = yield* Effect.fork(a.admit(frame("one", names)))
      const second = yield* Effect.fork(a.admit(frame("two", names)))
      yield* Effect.yieldNow()
      expect([first.unsafePoll(), second.unsafePoll(), a.waiting, flow.waiting]).toEqual([null, null, 2, 1])
      yield* flow.giveBack(flow.returned()) // the join's answer came back
      yield* Fiber.join(first)
      yield* Effect.yieldNow()
      expect(second.unsafePoll()).toBeNull()
      yield* flow.giveBack(flow.returned())
      yield* Fiber.join(second)
      expect(sent(yield* out.take).slice(1)).toEqual(["one", "two"])
    }))

  it.effect("Admission fails waiting senders with the sticky error once the buffer closes", () =>
    Effect.gen(function* () {
      const out = new Outbound({ maxFrames: 1, maxBytes: 1000 })
      const a = admissionOf(out)
      expect(a.tryAdmit(frame("x"))).toBe(true)
      const waiting = yield* Effect.fork(Effect.flip(a.admit(frame("y"))))
      yield* Effect.yieldNow()
      out.abort()
      expect(yield* Fiber.join(waiting)).toBe(closedError)
    }))
})

describe("Sender", () => {
  const specs: ReadonlyArray<MulticastSpec> = [
    { privateGroup: PG, service: "Agreed", groups: ["g"], data: new Uint8Array([1, 2, 3]) },
    { privateGroup: PG, service: "Safe", groups: ["a", "bb", "#bob#localhost"], data: new Uint8Array(0), messType: -2 },
    { privateGroup: PG, service: "Unreliable", selfDiscard: true, groups: ["x"], data: new Uint8Array(1000).fill(7) },
    { privateGroup: PG, service: "Fifo", groups: ["g"], data: new TextEncoder().encode("héllo"), messType: 65535 },
  ]

  it.effect("Sender encodes in place exactly the codec's frames, text as UTF-8", () =>
    Effect.gen(function* () {
      const out = new Outbound({ maxFrames: 100, maxBytes: 1 << 20 })
      const s = senderOf(out)
      for (const spec of specs) {
        yield* s.multicast({
          groups: spec.groups,
          data: spec.service === "Fifo" ? "héllo" : spec.data,
          service: spec.service,
          messType: spec.messType,
          selfDiscard: spec.selfDiscard,
        })
      }
      yield* s.command("Join", "g")
      yield* s.command("Leave", "g")
      const expected = concatBytes([
        ...specs.map(encodeMulticast),
        encodeCommand("Join", PG, "g"),
        encodeCommand("Leave", PG, "g"),
      ])
      expect(yield* out.take).toEqual(expected)
      expect(s.killFrame).toEqual(encodeCommand("Kill", PG, PG))
    }))

  it.effect("Sender's one-step path for a single named group encodes the same bytes as the general path", () =>
    Effect.gen(function* () {
      const out = new Outbound({ maxFrames: 100, maxBytes: 1 << 20 })
      const s = senderOf(out)
      const cases = [
        { groups: "g", data: new Uint8Array([9, 8, 7]), service: "Fifo" as const },
        { groups: "g", data: "héllo", messType: -7, selfDiscard: true },
        { groups: "#bob#localhost", data: new Uint8Array(0), service: "Safe" as const, messType: 65535 },
      ]
      // Each twice: the first validates and caches the name, the second takes the one-step path.
      for (const m of cases) for (let i = 0; i < 2; i++) yield* s.multicast(m)
      const expected = concatBytes(cases.flatMap((m) => [codecFrame(m), codecFrame(m)]))
      expect(yield* out.take).toEqual(expected)
    }))

  it.effect("Sender.multicastMany of simple messages takes the one-step path, same bytes, still all-or-nothing", () =>
    Effect.gen(function* () {
      const out = new Outbound({ maxFrames: 100, maxBytes: 1 << 20 })
      const s = senderOf(out)
      yield* s.multicast({ groups: ["g"], data: "cache g" }) // validates and caches "g"
      const first = yield* out.take
      const batch = [
        { groups: "g", data: new Uint8Array([1, 2]) },
        { groups: "g", data: "two", service: "Fifo" as const, messType: 3 },
        { groups: "g", data: new Uint8Array(0), selfDiscard: true },
      ]
      yield* s.multicastMany(batch)
      const expected = concatBytes(batch.map(codecFrame))
      expect(yield* out.take).toEqual(expected)
      expect(first?.length).toBeGreaterThan(0)
      // One bad message among simple ones: nothing is sent.
      const e = yield* Effect.flip(s.multicastMany([...batch, { groups: "g", data: "", messType: 1 << 16 }]))
      expect(e.reason).toBe("IllegalMessType")
      expect(out.frames).toBe(0)
    }))

  it.effect("Sender counts joins and leaves the daemon answers, and multicasts that come back", () =>
    Effect.gen(function* () {
      const out = new Outbound({ maxFrames: 100, maxBytes: 1 << 20 })
      const flow = new FlowControl(fixedWindow(100))
      const s = senderOf(out, flow)
      yield* s.command("Join", "g") // answered: counted
      yield* s.command("Join", "g") // already joined: no answer, not counted
      yield* s.multicast({ groups: "g", data: "back" }) // comes back: counted
      yield* s.multicast({ groups: "elsewhere", data: "not back" })
      yield* s.multicast({ groups: "g", data: "discarded", selfDiscard: true })
      yield* s.command("Leave", "nope") // not a member: no answer
      yield* s.command("Leave", "g") // answered: counted
      expect([flow.inFlight, flow.inUse]).toEqual([3, 3])
      const quiet = senderOf(
        new Outbound({ maxFrames: 100, maxBytes: 1 << 20 }),
        new FlowControl(fixedWindow(100)),
        false,
      )
      yield* quiet.command("Join", "g") // no membership messages: nothing answers
      expect(s.joined.has("g")).toBe(false)
      expect(quiet.joined.has("g")).toBe(true)
    }))

  it.effect("Sender refuses what a real daemon mishandles before encoding anything", () =>
    Effect.gen(function* () {
      const out = new Outbound({ maxFrames: 100, maxBytes: 1 << 20 })
      const s = senderOf(out)
      const groups44 = Array.from({ length: 44 }, (_, i) => `g${i}`)
      expect((yield* Effect.flip(s.multicast({ groups: groups44, data: "" }))).reason).toBe("TooManyGroups")
      expect((yield* Effect.flip(s.multicast({ groups: "g", data: new Uint8Array(143_120) }))).reason).toBe(
        "MessageTooLong",
      )
      yield* s.multicast({ groups: groups44.slice(0, 43), data: new Uint8Array(143_151 - 43 * 32) })
      expect(out.frames).toBe(1)
    }))
})

describe("ReceivedMessage", () => {
  it("messageAt reads a data message with the codec's fields, one object, lazily", () => {
    const bytes = encodeMulticast({
      privateGroup: "#bob#localhost",
      service: "Safe",
      groups: ["g", "h"],
      messType: -5,
      data: new TextEncoder().encode("hello there"),
    })
    const m = messageAt(decoderAt(bytes))
    expect(m).toBeInstanceOf(ReceivedMessage)
    const codec = decodeServerMessage(frameOf(bytes))
    if (!(m instanceof ReceivedMessage) || codec instanceof Error || codec._tag !== "Regular") {
      throw new Error("not regular")
    }
    for (const k of ["sender", "groups", "service", "type", "messType", "endianMismatch", "data"] as const) {
      expect(m[k]).toEqual(codec[k])
    }
    expect(m.sentBy(new TextEncoder().encode("#bob#localhost"))).toBe(true)
    expect(m.sentBy(new TextEncoder().encode("#bob#localhos"))).toBe(false)
  })

  it("groupAt names each destination as groups does, and answers a known name with that very string", () => {
    const groups = ["g", "ab", "abc", "#bob#localhost", "x".repeat(31)]
    const m = messageAt(
      decoderAt(encodeMulticast({ privateGroup: PG, service: "Fifo", groups, data: new Uint8Array(3) })),
    )
    if (!(m instanceof ReceivedMessage)) throw new Error("not regular")
    expect(m.groupCount).toBe(5)
    const known = "ab".concat("") // a string of its own, not the literal
    expect(groups.map((_, i) => m.groupAt(i, known))).toEqual(groups)
    expect(m.groupAt(1, known)).toBe(known)
    // A prefix, or a longer name, is not the name.
    expect(groups.map((_, i) => m.groupAt(i, "a"))).toEqual(groups)
    expect(groups.map((_, i) => m.groupAt(i, "abcd"))).toEqual(groups)
    expect(m.groupAt(4)).toBe("x".repeat(31))
    expect(m.groups).toEqual(groups)
    expect(m.groupAt(2, "zzz")).toBe("abc")
  })

  it("isCStringAt answers what comparing readCString's string would, for fields with and without a NUL", () => {
    const buf = new Uint8Array(40)
    const names = ["", "a", "ab", "abc", "abcd", "é", "x".repeat(31), "x".repeat(32)]
    let seed = 7
    for (let round = 0; round < 400; round++) {
      // Short random fields over a small alphabet, so names match often.
      for (let i = 0; i < buf.length; i++) {
        seed = (seed * 1103515245 + 12345) >>> 0
        const r = seed % 7
        buf[i] = r === 0 ? 0 : r === 6 ? 0xe9 : [0x61, 0x62, 0x63, 0x64, 0x78][r - 1]
      }
      for (const size of [4, 31, 32]) {
        for (const offset of [0, 3, 36]) {
          for (const name of names) {
            expect([offset, size, name, isCStringAt(buf, offset, size, name)])
              .toEqual([offset, size, name, readCString(buf, offset, size) === name])
          }
        }
      }
    }
  })

  it("a ReceivedMessage prints its fields and a short preview (console.log, Effect.log, JSON)", () => {
    const bytes = encodeMulticast({
      privateGroup: "#bob#localhost",
      service: "Fifo",
      groups: ["chat"],
      messType: 3,
      data: new TextEncoder().encode("a fairly long message that goes past the preview\n".padEnd(50, "!")),
    })
    const m = messageAt(decoderAt(bytes))
    const json = JSON.parse(JSON.stringify(m))
    expect(json).toMatchObject({
      sender: "#bob#localhost",
      groups: ["chat"],
      service: "Fifo",
      messType: 3,
      dataLength: 50,
    })
    expect(json.preview).toBe("a fairly long message that goes …")
    const shown = Deno.inspect(m)
    expect(shown).toContain("#bob#localhost")
    expect(shown).toContain("dataLength: 50")
    expect(String(m)).toContain("Regular from #bob#localhost to chat (Fifo, mess_type 3, 50 bytes)")
  })

  it("messageAt leaves membership and reject frames to the codec", () => {
    const memb = encodeMembership("g", "Join", [PG], { procId: 1, time: 2, index: 3 }, PG)
    expect(messageAt(decoderAt(memb))).toEqual(decodeServerMessage(frameOf(memb)))
    const rejected = frameOf(
      encodeMulticast({ privateGroup: PG, service: "Agreed", groups: ["g"], data: new Uint8Array(2) }),
      "toDaemon",
    )
    const reject = encodeRejectFor(rejected, PG)
    const m = messageAt(decoderAt(reject))
    if (m instanceof Error) throw m
    expect(m._tag).toBe("Reject")
    expect(m).toEqual(decodeServerMessage(frameAt(decoderAt(reject))))
  })
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
