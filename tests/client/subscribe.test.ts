import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Option, Queue, Scope, Stream } from "effect"
import { connect, type Connection } from "../../src/client/connection.ts"
import type { ConnectionEvent } from "../../src/client/core/events.ts"
import type { ServerMessage } from "../../src/protocol/server_messages.ts"
import { quiet, sleep, startDaemon } from "./_fixtures.ts"
import { daemonAndClients } from "../_helpers/clients.ts"

const TIMEOUT = 15_000
const decoder = new TextDecoder()
const textOf = (m: ServerMessage) => m._tag === "Regular" ? decoder.decode(m.data) : `<${m._tag}>`

/** Waits (polling, bounded) until `conn` has `n` subscribers. */
const awaitSubscribers = (conn: Connection, n: number) =>
  Effect.gen(function* () {
    while ((yield* conn.stats).subscribers !== n) yield* sleep(5)
  }).pipe(Effect.timeoutFail({ duration: 5000, onTimeout: () => `never ${n} subscribers` }))

/**
 * Runs a subscription in a fiber of the current scope, into a queue the
 * test reads (or, with `stall`, taking one message and then nothing); returns
 * once it is registered (and its join queued).
 */
const open = (conn: Connection, group: string, options: { bufferSize?: number; stall?: boolean } = {}) =>
  Effect.gen(function* () {
    const q = yield* Queue.unbounded<ServerMessage>()
    const before = (yield* conn.stats).subscribers
    const stream = conn.subscribe(group, options.bufferSize === undefined ? {} : { bufferSize: options.bufferSize })
    yield* Effect.forkScoped(Stream.runForEach(stream, (m) => options.stall ? Effect.never : Queue.offer(q, m)))
    yield* awaitSubscribers(conn, before + 1)
    return q
  })

/** Takes until `n` messages matching `keep` came; answers their texts. */
const collect = (
  q: Queue.Queue<ServerMessage>,
  n: number,
  keep: (m: ServerMessage) => boolean = (m) => m._tag === "Regular",
) =>
  Effect.gen(function* () {
    const out: Array<string> = []
    while (out.length < n) {
      const m = yield* Queue.take(q)
      if (keep(m)) out.push(textOf(m))
    }
    return out
  }).pipe(Effect.timeoutFail({ duration: 5000, onTimeout: () => `only part of ${n} messages came` }))

const isJoinOf = (who: string) => (m: ServerMessage) => m._tag === "Membership" && m.changed === who

/** Waits until `conn`'s view of `group` has `n` members. */
const awaitMembers = (conn: Connection, group: string, n: number) =>
  conn.watch(group).pipe(
    Stream.filter((v) => Option.isSome(v) && v.value.members.length === n),
    Stream.take(1),
    Stream.runDrain,
    Effect.timeoutFail({ duration: 5000, onTimeout: () => `no view of ${group} with ${n} members` }),
  )

const send = (conn: Connection, group: string, n: number, prefix = "m") =>
  Effect.forEach(
    Array.from({ length: n }, (_, i) => i),
    (i) => conn.multicast({ groups: group, data: `${prefix}${i}` }),
  )

describe("Connection.subscribe", () => {
  it.scopedLive(
    "every subscriber of a group gets every message of it, where messages would split them",
    () =>
      Effect.gen(function* () {
        const { clients: [a, b] } = yield* daemonAndClients("alice", "bob")
        const s1 = yield* open(a, "g")
        const s2 = yield* open(a, "g")
        yield* collect(s1, 1, isJoinOf("#alice#localhost"))
        yield* send(b, "g", 10)
        const expected = Array.from({ length: 10 }, (_, i) => `m${i}`)
        expect(yield* collect(s1, 10)).toEqual(expected)
        expect(yield* collect(s2, 10)).toEqual(expected)
        // None went to the shared work queue.
        expect((yield* a.stats).inbound).toBe(0)
        expect((yield* a.stats).subscribers).toBe(2)
      }),
    TIMEOUT,
  )

  it.scopedLive(
    "joins with the first subscriber and leaves when the last one ends",
    () =>
      Effect.gen(function* () {
        const { clients: [a, b] } = yield* daemonAndClients("alice", "bob")
        yield* b.join("g")
        const first = yield* Scope.make()
        const second = yield* Scope.make()
        yield* open(a, "g").pipe(Scope.extend(first))
        yield* awaitMembers(b, "g", 2)
        yield* open(a, "g").pipe(Scope.extend(second))
        yield* Scope.close(first, Exit.void)
        // Still a member with one subscriber left: a message still comes back.
        yield* sleep(100)
        expect(Option.map(yield* b.view("g"), (v) => v.members.length)).toEqual(Option.some(2))
        yield* Scope.close(second, Exit.void)
        yield* awaitMembers(b, "g", 1)
        expect(Option.isNone(yield* a.view("g"))).toBe(true)
        expect((yield* a.stats).subscribers).toBe(0)
        // The self-leave of the last subscription is swallowed, not queued in messages.
        yield* sleep(100)
        expect((yield* a.stats).inbound).toBe(0)
      }),
    TIMEOUT,
  )

  it.scopedLive(
    "a subscribed group's messages reach its subscriber while nobody takes from messages",
    () =>
      Effect.gen(function* () {
        const { clients: [a, b] } = yield* daemonAndClients({ name: "alice", inboundCapacity: 4 }, "bob")
        const s = yield* open(a, "g")
        yield* collect(s, 1, isJoinOf("#alice#localhost"))
        // Far more than the shared buffer holds; nobody reads `messages`.
        yield* send(b, "g", 200)
        const got = yield* collect(s, 200)
        expect(got[199]).toBe("m199")
      }),
    TIMEOUT,
  )

  it.scopedLive(
    "messages keeps what no subscription claims: groups joined with join, and direct messages",
    () =>
      Effect.gen(function* () {
        const { clients: [a, b] } = yield* daemonAndClients({ name: "alice", membership: false }, "bob")
        const s = yield* open(a, "g")
        yield* a.join("other")
        yield* b.join("g")
        yield* awaitMembers(b, "g", 2)
        yield* b.multicast({ groups: "g", data: "to g" })
        yield* b.multicast({ groups: "other", data: "to other" })
        yield* b.multicast({ groups: a.privateGroup, data: "to alice" })
        yield* b.multicast({ groups: ["g", "other"], data: "to both" })
        expect(yield* collect(s, 2)).toEqual(["to g", "to both"])
        const shared = [textOf(yield* a.receive), textOf(yield* a.receive)]
        expect(shared).toEqual(["to other", "to alice"])
        yield* sleep(50)
        expect((yield* a.stats).inbound).toBe(0)
      }),
    TIMEOUT,
  )

  it.scopedLive(
    "a stalled subscriber gets a SlowConsumer event naming its group; ending it releases the reader",
    () =>
      Effect.gen(function* () {
        const { clients: [a, b] } = yield* daemonAndClients("alice", "bob")
        const events: Array<ConnectionEvent> = []
        yield* Effect.forkScoped(Stream.runForEach(a.events, (e) => Effect.sync(() => events.push(e))))
        const reading = yield* open(a, "g")
        yield* collect(reading, 1, isJoinOf("#alice#localhost"))
        const stalledScope = yield* Scope.make()
        yield* open(a, "g", { bufferSize: 4, stall: true }).pipe(Scope.extend(stalledScope))
        yield* send(b, "g", 50)
        // The stalled buffer (4, and one taken) fills; the reader waits for
        // it, so the reading subscriber does not get all 50.
        yield* sleep(300)
        const before = yield* Queue.size(reading)
        expect(before).toBeLessThan(50)
        expect(events.some((e) => e._tag === "SlowConsumer" && e.group === "g" && e.capacity === 4)).toBe(true)
        yield* Scope.close(stalledScope, Exit.void)
        // Ending the stalled subscriber releases the reader: the rest flows.
        const got = yield* collect(reading, 50)
        expect(got[49]).toBe("m49")
      }),
    TIMEOUT,
  )

  it.scopedLive(
    "a refused join reaches the subscriber as a Reject; after it ends, the group's messages flow to messages again",
    () =>
      Effect.gen(function* () {
        const d = yield* startDaemon({ maxGroupMembers: 1 })
        const a = yield* connect({ daemon: d.spreadName, name: "alice" })
        const b = yield* connect({ daemon: d.spreadName, name: "bob" })
        yield* b.join("g")
        yield* awaitMembers(b, "g", 1)
        const scope = yield* Scope.make()
        const s = yield* open(a, "g").pipe(Scope.extend(scope))
        expect(yield* collect(s, 1, (m) => m._tag === "Reject")).toEqual(["<Reject>"])
        yield* Scope.close(scope, Exit.void)
        yield* b.leave("g")
        while (Option.isSome(yield* b.view("g"))) yield* sleep(5)
        yield* a.join("g")
        while (Option.isNone(yield* a.view("g"))) yield* sleep(5)
        yield* b.multicast({ groups: "g", data: "after" })
        // Nothing is left waiting for a self-leave that a refused join never gets.
        let m = yield* a.receive
        while (m._tag !== "Regular") m = yield* a.receive
        expect(textOf(m)).toBe("after")
      }),
    TIMEOUT,
  )

  it.scopedLive(
    "fails with a RequestError for a bad group and with the sticky error when the connection closes",
    () =>
      Effect.gen(function* () {
        const { clients: [a] } = yield* daemonAndClients("alice")
        const bad = yield* Effect.flip(Stream.runDrain(a.subscribe("#alice#localhost")))
        expect(bad._tag).toBe("RequestError")
        const running = yield* Effect.fork(Stream.runDrain(a.subscribe("g")))
        yield* sleep(50)
        yield* a.close
        const exit = yield* Fiber.await(running).pipe(Effect.timeout(2000))
        expect(Exit.isFailure(exit)).toBe(true)
        if (Exit.isFailure(exit)) expect(JSON.stringify(exit.cause)).toContain("ConnectionError")
        const after = yield* Effect.flip(Stream.runDrain(a.subscribe("g")))
        expect(after._tag).toBe("ConnectionError")
      }).pipe(quiet),
    TIMEOUT,
  )
})
