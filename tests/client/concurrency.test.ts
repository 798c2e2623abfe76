import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Either, Exit, Fiber, Scope, Stream } from "effect"
import { connect, type Connection } from "../../src/client/connection.ts"
import { ConnectionError } from "../../src/client/core/errors.ts"
import type { ConnectionEvent } from "../../src/client/core/events.ts"
import { fixedWindow, noWindow } from "../../src/client/options.ts"
import type { MembershipMessage, RegularMessage, ServerMessage } from "../../src/protocol/server_messages.ts"
import { Prng } from "../_helpers/prng.ts"
import { captureLogs, type LogLine, sleep, startDaemon, warnings } from "./_fixtures.ts"
import { daemonAndClients } from "../_helpers/clients.ts"

const TIMEOUT = 30_000

const membershipOf = (group: string) => (m: ServerMessage): m is MembershipMessage =>
  m._tag === "Membership" && m.group === group

const awaitMembers = (conn: Connection, group: string, n: number) =>
  Effect.gen(function* () {
    for (let i = 0; i < 100; i++) {
      const m = yield* conn.receive
      if (membershipOf(group)(m) && m.members.length === n) return
    }
    return yield* Effect.dieMessage(`no view of ${n} members`)
  })

// Payload of message `seq` of fiber `id`: id and seq, then a pattern, with
// a length that varies per message.
const sizeOf = (id: number, seq: number) => 8 + ((id * 7919 + seq * 104729) % 3000)
const payload = (id: number, seq: number): Uint8Array => {
  const out = new Uint8Array(sizeOf(id, seq))
  const v = new DataView(out.buffer)
  v.setUint32(0, id)
  v.setUint32(4, seq)
  for (let i = 8; i < out.length; i++) out[i] = (id * 131 + seq * 17 + i) & 0xff
  return out
}
const intact = (m: RegularMessage): { id: number; seq: number } | string => {
  if (m.data.length < 8) return `short payload (${m.data.length} bytes)`
  const v = new DataView(m.data.buffer, m.data.byteOffset, m.data.byteLength)
  const id = v.getUint32(0)
  const seq = v.getUint32(4)
  if (m.messType !== id) return `mess_type ${m.messType} for fiber ${id}`
  if (m.data.length !== sizeOf(id, seq)) return `fiber ${id} seq ${seq}: ${m.data.length} bytes`
  for (let i = 8; i < m.data.length; i++) {
    if (m.data[i] !== ((id * 131 + seq * 17 + i) & 0xff)) return `fiber ${id} seq ${seq}: byte ${i} differs`
  }
  return { id, seq }
}

describe("Connection under concurrency", () => {
  for (const seed of [1, 2, 3]) {
    it.live(
      `200 fibers multicast while another closes at a random moment (seed ${seed}): no torn frame, no hang`,
      () =>
        Effect.gen(function* () {
          const lines: Array<LogLine> = []
          const scope = yield* Scope.make()
          const d = yield* Scope.extend(startDaemon(), scope).pipe(Effect.provide(captureLogs(lines)))
          const b = yield* Scope.extend(connect({ daemon: d.spreadName, name: "bob" }), scope)
          const a = yield* Scope.extend(connect({ daemon: d.spreadName, name: "alice" }), scope)
          yield* b.join("g")
          yield* a.join("g")
          yield* awaitMembers(b, "g", 2)
          yield* awaitMembers(a, "g", 2)
          // a receives its own messages too (the window counts them); drain them.
          const aDrain = yield* Effect.fork(Effect.either(Stream.runDrain(a.messages)))
          // b consumes from the start: every message of a, then a's disconnect.
          const seen = new Array<number>(200).fill(0)
          const torn: Array<string> = []
          const collector = yield* Effect.fork(Effect.gen(function* () {
            for (;;) {
              for (const m of yield* b.receiveChunk()) {
                if (m._tag === "Membership") {
                  if (m.cause === "Disconnect" && m.changed === a.privateGroup) return
                  continue
                }
                if (m._tag !== "Regular") {
                  torn.push(`unexpected ${m._tag}`)
                  continue
                }
                const r = intact(m)
                if (typeof r === "string") torn.push(r)
                else if (r.seq !== seen[r.id]++) torn.push(`fiber ${r.id}: seq ${r.seq} out of order`)
              }
            }
          }))
          const prng = new Prng(seed)
          const closeAfter = prng.int(2, 40)
          const senders = yield* Effect.forEach(Array.from({ length: 200 }, (_, id) => id), (id) =>
            Effect.fork(Effect.gen(function* () {
              let ok = 0
              for (let seq = 0; seq < 50; seq++) {
                const r = yield* Effect.either(a.multicast({ groups: "g", data: payload(id, seq), messType: id }))
                if (Either.isLeft(r)) {
                  return { ok, error: r.left }
                }
                ok++
              }
              return { ok, error: undefined }
            })))
          yield* sleep(closeAfter)
          yield* a.close
          const results = yield* Effect.forEach(senders, Fiber.join).pipe(Effect.timeout("5 seconds"))
          const errors = results.flatMap((r) => (r.error === undefined ? [] : [r.error]))
          // The close came mid-stream: some messages went out, some fibers were cut short.
          expect(errors.length).toBeGreaterThan(0)
          expect(results.reduce((n, r) =>
            n + r.ok, 0)).toBeGreaterThan(0)
          for (const e of errors) {
            expect(e).toBeInstanceOf(ConnectionError)
            expect(e).toBe(errors[0])
          }
          if (errors.length > 0) {
            expect((errors[0] as ConnectionError).reason).toBe("Closed")
          }
          const drained = yield* Fiber.join(aDrain)
          expect(Either.isLeft(drained)).toBe(true)
          // b got every message a's fibers sent successfully, whole and in each fiber's order.
          yield* Fiber.join(collector).pipe(Effect.timeout("5 seconds"))
          expect(torn).toEqual([])
          expect(seen).toEqual(results.map((r) =>
            r.ok
          ))
          const stats = yield* a.stats
          expect(stats.windowPeak).toBeLessThanOrEqual(stats.windowCapacity)
          expect(stats.inFlightPeak).toBeLessThanOrEqual(250) // 500 permits, 2 members: 2 per message
          yield* Scope.close(scope, Exit.void)
          expect(warnings(lines)).toEqual([])
        }),
      TIMEOUT,
    )
  }

  it.scopedLive(
    "the adaptive window never lets more than 500 / members own messages be in flight",
    () =>
      Effect.gen(function* () {
        const { daemon: d, clients: [a] } = yield* daemonAndClients("a")
        const others = yield* Effect.forEach(["b", "c"], (name) => connect({ daemon: d.spreadName, name }))
        for (const c of [a, ...others]) yield* c.join("g")
        yield* awaitMembers(a, "g", 3)
        for (const o of others) yield* Effect.fork(Stream.runDrain(o.messages))
        const total = 3000
        const got = yield* Effect.fork(
          a.messages.pipe(Stream.filter((m) => m._tag === "Regular"), Stream.take(total), Stream.runCount),
        )
        const batch = Array.from({ length: 100 }, () => ({ groups: "g", data: new Uint8Array(200) }))
        for (let i = 0; i < total / 100; i++) yield* a.multicastMany(batch)
        expect(yield* Fiber.join(got)).toBe(total)
        const s = yield* a.stats
        expect(s.windowCapacity).toBe(500)
        expect(s.windowPeak).toBeLessThanOrEqual(500)
        expect(s.inFlightPeak).toBeLessThanOrEqual(166)
        expect(s.inFlightPeak).toBeGreaterThan(0)
        expect(s.inFlight).toBe(0)
        expect(s.windowInUse).toBe(0)
      }),
    TIMEOUT,
  )

  it.scopedLive("a fixed window bounds own messages in flight to its size", () =>
    Effect.gen(function* () {
      const { clients: [a] } = yield* daemonAndClients({ window: fixedWindow(32) })
      yield* a.join("g")
      const got = yield* Effect.fork(
        a.messages.pipe(Stream.filter((m) => m._tag === "Regular"), Stream.take(2000), Stream.runCount),
      )
      yield* Effect.forEach(
        Array.from({ length: 20 }),
        () => a.multicastMany(Array.from({ length: 100 }, () => ({ groups: "g", data: "x" }))),
        { concurrency: 4, discard: true },
      )
      expect(yield* Fiber.join(got)).toBe(2000)
      const s = yield* a.stats
      expect(s.windowPeak).toBeLessThanOrEqual(32)
      expect(s.inFlightPeak).toBeLessThanOrEqual(32)
    }), TIMEOUT)

  it.scopedLive(
    "a sender flooding 20,000 1 KB messages at full speed gets them all back and is not cut off",
    () =>
      Effect.gen(function* () {
        const lines: Array<LogLine> = []
        const d = yield* startDaemon().pipe(Effect.provide(captureLogs(lines)))
        const a = yield* connect({ daemon: d.spreadName, membership: false })
        yield* a.join("flood")
        const total = 20_000
        const got = yield* Effect.fork(
          a.messages.pipe(
            Stream.take(total),
            Stream.runFold(0, (n, m) => n + (m._tag === "Regular" ? m.data.length : 0)),
          ),
        )
        const data = new Uint8Array(1024)
        const batch = Array.from({ length: 200 }, () => ({ groups: "flood", data }))
        for (let i = 0; i < total / 200; i++) yield* a.multicastMany(batch)
        expect(yield* Fiber.join(got)).toBe(total * 1024)
        expect((yield* a.state)._tag).toBe("Open")
        expect(d.stats().cutOff).toBe(0)
        expect(warnings(lines)).toEqual([])
      }),
    TIMEOUT,
  )

  it.scopedLive(
    "a sender whose consumer stalls is throttled by the window instead of being cut off",
    () =>
      Effect.gen(function* () {
        const { daemon: d, clients: [a] } = yield* daemonAndClients({ membership: false, inboundCapacity: 64 })
        yield* a.join("g")
        const data = new Uint8Array(10_000)
        const flood = yield* Effect.fork(
          Effect.forEach(
            Array.from({ length: 30 }),
            () => a.multicastMany(Array.from({ length: 100 }, () => ({ groups: "g", data }))),
            {
              discard: true,
            },
          ),
        )
        yield* sleep(300)
        expect(flood.unsafePoll()).toBeNull() // blocked by the window
        expect((yield* a.stats).inFlight).toBeLessThanOrEqual(500)
        expect((yield* a.state)._tag).toBe("Open")
        expect(d.stats().cutOff).toBe(0)
        const n = yield* a.messages.pipe(Stream.take(3000), Stream.runCount)
        expect(n).toBe(3000)
        yield* Fiber.join(flood)
        expect((yield* a.state)._tag).toBe("Open")
        expect(d.stats().cutOff).toBe(0)
      }),
    TIMEOUT,
  )

  it.scopedLive(
    "without the window, the same stalled flood is cut off by the daemon (control)",
    () =>
      Effect.gen(function* () {
        const lines: Array<LogLine> = []
        const d = yield* startDaemon().pipe(Effect.provide(captureLogs(lines)))
        const a = yield* connect({ daemon: d.spreadName, membership: false, inboundCapacity: 64, window: noWindow })
        yield* a.join("g")
        const data = new Uint8Array(10_000)
        const burst = Array.from({ length: 100 }, () => ({ groups: "g", data }))
        // A burst the stalled consumer cannot take, then a trickle: the embedded
        // daemon cuts a session off when an offer finds its outbox over the
        // limit with the socket stalled for 100 ms.
        const e = yield* Effect.flip(Effect.gen(function* () {
          for (let i = 0; i < 30; i++) yield* a.multicastMany(burst)
          for (let i = 0; i < 200; i++) {
            yield* a.multicast({ groups: "g", data })
            yield* sleep(20)
          }
        })).pipe(Effect.timeout("10 seconds"))
        expect(e).toBeInstanceOf(ConnectionError)
        expect(["ConnectionClosed", "NetError"]).toContain((e as ConnectionError).reason)
        expect(d.stats().cutOff).toBe(1)
        expect(warnings(lines).some((l) => l.includes("cut off"))).toBe(true)
      }),
    TIMEOUT,
  )

  it.scopedLive(
    "a consumer that stalls gets SlowConsumer well before the buffer is full, then ConsumerCaughtUp",
    () =>
      Effect.gen(function* () {
        const d = yield* startDaemon()
        const a = yield* connect({
          daemon: d.spreadName,
          membership: false,
          inboundCapacity: 64,
          slowConsumerRatio: 0.5,
        })
        const events = yield* Effect.fork(a.events.pipe(Stream.take(2), Stream.runCollect))
        yield* sleep(20)
        yield* a.join("g")
        yield* a.multicastMany(Array.from({ length: 100 }, (_, i) => ({ groups: "g", data: String(i) })))
        for (let i = 0; i < 300 && (yield* a.stats).received < 100; i++) yield* sleep(10)
        const s = yield* a.stats
        expect(s.slowConsumer).toBe(true)
        expect(s.slowConsumerEvents).toBe(1)
        // The buffer holds its capacity, plus the rest of the batch the reader is offering.
        expect(s.inbound).toBeGreaterThanOrEqual(64)
        expect(s.inbound).toBeLessThanOrEqual(100)
        const first = yield* a.receiveChunk(200)
        const rest = yield* a.messages.pipe(Stream.take(100 - first.length), Stream.runCount)
        expect(first.length + rest).toBe(100)
        yield* a.multicast({ groups: "g", data: "again" })
        yield* a.receive
        const [slow, caughtUp] = Chunk.toReadonlyArray(yield* Fiber.join(events)) as ReadonlyArray<ConnectionEvent>
        expect(slow._tag).toBe("SlowConsumer")
        if (slow._tag === "SlowConsumer") {
          expect(slow.buffered).toBeGreaterThanOrEqual(32)
          expect(slow.capacity).toBe(64)
        }
        expect(caughtUp._tag).toBe("ConsumerCaughtUp")
        expect((yield* a.stats).slowConsumer).toBe(false)
      }),
    TIMEOUT,
  )

  it.live(
    "the daemon dying mid-stream gives every waiter of a connection the same error",
    () =>
      Effect.gen(function* () {
        const daemonScope = yield* Scope.make()
        const d = yield* Scope.extend(startDaemon(), daemonScope)
        const scope = yield* Scope.make()
        const a = yield* Scope.extend(connect({ daemon: d.spreadName, name: "a", membership: false }), scope)
        const b = yield* Scope.extend(connect({ daemon: d.spreadName, name: "b", membership: false }), scope)
        yield* b.join("g")
        yield* sleep(20)
        const flooder = yield* Effect.fork(Effect.flip(Effect.forever(
          a.multicastMany(Array.from({ length: 50 }, () => ({ groups: "g", data: new Uint8Array(500) }))),
        )))
        const aReceivers = yield* Effect.forEach([1, 2, 3, 4, 5], () => Effect.fork(Effect.flip(a.receive)))
        const bStream = yield* Effect.fork(Effect.flip(Stream.runDrain(b.messages)))
        const aClosed = yield* Effect.fork(a.awaitClosed)
        // Wait (bounded) until traffic flows, so the daemon dies mid-stream.
        for (let i = 0; i < 300 && (yield* b.stats).received < 100; i++) yield* sleep(10)
        expect((yield* b.stats).received).toBeGreaterThanOrEqual(100)
        yield* Scope.close(daemonScope, Exit.void)
        const t0 = Date.now()
        const aErrors = yield* Effect.forEach([flooder, ...aReceivers, aClosed], Fiber.join).pipe(
          Effect.timeout("3 seconds"),
        )
        const bError = yield* Fiber.join(bStream).pipe(Effect.timeout("3 seconds"))
        expect(Date.now() - t0).toBeLessThan(3000)
        for (const e of aErrors) expect(e).toBe(aErrors[0])
        expect(["ConnectionClosed", "NetError"]).toContain(aErrors[0].reason)
        expect(bError.reason).toBe("ConnectionClosed")
        expect(yield* b.awaitClosed).toBe(bError)
        expect(yield* Effect.flip(a.join("h"))).toBe(aErrors[0])
        yield* Scope.close(scope, Exit.void)
      }),
    TIMEOUT,
  )
})
