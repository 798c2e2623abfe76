import { describe, expect, it } from "@effect/vitest"
import { Cause, Chunk, Effect, Exit, Fiber, Option, Scope, Stream } from "effect"
import { connect, type Connection } from "../../src/client/connection.ts"
import { fixedWindow } from "../../src/client/options.ts"
import { ConnectionError, RequestError } from "../../src/client/core/errors.ts"
import { ConnectError } from "../../src/client/core/connect_error.ts"
import { layer, Spread } from "../../src/client/config/spread.ts"
import type { MembershipMessage, RegularMessage, ServerMessage } from "../../src/protocol/server_messages.ts"
import { quiet, startDaemon } from "./_fixtures.ts"
import { daemonAndClients } from "../_helpers/clients.ts"

const TIMEOUT = 10_000
const text = (m: ServerMessage) => m._tag === "Regular" ? new TextDecoder().decode(m.data) : undefined

/** Receives until a message matches (at most 100 messages). */
const next = <A extends ServerMessage>(conn: Connection, match: (m: ServerMessage) => m is A) =>
  Effect.gen(function* () {
    for (let i = 0; i < 100; i++) {
      const m = yield* conn.receive
      if (match(m)) return m
    }
    return yield* Effect.dieMessage("no matching message among 100")
  })
const isRegular = (m: ServerMessage): m is RegularMessage => m._tag === "Regular"
const membershipOf = (group: string) => (m: ServerMessage): m is MembershipMessage =>
  m._tag === "Membership" && m.group === group

describe("Connection against the embedded daemon", () => {
  it.scopedLive(
    "join delivers the group's view; another member updates it; leave sends SelfLeave and drops it",
    () =>
      Effect.gen(function* () {
        const { clients: [a, b] } = yield* daemonAndClients("alice", "bob")
        yield* a.join("g")
        const m1 = yield* next(a, membershipOf("g"))
        expect(m1.cause).toBe("Join")
        expect(m1.members).toEqual(["#alice#localhost"])
        expect(m1.changed).toBe("#alice#localhost")
        yield* b.join("g")
        const m2 = yield* next(a, membershipOf("g"))
        expect(m2.members).toEqual(["#alice#localhost", "#bob#localhost"])
        expect(m2.changed).toBe("#bob#localhost")
        const view = yield* a.view("g")
        expect(Option.map(view, (v) => v.members)).toEqual(Option.some(["#alice#localhost", "#bob#localhost"]))
        expect(Option.map(view, (v) => v.groupId)).toEqual(Option.some(m2.groupId))
        yield* a.leave("g")
        expect((yield* a.receive)._tag).toBe("SelfLeave")
        expect(Option.isNone(yield* a.view("g"))).toBe(true)
        expect((yield* a.views).size).toBe(0)
        const m3 = yield* next(b, (m): m is MembershipMessage => m._tag === "Membership" && m.cause === "Leave")
        expect(m3.members).toEqual(["#bob#localhost"])
        expect(m3.changed).toBe("#alice#localhost")
      }),
    TIMEOUT,
  )

  it.scopedLive(
    "multicast delivers text and bytes with sender, groups, service and mess_type",
    () =>
      Effect.gen(function* () {
        const { clients: [a, b] } = yield* daemonAndClients("alice", "bob")
        yield* b.join("g")
        yield* next(b, membershipOf("g"))
        yield* a.multicast({ groups: "g", data: "héllo", service: "Fifo", messType: -2 })
        yield* a.multicast({ groups: ["g"], data: Uint8Array.of(0, 1, 255), messType: 65535 })
        const m1 = yield* next(b, isRegular)
        expect(m1.sender).toBe("#alice#localhost")
        expect(m1.groups).toEqual(["g"])
        expect(m1.service).toBe("Fifo")
        expect(m1.messType).toBe(-2)
        expect(m1.endianMismatch).toBe(false)
        expect(text(m1)).toBe("héllo")
        const m2 = yield* next(b, isRegular)
        expect(m2.service).toBe("Agreed")
        expect(m2.messType).toBe(-1)
        expect([...m2.data]).toEqual([0, 1, 255])
      }),
    TIMEOUT,
  )

  it.scopedLive(
    "multicast to several groups delivers one copy; SELF_DISCARD suppresses the sender's copy",
    () =>
      Effect.gen(function* () {
        const { clients: [a] } = yield* daemonAndClients("alice")
        yield* a.join("g1")
        yield* a.join("g2")
        yield* next(a, membershipOf("g2"))
        yield* a.multicast({ groups: ["g1", "g2", "g2"], data: "once" })
        yield* a.multicast({ groups: "g1", data: "discarded", selfDiscard: true })
        yield* a.multicast({ groups: "g1", data: "last" })
        const got = [text(yield* next(a, isRegular)), text(yield* next(a, isRegular))]
        expect(got).toEqual(["once", "last"])
        const stats = yield* a.stats
        expect(stats.inFlight).toBe(0)
        expect(stats.windowInUse).toBe(0)
      }),
    TIMEOUT,
  )

  it.scopedLive(
    "stats.inbound counts buffered messages and is 0, not negative, while a receiver waits",
    () =>
      Effect.gen(function* () {
        const { clients: [a] } = yield* daemonAndClients({ membership: false })
        const waiting = yield* Effect.fork(a.receive)
        yield* Effect.sleep(20)
        expect((yield* a.stats).inbound).toBe(0)
        yield* a.multicast({ groups: a.privateGroup, data: "one" })
        yield* Fiber.join(waiting)
        yield* a.multicast({ groups: a.privateGroup, data: "two" })
        yield* a.multicast({ groups: a.privateGroup, data: "three" })
        for (let i = 0; i < 100 && (yield* a.stats).inbound < 2; i++) yield* Effect.sleep(5)
        expect((yield* a.stats).inbound).toBe(2)
      }),
    TIMEOUT,
  )

  it.scopedLive("multicast to a private group reaches only that session", () =>
    Effect.gen(function* () {
      const { clients: [a, b, c] } = yield* daemonAndClients("alice", "bob", "carol")
      yield* c.join("g")
      yield* a.multicast({ groups: b.privateGroup, data: "p2p" })
      yield* a.multicast({ groups: [a.privateGroup, "g"], data: "to me and g" })
      expect(text(yield* next(b, isRegular))).toBe("p2p")
      expect(text(yield* next(a, isRegular))).toBe("to me and g")
      expect(text(yield* next(c, isRegular))).toBe("to me and g")
    }), TIMEOUT)

  it.scopedLive("invalid names and sizes fail with a RequestError and send nothing", () =>
    Effect.gen(function* () {
      const { daemon: d, clients: [a] } = yield* daemonAndClients({ maxMessageBytes: 200_000 })
      const before = d.stats().messagesIn
      const cases: Array<[Effect.Effect<void, ConnectionError | RequestError>, RequestError["reason"]]> = [
        [a.join(""), "IllegalGroup"],
        [a.join("has space"), "IllegalGroup"],
        [a.join("#private#localhost"), "IllegalGroup"],
        [a.leave("x".repeat(32)), "IllegalGroup"],
        [a.multicast({ groups: [], data: "" }), "NoGroups"],
        [a.multicast({ groups: Array.from({ length: 101 }, (_, i) => `g${i}`), data: "" }), "TooManyGroups"],
        // A real 5.0.1 daemon misroutes 44 or more destinations (see REAL_DAEMON_MAX_GROUPS).
        [a.multicast({ groups: Array.from({ length: 44 }, (_, i) => `g${i}`), data: "" }), "TooManyGroups"],
        [a.multicast({ groups: "g", data: "", messType: 1 << 16 }), "IllegalMessType"],
        // Above one Spread message a payload goes in fragments, up to maxMessageBytes.
        [a.multicast({ groups: "g", data: new Uint8Array(200_001), service: "Fifo" }), "MessageTooLong"],
        [a.multicast({ groups: "g", data: "é".repeat(100_001), service: "Fifo" }), "MessageTooLong"],
        [a.multicast({ groups: "g", data: new Uint8Array(143152 - 32), service: "Reliable" }), "NeedsOrderedService"],
      ]
      for (const [call, reason] of cases) {
        const e = yield* Effect.flip(call)
        expect(e).toBeInstanceOf(RequestError)
        expect(e.reason).toBe(reason)
      }
      const e = yield* Effect.flip(a.join("has space"))
      expect(e.message).toContain(`"has space"`)
      expect((yield* a.stats).sent).toBe(0)
      expect(d.stats().messagesIn).toBe(before)
      expect((yield* a.state)._tag).toBe("Open")
    }), TIMEOUT)

  it.scopedLive(
    "a message of the largest size, 143151 bytes (data + 32 * groups), is delivered whole",
    () =>
      Effect.gen(function* () {
        const { clients: [a] } = yield* daemonAndClients({})
        yield* a.join("big")
        const data = new Uint8Array(143151 - 32)
        for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff
        yield* a.multicast({ groups: "big", data })
        const m = yield* next(a, isRegular)
        expect(m.data.length).toBe(data.length)
        expect(m.data).toEqual(data)
      }),
    TIMEOUT,
  )

  it.scopedLive("multicastMany validates every message before sending any", () =>
    Effect.gen(function* () {
      const { clients: [a] } = yield* daemonAndClients({})
      yield* a.join("g")
      yield* next(a, membershipOf("g"))
      const e = yield* Effect.flip(a.multicastMany([
        { groups: "g", data: "1" },
        { groups: "g", data: "2" },
        { groups: "bad group", data: "3" },
      ]))
      expect(e.reason).toBe("IllegalGroup")
      yield* a.multicastMany([{ groups: "g", data: "ok1" }, { groups: "g", data: "ok2" }])
      expect(text(yield* next(a, isRegular))).toBe("ok1")
      expect(text(yield* next(a, isRegular))).toBe("ok2")
    }), TIMEOUT)

  it.scopedLive(
    "an empty private name gets a name generated by the daemon; a duplicate name is RejectNotUnique",
    () =>
      Effect.gen(function* () {
        const d = yield* quiet(startDaemon()) // the daemon logs the reject at Info
        const a = yield* connect({ daemon: d.spreadName, name: "" })
        expect(a.privateName.length).toBeGreaterThan(0)
        expect(a.privateGroup).toBe(`#${a.privateName}#localhost`)
        yield* connect({ daemon: d.spreadName, name: "dup" })
        const exit = yield* Effect.exit(Effect.scoped(connect({ daemon: d.spreadName, name: "dup" })))
        expect(Exit.isFailure(exit)).toBe(true)
        if (Exit.isFailure(exit) && exit.cause._tag === "Fail") {
          expect(exit.cause.error).toBeInstanceOf(ConnectError)
          expect(exit.cause.error.reason).toBe("RejectNotUnique")
          expect(exit.cause.error.code).toBe(-6)
        }
        const names = yield* Effect.forEach(
          [1, 2, 3, 4, 5],
          () => Effect.map(connect({ daemon: d.spreadName }), (c) => c.privateName),
        )
        expect(new Set(names).size).toBe(5)
      }),
    TIMEOUT,
  )

  it.scopedLive("membership: false delivers no membership messages and keeps no views", () =>
    Effect.gen(function* () {
      const { clients: [quiet] } = yield* daemonAndClients({ membership: false })
      yield* quiet.join("g")
      yield* quiet.multicast({ groups: "g", data: "only data" })
      const m = yield* quiet.receive
      expect(m._tag).toBe("Regular")
      expect((yield* quiet.views).size).toBe(0)
    }), TIMEOUT)

  it.scopedLive("watch streams a group's view as members join and leave", () =>
    Effect.gen(function* () {
      const { clients: [a, b] } = yield* daemonAndClients("a", "b")
      const sizes = yield* a.watch("g").pipe(
        Stream.map(Option.match({ onNone: () => 0, onSome: (v) => v.members.length })),
        Stream.filter((n) => n > 0),
        Stream.take(3),
        Stream.runCollect,
        Effect.fork,
      )
      yield* Effect.fork(Stream.runDrain(a.messages))
      // Each step waits for the previous view, so every view is seen.
      const viewOf = (n: number) =>
        Effect.gen(function* () {
          for (let i = 0; i < 500; i++) {
            const v = yield* a.view("g")
            if (Option.isSome(v) && v.value.members.length === n) return
            yield* Effect.sleep("5 millis")
          }
        })
      yield* a.join("g")
      yield* viewOf(1)
      yield* b.join("g")
      yield* viewOf(2)
      yield* b.leave("g")
      yield* viewOf(1)
      expect(Chunk.toReadonlyArray(yield* Fiber.join(sizes))).toEqual([1, 2, 1])
    }), TIMEOUT)

  it.live(
    "layer provides the Spread service and disconnects when the layer is released",
    () =>
      Effect.gen(function* () {
        const scope = yield* Scope.make()
        const d = yield* Scope.extend(startDaemon(), scope)
        const watcher = yield* Scope.extend(connect({ daemon: d.spreadName, name: "w" }), scope)
        yield* watcher.join("room")
        yield* next(watcher, membershipOf("room"))
        const program = Effect.gen(function* () {
          const spread = yield* Spread
          yield* spread.join("room")
          yield* next(watcher, membershipOf("room"))
          return spread.privateGroup
        })
        const who = yield* Effect.provide(program, layer({ daemon: d.spreadName, name: "svc" }))
        expect(who).toBe("#svc#localhost")
        const gone = yield* next(watcher, membershipOf("room"))
        expect(gone.cause).toBe("Disconnect")
        expect(gone.changed).toBe("#svc#localhost")
        yield* Scope.close(scope, Exit.void)
      }),
    TIMEOUT,
  )

  it.scopedLive(
    'connect reaches the daemon over its Unix socket in Spread\'s "<port>" form',
    () =>
      Effect.gen(function* () {
        const d = yield* startDaemon({ unixSocket: true })
        const a = yield* connect({ daemon: String(d.port) })
        yield* a.join("u")
        expect((yield* next(a, membershipOf("u"))).members).toEqual([a.privateGroup])
      }),
    TIMEOUT,
  )

  it.scopedLive(
    "close is idempotent and concurrent, answers void; later calls fail with the same Closed error",
    () =>
      Effect.gen(function* () {
        const { clients: [a] } = yield* daemonAndClients({})
        const receiver = yield* Effect.fork(Effect.flip(a.receive))
        const streamer = yield* Effect.fork(Effect.flip(Stream.runDrain(a.messages)))
        yield* Effect.sleep("10 millis")
        const closed = yield* Effect.all(Array.from({ length: 10 }, () => a.close), { concurrency: "unbounded" })
        // `close` is an Effect<void>: every call, the first included, answers undefined.
        expect(closed).toEqual(Array.from({ length: 10 }, () => undefined))
        expect(yield* a.close).toBeUndefined()
        const e = yield* Fiber.join(receiver)
        expect(e.reason).toBe("Closed")
        expect(yield* Fiber.join(streamer)).toBe(e)
        expect(yield* Effect.flip(a.join("g"))).toBe(e)
        expect(yield* Effect.flip(a.multicast({ groups: "g", data: "x" }))).toBe(e)
        expect(yield* Effect.flip(a.multicastMany([{ groups: "g", data: "x" }]))).toBe(e)
        expect(yield* Effect.flip(a.receiveChunk())).toBe(e)
        expect(yield* a.awaitClosed).toBe(e)
        expect(yield* a.state).toEqual({ _tag: "Closed", error: e })
      }),
    TIMEOUT,
  )

  it.scopedLive(
    "a connection used after its scope closed fails with the typed Closed error",
    () =>
      Effect.gen(function* () {
        const d = yield* startDaemon()
        const leaked = yield* Effect.scoped(connect({ daemon: d.spreadName }))
        const e = yield* Effect.flip(leaked.join("g"))
        expect(e).toBeInstanceOf(ConnectionError)
        expect(e.reason).toBe("Closed")
        expect(e.code).toBe(-11)
        expect(yield* Effect.flip(leaked.receive)).toBe(e)
        expect(yield* Effect.flip(leaked.multicast({ groups: "g", data: "x" }))).toBe(e)
        expect(d.stats().sessions).toBe(0)
      }),
    TIMEOUT,
  )

  it.scopedLive("concurrent receivers share the messages: each is delivered once", () =>
    Effect.gen(function* () {
      const { clients: [a] } = yield* daemonAndClients({ membership: false })
      yield* a.join("g")
      const receivers = yield* Effect.forEach(
        [1, 2, 3, 4],
        () => Effect.fork(Effect.forEach(Array.from({ length: 25 }), () => Effect.map(a.receive, text))),
      )
      yield* a.multicastMany(Array.from({ length: 100 }, (_, i) => ({ groups: "g", data: String(i) })))
      const got = (yield* Effect.forEach(receivers, Fiber.join)).flat()
      expect(got.length).toBe(100)
      expect(new Set(got).size).toBe(100)
    }), TIMEOUT)
})

describe("Connection streams end with the connection", () => {
  it.scopedLive("watch fails with the sticky error when the connection closes", () =>
    Effect.gen(function* () {
      const { clients: [a] } = yield* daemonAndClients({})
      yield* a.join("w")
      const waiting = yield* Effect.fork(
        a.watch("w").pipe(Stream.filter((v) => Option.isSome(v) && v.value.members.length >= 2), Stream.runHead),
      )
      yield* Effect.sleep(50)
      yield* a.close
      const exit = yield* Fiber.await(waiting).pipe(Effect.timeout(2000))
      expect(Exit.isFailure(exit)).toBe(true)
      if (Exit.isFailure(exit)) {
        const e = Cause.failureOption(exit.cause)
        expect(Option.map(e, (x) => x.reason)).toEqual(Option.some("Closed"))
      }
      // A watch started after the end fails at once.
      const late = yield* Effect.either(Stream.runDrain(a.watch("w")).pipe(Effect.timeout(2000)))
      expect(late._tag).toBe("Left")
    }), TIMEOUT)

  it.scopedLive(
    "events ends with one Terminated event, also for a subscriber after the end",
    () =>
      Effect.gen(function* () {
        const { clients: [a] } = yield* daemonAndClients({})
        const early = yield* Effect.fork(Stream.runCollect(a.events))
        yield* Effect.sleep(50)
        yield* a.close
        const got = Chunk.toReadonlyArray(yield* Fiber.join(early).pipe(Effect.timeout(2000)))
        expect(got.filter((e) => e._tag === "Terminated")).toHaveLength(1)
        expect(got[got.length - 1]._tag).toBe("Terminated")
        const late = Chunk.toReadonlyArray(yield* Stream.runCollect(a.events).pipe(Effect.timeout(2000)))
        expect(late.map((e) => e._tag)).toEqual(["Terminated"])
      }),
    TIMEOUT,
  )

  it.scopedLive(
    "multicastMany of nothing fails with the sticky error on a closed connection",
    () =>
      Effect.gen(function* () {
        const { clients: [a] } = yield* daemonAndClients({})
        yield* a.multicastMany([])
        yield* a.close
        const r = yield* Effect.either(a.multicastMany([]))
        expect(r._tag === "Left" && r.left._tag === "ConnectionError" ? r.left.reason : r._tag).toBe("Closed")
      }),
    TIMEOUT,
  )
})

describe("Connection paces joins and leaves", () => {
  it.scopedLive(
    "joins and leaves the daemon answers count in the window until their membership or self-leave is read",
    () =>
      Effect.gen(function* () {
        const d = yield* startDaemon()
        // A tiny inbound buffer: once the consumer stalls, the reader stops too.
        const a = yield* connect({ daemon: d.spreadName, window: fixedWindow(10), inboundCapacity: 4 })
        // Nobody reads: 100 joins and 100 leaves in a burst may run only 10
        // ahead of what the reader decoded.
        const storm = yield* Effect.fork(
          Effect.forEach(
            Array.from({ length: 100 }, (_, i) => `g${i}`),
            (g) => Effect.zipRight(a.join(g), a.leave(g)),
            { discard: true },
          ),
        )
        let s = yield* a.stats
        for (let i = 0; i < 200 && s.inFlight < 10; i++) {
          yield* Effect.sleep(5)
          s = yield* a.stats
        }
        yield* Effect.sleep(50)
        s = yield* a.stats
        expect(storm.unsafePoll()).toBeNull()
        expect(s.inFlight).toBe(10)
        expect(s.sent).toBeLessThan(200)
        // Reading the answers lets the rest through; the window is never exceeded.
        const answers = yield* Effect.fork(Stream.runCollect(Stream.take(a.messages, 200)))
        yield* Fiber.join(storm)
        const got = yield* Fiber.join(answers)
        expect(Chunk.size(got)).toBe(200)
        const after = yield* a.stats
        expect(after.windowPeak).toBeLessThanOrEqual(10)
        expect([after.inFlight, after.windowInUse]).toEqual([0, 0])
        expect((yield* a.state)._tag).toBe("Open")
      }),
    TIMEOUT,
  )

  it.scopedLive(
    "a join of a group already joined, or a leave of one not joined, is not counted (no answer comes)",
    () =>
      Effect.gen(function* () {
        const { clients: [a] } = yield* daemonAndClients({ window: fixedWindow(2) })
        yield* a.join("g")
        yield* next(a, membershipOf("g"))
        for (let i = 0; i < 20; i++) yield* a.join("g").pipe(Effect.timeout(1000))
        for (let i = 0; i < 20; i++) yield* a.leave("never").pipe(Effect.timeout(1000))
        expect((yield* a.stats).inFlight).toBe(0)
      }),
    TIMEOUT,
  )
})

describe("Connection and refused joins", () => {
  it.scopedLive(
    "a refused join releases the window permits of messages sent through it, and senders carry on",
    () =>
      Effect.gen(function* () {
        const d = yield* startDaemon({ maxGroupMembers: 1 })
        const owner = yield* connect({ daemon: d.spreadName, name: "owner" })
        yield* owner.join("full")
        yield* next(owner, membershipOf("full"))
        const a = yield* connect({ daemon: d.spreadName, name: "a", window: fixedWindow(10) })
        // The join is refused; the sends right behind it count as self-delivered
        // (a believes it is a member) until the reject arrives.
        yield* a.join("full")
        for (let i = 0; i < 30; i++) yield* a.multicast({ groups: "full", data: `m${i}` }).pipe(Effect.timeout(3000))
        const r = yield* a.receive
        expect(r._tag).toBe("Reject")
        for (let i = 0; i < 100 && (yield* a.stats).windowInUse > 0; i++) yield* Effect.sleep(10)
        const s = yield* a.stats
        expect([s.windowInUse, s.inFlight]).toEqual([0, 0])
        expect(Option.isNone(yield* a.view("full"))).toBe(true)
      }),
    TIMEOUT,
  )
})
