import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect, Fiber, Stream, TestClock } from "effect"
import { connect, type Connection } from "../../src/client/connection.ts"
import { fixedWindow } from "../../src/client/options.ts"
import { RequestError } from "../../src/client/core/errors.ts"
import { crc32 } from "../../src/client/features/envelope.ts"
import { abortPayload, FRAGMENT_BYTES, fragmentPayloads } from "../../src/client/features/fragments.ts"
import { MAX_PARTIALS_PER_SENDER, PARTIAL_OVERHEAD, Reassembly } from "../../src/client/features/reassembly.ts"
import { messageAt, ReceivedMessage } from "../../src/client/core/message.ts"
import { encodeMulticast, FrameDecoder, type RegularMessage, type ServerMessage } from "../../src/protocol/mod.ts"
import { Prng } from "../_helpers/prng.ts"
import { sleep } from "./_fixtures.ts"
import { daemonAndClients } from "../_helpers/clients.ts"

const TIMEOUT = 20_000

const bytesOf = (n: number, seed: number): Uint8Array => new Prng(seed).bytes(n)

// Byte equality without vitest's element-by-element diffing (slow on MiBs).
const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/** The next `n` data messages of `conn`. */
const regulars = (conn: Connection, n: number) =>
  Stream.runCollect(
    conn.messages.pipe(
      Stream.filter((m: ServerMessage): m is RegularMessage => m._tag === "Regular"),
      Stream.take(n),
    ),
  ).pipe(Effect.map((c) => Array.from(c)))

/** A received message made of `payload`, as the reader would see it. */
const received = (payload: Uint8Array, sender = "#bob#localhost"): ReceivedMessage => {
  const d = new FrameDecoder("toClient")
  d.push(encodeMulticast({ privateGroup: sender, service: "Fifo", groups: ["g"], data: payload }))
  if (d.advance() !== true) throw new Error("no frame")
  const m = messageAt(d)
  if (!(m instanceof ReceivedMessage)) throw new Error("not a data message")
  return m
}

describe("large messages", () => {
  it.scopedLive(
    "a 1 MiB message goes in fragments and arrives whole, in order with its sender's other messages",
    () =>
      Effect.gen(function* () {
        const { clients: [a, b] } = yield* daemonAndClients("a", "b")
        yield* b.join("big", { confirmed: true })
        yield* a.join("big", { confirmed: true })
        const big = bytesOf(1024 * 1024 + 7, 1)
        const got = yield* Effect.fork(regulars(b, 3))
        yield* a.multicast({ groups: "big", data: "before", service: "Fifo" })
        yield* a.multicast({ groups: "big", data: big, service: "Agreed", messType: 9 })
        yield* a.multicast({ groups: "big", data: "after", service: "Fifo" })
        const [m1, m2, m3] = yield* Fiber.join(got)
        expect(new TextDecoder().decode(m1.data)).toBe("before")
        expect(m2.data.length).toBe(big.length)
        expect(sameBytes(m2.data, big)).toBe(true)
        expect([m2.sender, m2.groups, m2.messType, m2.service]).toEqual(["#a#localhost", ["big"], 9, "Agreed"])
        expect(new TextDecoder().decode(m3.data)).toBe("after")
        const sb = yield* b.stats
        expect([sb.largeMessagesAssembled, sb.largeMessagesDropped, sb.reassemblyBytes]).toEqual([1, 0, 0])
        // The sender received its own copy whole too, and its window was respected.
        const own = yield* regulars(a, 3)
        expect(sameBytes(own[1].data, big)).toBe(true)
        const sa = yield* a.stats
        expect(sa.windowPeak).toBeLessThanOrEqual(sa.windowCapacity)
      }),
    TIMEOUT,
  )

  it.scopedLive(
    "multicast refuses a payload over maxMessageBytes and a fragmented one with an unordered service",
    () =>
      Effect.gen(function* () {
        const { clients: [a] } = yield* daemonAndClients({ maxMessageBytes: 300_000 })
        const tooBig = yield* Effect.flip(a.multicast({ groups: "g", data: new Uint8Array(300_001), service: "Fifo" }))
        expect(tooBig).toBeInstanceOf(RequestError)
        expect(tooBig.reason).toBe("MessageTooLong")
        for (const service of ["Unreliable", "Reliable"] as const) {
          const e = yield* Effect.flip(a.multicast({ groups: "g", data: new Uint8Array(200_000), service }))
          expect(e.reason).toBe("NeedsOrderedService")
        }
        // multicastMany stays all-or-nothing with large members.
        const e = yield* Effect.flip(a.multicastMany([
          { groups: "g", data: "fine" },
          { groups: "g", data: new Uint8Array(200_000), service: "Unreliable" },
        ]))
        expect(e.reason).toBe("NeedsOrderedService")
        expect((yield* a.stats).sent).toBe(0)
        // Text is measured as UTF-8: 100,000 'é' are 200,000 bytes, sent in fragments.
        yield* a.join("g")
        yield* a.multicast({ groups: "g", data: "é".repeat(100_000), service: "Fifo" })
        const [m] = yield* regulars(a, 1)
        expect(new TextDecoder().decode(m.data)).toBe("é".repeat(100_000))
      }),
    TIMEOUT,
  )

  it.scopedLive(
    "a sender that disconnects mid-message leaves nothing delivered and no memory held",
    () =>
      Effect.gen(function* () {
        const { daemon: d, clients: [b] } = yield* daemonAndClients("b")
        yield* b.join("big")
        const parts = fragmentPayloads(bytesOf(5 * FRAGMENT_BYTES, 2), 1, 1)
        yield* Effect.scoped(Effect.gen(function* () {
          const a = yield* connect({ daemon: d.spreadName, name: "a" })
          yield* a.join("big")
          // Three of five fragments, then the sender goes away.
          yield* a.multicastMany(parts.slice(0, 3).map((data) => ({ groups: "big", data, service: "Fifo" as const })))
          yield* sleep(100)
          // What arrived is held, not what the first fragment claimed.
          expect((yield* b.stats).reassemblyBytes).toBe(3 * FRAGMENT_BYTES + PARTIAL_OVERHEAD)
        }))
        yield* b.multicast({ groups: "big", data: "marker" })
        const [m] = yield* regulars(b, 1)
        expect(new TextDecoder().decode(m.data)).toBe("marker")
        const s = yield* b.stats
        expect([s.largeMessagesAssembled, s.largeMessagesDropped, s.reassemblyBytes]).toEqual([0, 1, 0])
      }),
    TIMEOUT,
  )

  it.scopedLive(
    "a receiver drops a fragmented message above its maxMessageBytes and carries on",
    () =>
      Effect.gen(function* () {
        const { clients: [a, b] } = yield* daemonAndClients({}, { maxMessageBytes: 200_000 })
        yield* b.join("big", { confirmed: true })
        yield* a.multicast({ groups: "big", data: new Uint8Array(500_000), service: "Fifo" })
        yield* a.multicast({ groups: "big", data: "small", service: "Fifo" })
        const [m] = yield* regulars(b, 1)
        expect(new TextDecoder().decode(m.data)).toBe("small")
        const s = yield* b.stats
        expect([s.largeMessagesAssembled, s.largeMessagesDropped, s.reassemblyBytes]).toEqual([0, 1, 0])
      }),
    TIMEOUT,
  )

  it.scopedLive("a large send interrupted partway leaves nothing held at the receivers", () =>
    Effect.gen(function* () {
      const { clients: [a, b] } = yield* daemonAndClients({ name: "a", window: fixedWindow(1) }, "b")
      yield* b.join("big", { confirmed: true })
      yield* a.join("big", { confirmed: true })
      // One fragment in flight at a time: 128 round trips for 16 MiB.
      const sending = yield* Effect.fork(
        a.multicast({ groups: "big", data: new Uint8Array(16 * 1024 * 1024), service: "Fifo" }),
      )
      let held = 0
      for (let i = 0; i < 500 && held === 0; i++) {
        yield* sleep(2)
        held = (yield* b.stats).reassemblyBytes
      }
      // What arrived so far is held (fragments are counted as they come).
      expect(held).toBeGreaterThan(PARTIAL_OVERHEAD)
      expect(held).toBeLessThan(16 * 1024 * 1024)
      yield* Fiber.interrupt(sending)
      let after = held
      for (let i = 0; i < 100 && after !== 0; i++) {
        yield* sleep(5)
        after = (yield* b.stats).reassemblyBytes
      }
      expect(after).toBe(0)
      expect((yield* b.stats).largeMessagesAssembled).toBe(0)
    }), TIMEOUT)
})

describe("Reassembly", () => {
  const clock = Clock.make()
  const parts = fragmentPayloads(bytesOf(3 * FRAGMENT_BYTES + 5, 3), 7, 9)

  it("Reassembly delivers a message only once every fragment came, in order", () => {
    const r = new Reassembly(1 << 24, 1 << 26, clock)
    expect(r.add(received(parts[0]))).toBeUndefined()
    expect(r.add(received(parts[1]))).toBeUndefined()
    expect(r.add(received(parts[2]))).toBeUndefined()
    const whole = r.add(received(parts[3]))
    expect(whole?.data.length).toBe(3 * FRAGMENT_BYTES + 5)
    expect(r.stats).toEqual({ assembled: 1, dropped: 0, pendingBytes: 0 })
  })

  it("Reassembly drops a message whose fragments come out of order, and never delivers part of it", () => {
    const r = new Reassembly(1 << 24, 1 << 26, clock)
    r.add(received(parts[0]))
    expect(r.add(received(parts[2]))).toBeUndefined()
    expect(r.add(received(parts[1]))).toBeUndefined() // the rest of a dropped message is ignored
    expect(r.add(received(parts[3]))).toBeUndefined()
    expect(r.stats).toEqual({ assembled: 0, dropped: 1, pendingBytes: 0 })
  })

  it("Reassembly counts what arrived, not what first fragments claim: four 16 MiB claims in 148 bytes block nothing", () => {
    const r = new Reassembly(16 * 1024 * 1024, 64 * 1024 * 1024, clock)
    // The attack: four first fragments of 37 bytes, each claiming 16 MiB.
    for (let id = 0; id < 4; id++) {
      const first = fragmentPayloads(new Uint8Array(1), 66, id)[0].slice()
      const v = new DataView(first.buffer)
      v.setUint32(24, 2)
      v.setUint32(28, 16 * 1024 * 1024)
      v.setUint32(32, crc32(first, 0, 32))
      expect(first.length).toBe(37)
      expect(r.add(received(first, "#evil#d"))).toBeUndefined()
    }
    expect(r.stats.pendingBytes).toBe(4 * (PARTIAL_OVERHEAD + 1))
    // Everything else is delivered at once, the largest message too.
    const big = bytesOf(16 * 1024 * 1024, 8)
    const bigParts = fragmentPayloads(big, 3, 1)
    let whole: RegularMessage | undefined
    for (const part of bigParts) whole = r.add(received(part, "#good#d"))
    expect(whole !== undefined && sameBytes(whole.data, big)).toBe(true)
    expect(r.stats).toEqual({ assembled: 1, dropped: 0, pendingBytes: 4 * (PARTIAL_OVERHEAD + 1) })
  })

  it("Reassembly gives one sender at most half the room: past it, its own message goes and the others' get through", () => {
    const r = new Reassembly(1 << 24, 10 * FRAGMENT_BYTES, clock)
    // A sender that starts a large message and never finishes it.
    const hog = fragmentPayloads(bytesOf(7 * FRAGMENT_BYTES, 11), 4, 1)
    for (const part of hog.slice(0, 5)) r.add(received(part, "#hog#d"))
    expect(r.stats.dropped).toBe(1) // its fifth fragment passed its share (5 of 10): its message went
    expect(r.stats.pendingBytes).toBe(0)
    for (const part of hog.slice(0, 4)) r.add(received(part, "#hog#d"))
    // Another sender's message completes beside it.
    let whole: RegularMessage | undefined
    for (const part of parts) whole = r.add(received(part, "#other#d"))
    expect(whole?.data.length).toBe(3 * FRAGMENT_BYTES + 5)
    r.senderGone("#hog#d")
    expect(r.stats).toEqual({ assembled: 1, dropped: 2, pendingBytes: 0 })
  })

  it.effect("Reassembly.sweep drops a partial message that waited 10 s for its next fragment (TestClock)", () =>
    Effect.gen(function* () {
      const r = new Reassembly(1 << 24, 1 << 26, yield* Effect.clock)
      // A sender that was never a member: no membership message will say it went.
      r.add(received(parts[0], "#stranger#d"))
      yield* TestClock.adjust("9 seconds")
      r.sweep()
      expect(r.stats.pendingBytes).toBe(FRAGMENT_BYTES + PARTIAL_OVERHEAD)
      yield* TestClock.adjust("2 seconds")
      r.sweep()
      expect(r.stats).toEqual({ assembled: 0, dropped: 1, pendingBytes: 0 })
    }))

  it.effect("Reassembly measures quiet from the latest fragment, not the first (TestClock)", () =>
    Effect.gen(function* () {
      const r = new Reassembly(1 << 24, 1 << 26, yield* Effect.clock)
      r.add(received(parts[0], "#slow#d"))
      yield* TestClock.adjust("8 seconds")
      r.add(received(parts[1], "#slow#d"))
      yield* TestClock.adjust("8 seconds") // 16 s after its start, 8 s after its latest fragment: still live
      r.sweep()
      expect(r.stats.dropped).toBe(0)
      r.add(received(parts[2], "#slow#d"))
      expect(r.add(received(parts[3], "#slow#d"))?.data.length).toBe(3 * FRAGMENT_BYTES + 5)
    }))

  it("Reassembly bounds how many partial messages a sender holds, and refuses empty ones", () => {
    const r = new Reassembly(1 << 24, 1 << 26, clock)
    // A hostile peer: many first fragments of 2-byte messages that never finish.
    for (let id = 0; id < 100; id++) {
      const first = fragmentPayloads(new Uint8Array(2), 5, id)[0].slice()
      const v = new DataView(first.buffer)
      v.setUint32(24, 2) // count 2: the second never comes
      v.setUint32(32, crc32(first, 0, 32))
      r.add(received(first, "#hostile#d"))
    }
    expect(r.stats.pendingBytes).toBe(MAX_PARTIALS_PER_SENDER * (PARTIAL_OVERHEAD + 2))
    expect(r.stats.dropped).toBe(100 - MAX_PARTIALS_PER_SENDER)
    // total 0 is refused outright.
    const empty = fragmentPayloads(new Uint8Array(0), 6, 1)[0]
    expect(r.add(received(empty, "#other#d"))).toBeUndefined()
    expect(r.stats.dropped).toBe(100 - MAX_PARTIALS_PER_SENDER + 1)
  })

  it("Reassembly drops a sender's partial message to a group it left, and keeps the others", () => {
    const r = new Reassembly(1 << 24, 1 << 26, clock)
    const toG = fragmentPayloads(bytesOf(2 * FRAGMENT_BYTES, 4), 1, 1)
    r.add(received(toG[0], "#a#d"))
    // `received` sends to group "g": leaving another group drops nothing.
    r.notIn("ctl", [])
    expect(r.stats.pendingBytes).toBe(FRAGMENT_BYTES + PARTIAL_OVERHEAD)
    r.notIn("g", ["#a#d"]) // still a member of g
    expect(r.stats.pendingBytes).toBe(FRAGMENT_BYTES + PARTIAL_OVERHEAD)
    r.notIn("g", [])
    expect(r.stats).toEqual({ assembled: 0, dropped: 1, pendingBytes: 0 })
  })

  it("an abort fragment drops what a receiver holds of that message", () => {
    const r = new Reassembly(1 << 24, 1 << 26, clock)
    r.add(received(parts[0]))
    expect(r.add(received(abortPayload(7, 9)))).toBeUndefined()
    expect(r.stats).toEqual({ assembled: 0, dropped: 1, pendingBytes: 0 })
  })

  it("a payload that only looks like a fragment (bad checksum) is an ordinary message", () => {
    const fake = parts[0].slice()
    fake[33] ^= 1 // the checksum
    const m = received(fake)
    const r = new Reassembly(1 << 24, 1 << 26, clock)
    expect(r.add(m)).toBe(m)
  })
})

describe("fragment size", () => {
  it("fragmentPayloads makes fragment frames that a Spread C client's 100,000-byte buffer holds", () => {
    const parts = fragmentPayloads(bytesOf(1024 * 1024, 5), 1, 2)
    for (const data of parts) {
      // The whole frame as the daemon delivers it to one group: header, group, payload.
      const frame = encodeMulticast({ privateGroup: "#a#localhost", service: "Agreed", groups: ["g"], data })
      expect(frame.length).toBeLessThanOrEqual(100_000)
      expect(data.length).toBeLessThanOrEqual(100_000)
    }
    expect(parts[0].length).toBe(FRAGMENT_BYTES + 36)
  })

  it.scopedLive(
    "the fragmentBytes option sets the fragment size, and is checked",
    () =>
      Effect.gen(function* () {
        const { clients: [a, b] } = yield* daemonAndClients({ name: "a", fragmentBytes: 10_000 }, "b")
        yield* b.join("big", { confirmed: true })
        const big = bytesOf(200_000, 9)
        yield* a.multicast({ groups: "big", data: big, service: "Fifo" })
        const [m] = yield* regulars(b, 1)
        expect(sameBytes(m.data, big)).toBe(true)
        expect((yield* a.stats).sent).toBe(20)
        const bad = yield* Effect.flip(Effect.scoped(connect({ daemon: "4803@127.0.0.1", fragmentBytes: 200_000 })))
        expect(bad.message).toContain("fragmentBytes 200000")
      }),
    TIMEOUT,
  )
})

describe("large messages under attack", () => {
  /** First fragments of 37 bytes, each claiming a 16 MiB message. */
  const claims = (n: number) =>
    Array.from({ length: n }, (_, id) => {
      const first = fragmentPayloads(new Uint8Array(1), 66, id)[0].slice()
      const v = new DataView(first.buffer)
      v.setUint32(24, 2)
      v.setUint32(28, 16 * 1024 * 1024)
      v.setUint32(32, crc32(first, 0, 32))
      return first
    })

  it.scopedLive(
    "four first fragments claiming 16 MiB each (148 bytes) do not stop three large messages from another sender",
    () =>
      Effect.gen(function* () {
        const { clients: [attacker, a, b] } = yield* daemonAndClients("evil", "a", "b")
        yield* b.join("big", { confirmed: true })
        yield* attacker.multicastMany(claims(4).map((data) => ({ groups: "big", data, service: "Fifo" as const })))
        const sent = [1, 2, 3].map((i) => bytesOf(3 * 1024 * 1024 + i, 20 + i))
        for (const data of sent) yield* a.multicast({ groups: "big", data, service: "Agreed" })
        const got = yield* regulars(b, 3).pipe(Effect.timeout("5 seconds"))
        expect(got.map((m) => m.data.length)).toEqual(sent.map((d) => d.length))
        for (let i = 0; i < 3; i++) expect(sameBytes(got[i].data, sent[i])).toBe(true)
        const s = yield* b.stats
        expect([s.largeMessagesAssembled, s.largeMessagesDropped]).toEqual([3, 0])
        expect(s.reassemblyBytes).toBe(4 * (PARTIAL_OVERHEAD + 1))
      }),
    TIMEOUT,
  )

  it.scopedLive(
    "the partial message of a sender that was never a member and went away is freed within the 10 s idle deadline",
    () =>
      Effect.gen(function* () {
        const { daemon: d, clients: [b] } = yield* daemonAndClients("b")
        yield* b.join("big", { confirmed: true })
        const parts = fragmentPayloads(bytesOf(5 * FRAGMENT_BYTES, 2), 1, 1)
        yield* Effect.scoped(Effect.gen(function* () {
          // Not a member of "big": no membership message will say it left.
          const stranger = yield* connect({ daemon: d.spreadName, name: "stranger" })
          yield* stranger.multicastMany(
            parts.slice(0, 3).map((data) => ({ groups: "big", data, service: "Fifo" as const })),
          )
          let held = 0
          for (let i = 0; i < 100 && held === 0; i++) {
            yield* sleep(10)
            held = (yield* b.stats).reassemblyBytes
          }
          expect(held).toBe(3 * FRAGMENT_BYTES + PARTIAL_OVERHEAD)
        }))
        let held = 1
        const start = Date.now()
        while (held !== 0 && Date.now() - start < 15_000) {
          yield* sleep(200)
          held = (yield* b.stats).reassemblyBytes
        }
        expect(held).toBe(0)
        expect(Date.now() - start).toBeLessThan(12_500)
        expect((yield* b.stats).largeMessagesDropped).toBe(1)
      }),
    TIMEOUT,
  )
})
