/**
 * Reconnect against a daemon in its own process (src/cli/daemon.ts), killed
 * by pid in the middle of a stream and started again on the same port.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, ConfigError, Effect, Either, Exit, Fiber, Option, Queue, Schedule, Scope, Stream } from "effect"
import { ConnectConfig } from "../../src/client/config/config.ts"
import { connect, type Connection } from "../../src/client/connection.ts"
import type { ConnectionError } from "../../src/client/core/errors.ts"
import { ConnectError } from "../../src/client/core/connect_error.ts"
import type { ConnectionEvent } from "../../src/client/core/events.ts"
import { isDiscontinuity } from "../../src/client/core/discontinuity.ts"
import { isRegular, text } from "../../src/client/core/refinements.ts"
import { fixedWindow } from "../../src/client/options.ts"
import type { ServerMessage } from "../../src/protocol/server_messages.ts"
import { startDaemonProcess } from "../_helpers/daemon_process.ts"
import { envConfig, eventually, quiet, sleep, startDaemon } from "../_helpers/fixtures.ts"

const TIMEOUT = 30_000
/** A daemon process on `port` (0: a free one); `kill` sends SIGKILL by pid and waits. */
const spawnDaemon = (port: number) =>
  Effect.map(startDaemonProcess({ port }), (p) => ({
    port: p.address._tag === "Tcp" ? p.address.port : 0,
    pid: p.pid,
    kill: p.kill,
  }))

/**
 * A TCP proxy to `port` whose client sides can be cut while the daemon
 * sides stay open (so the daemon keeps the sessions), and which can turn
 * new connections away for a while.
 */
const proxy = (port: number) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 })
      const clients = new Set<Deno.Conn>()
      const upstreams = new Set<Deno.Conn>()
      const state = { refuse: false }
      const pipe = async (from: Deno.Conn, to: Deno.Conn) => {
        const buf = new Uint8Array(64 * 1024)
        try {
          for (;;) {
            const n = await from.read(buf)
            if (n === null) return
            let o = 0
            while (o < n) o += await to.write(buf.subarray(o, n))
          }
        } catch {
          // one side closed
        }
      }
      const loop = (async () => {
        for (;;) {
          let c: Deno.Conn
          try {
            c = await listener.accept()
          } catch {
            return
          }
          if (state.refuse) {
            c.close()
            continue
          }
          const up = await Deno.connect({ hostname: "127.0.0.1", port })
          clients.add(c)
          upstreams.add(up)
          void pipe(c, up)
          void pipe(up, c)
        }
      })()
      const closeAll = (conns: Set<Deno.Conn>) => {
        for (const c of conns) {
          try {
            c.close()
          } catch {
            // closed
          }
        }
        conns.clear()
      }
      return {
        spreadName: `${listener.addr.port}@127.0.0.1`,
        state,
        cut: () => closeAll(clients),
        close: async () => {
          listener.close()
          closeAll(clients)
          closeAll(upstreams)
          await loop
        },
      }
    }),
    (p) => Effect.promise(() => p.close()),
  )

/** Everything a stream delivers, into a queue, until it ends (with its exit). */
const collect = <E>(stream: Stream.Stream<ServerMessage, E>) =>
  Effect.gen(function* () {
    const q = yield* Queue.unbounded<ServerMessage>()
    const fiber = yield* Effect.fork(Effect.either(Stream.runForEach(stream, (m) => Queue.offer(q, m))))
    return { q, fiber }
  })

/** Takes from `q` until `match`; answers everything taken (the match last). */
const until = (q: Queue.Queue<ServerMessage>, match: (m: ServerMessage) => boolean) =>
  Effect.gen(function* () {
    const seen: Array<ServerMessage> = []
    while (true) {
      const m = yield* Queue.take(q)
      seen.push(m)
      if (match(m)) return seen
    }
  }).pipe(Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error("nothing matched in 10 s") }))

const isText = (s: string) => (m: ServerMessage) => isRegular(m) && text(m) === s

const eventsOf = (conn: Connection) =>
  Effect.gen(function* () {
    const seen: Array<ConnectionEvent> = []
    yield* Effect.fork(Stream.runForEach(conn.events, (e) => Effect.sync(() => seen.push(e))))
    return seen
  })

const tags = (events: ReadonlyArray<ConnectionEvent>) =>
  events.map((e) => e._tag).filter((t) => t !== "SlowConsumer" && t !== "ConsumerCaughtUp")

const hasMember = (conn: Connection, group: string) =>
  Effect.map(conn.view(group), (v) => Option.isSome(v) && v.value.members.includes(conn.privateGroup))

const waitFor = (check: Effect.Effect<boolean>, ms = 10_000) =>
  Effect.gen(function* () {
    const deadline = Date.now() + ms
    while (!(yield* check)) {
      if (Date.now() > deadline) return false
      yield* sleep(10)
    }
    return true
  })

describe("connect with reconnect", () => {
  it.scopedLive(
    "a daemon process killed by pid and restarted on the same port: Disconnected then Reconnected, and messages and subscribe streams go on after a discontinuity",
    () =>
      quiet(Effect.gen(function* () {
        const first = yield* spawnDaemon(0)
        const daemon = `${first.port}@127.0.0.1`
        const a = yield* connect({
          daemon,
          reconnect: Schedule.spaced("50 millis").pipe(Schedule.intersect(Schedule.recurs(200))),
        })
        const events = yield* eventsOf(a)
        yield* a.join("plain")
        const sub = yield* collect(a.subscribe("sub"))
        const messages = yield* collect(a.messages)
        expect(yield* waitFor(Effect.zipWith(hasMember(a, "plain"), hasMember(a, "sub"), (x, y) => x && y))).toBe(
          true,
        )

        const b = yield* connect({ daemon })
        // (A message naming a subscribed group goes to its subscribers only.)
        yield* b.multicast({ groups: "plain", data: "before" })
        yield* b.multicast({ groups: "sub", data: "before" })
        yield* until(messages.q, isText("before"))
        yield* until(sub.q, isText("before"))

        const sentBefore = (yield* a.stats).sent
        // Mid-stream: the daemon process dies.
        yield* first.kill
        expect(yield* eventually(() => tags(events).includes("Disconnected"), 10_000)).toBe(true)
        const during = yield* a.state
        expect(during._tag).toBe("Reconnecting")
        // A send during the gap waits in the outbox and goes out on the new
        // session, after the groups are joined again.
        yield* a.multicast({ groups: "plain", data: "sent during the gap" })

        // The same port again, a new process.
        const second = yield* spawnDaemon(first.port)
        expect(second.port).toBe(first.port)
        expect(yield* eventually(() => tags(events).includes("Reconnected"), 15_000)).toBe(true)
        expect(tags(events)).toEqual(["Disconnected", "Reconnected"])
        const reconnected = events.find((e) => e._tag === "Reconnected")
        expect(reconnected).toMatchObject({
          _tag: "Reconnected",
          privateGroup: a.privateGroup,
          previousPrivateGroup: a.privateGroup,
          newPrivateGroup: false,
          rejoined: ["plain", "sub"],
        })
        // The groups are joined again on the new daemon.
        expect(yield* waitFor(Effect.zipWith(hasMember(a, "plain"), hasMember(a, "sub"), (x, y) => x && y))).toBe(
          true,
        )
        expect((yield* a.state)._tag).toBe("Open")

        // A second client's messages after the restart reach the existing streams.
        const c = yield* connect({ daemon })
        yield* c.multicast({ groups: "plain", data: "after" })
        yield* c.multicast({ groups: "sub", data: "after" })
        const shared = yield* until(messages.q, isText("after"))
        expect(shared.findIndex(isText("sent during the gap"))).toBeGreaterThan(shared.findIndex(isDiscontinuity))
        const subscribed = yield* until(sub.q, isText("after"))
        for (const [seen, group] of [[shared, a.privateGroup], [subscribed, "sub"]] as const) {
          const marks = seen.filter(isDiscontinuity)
          expect(marks).toHaveLength(1)
          expect(marks[0]).toMatchObject({ group, privateGroup: a.privateGroup, rejoined: ["plain", "sub"] })
          // The mark comes before anything of the new session.
          expect(seen.indexOf(marks[0])).toBeLessThan(seen.findIndex(isText("after")))
        }
        // Both streams are still running.
        expect(Option.isNone(yield* Fiber.poll(messages.fiber))).toBe(true)
        expect(Option.isNone(yield* Fiber.poll(sub.fiber))).toBe(true)
        const stats = yield* a.stats
        expect(stats.reconnects).toBe(1)
        // Counted across sessions: the gap's send and the two re-joins.
        expect(stats.sent).toBe(sentBefore + 3)
      })),
    TIMEOUT,
  )

  it.scopedLive(
    "a reconnect schedule that gives up ends every waiter with one sticky error",
    () =>
      quiet(Effect.gen(function* () {
        const d = yield* spawnDaemon(0)
        const a = yield* connect({
          daemon: `${d.port}@127.0.0.1`,
          reconnect: Schedule.spaced("50 millis").pipe(Schedule.intersect(Schedule.recurs(2))),
          outboxMessages: 1,
        })
        const events = yield* eventsOf(a)
        const sub = yield* collect(a.subscribe("sub"))
        const messages = yield* collect(a.messages)
        const receiver = yield* Effect.fork(Effect.either(a.receive))
        const closed = yield* Effect.fork(a.awaitClosed)
        yield* d.kill
        expect(yield* eventually(() => tags(events).includes("Disconnected"), 10_000)).toBe(true)
        // During the gap a send is queued (the outbox holds one frame); the next waits.
        yield* Effect.either(a.multicast({ groups: "sub", data: "queued" }))
        const sender = yield* Effect.fork(Effect.either(a.multicast({ groups: "sub", data: "waits" })))
        const sticky = yield* Fiber.join(closed).pipe(Effect.timeout("10 seconds"))
        expect(sticky.reconnecting).toBeUndefined()
        // EOF or a reset, as the kernel reports the dead peer.
        expect(["ConnectionClosed", "NetError"]).toContain(sticky.reason)
        expect(sticky.detail).toContain("gave up after 3 attempts")
        const failures: Array<ConnectionError | unknown> = [
          Either.flip(yield* Fiber.join(sender)).pipe(Either.getOrThrow),
          Either.flip(yield* Fiber.join(receiver)).pipe(Either.getOrThrow),
          Either.flip(yield* Fiber.join(sub.fiber)).pipe(Either.getOrThrow),
          Either.flip(yield* Fiber.join(messages.fiber)).pipe(Either.getOrThrow),
          Either.flip(yield* Effect.either(a.join("g"))).pipe(Either.getOrThrow),
          (yield* a.state)._tag === "Failed" ? (yield* a.state as Effect.Effect<{ error: unknown }>).error : undefined,
        ]
        for (const f of failures) expect(f).toBe(sticky)
        expect(yield* eventually(() => tags(events).includes("Terminated"))).toBe(true)
        expect(tags(events)).toEqual(["Disconnected", "Terminated"])
        const terminated = events.find((e) => e._tag === "Terminated")
        expect(terminated?._tag === "Terminated" ? terminated.error : undefined).toBe(sticky)
        expect(Chunk.isEmpty(yield* Queue.takeAll(sub.q))).toBe(true)
      })),
    TIMEOUT,
  )

  it.scopedLive("a daemon list whose first address is dead connects to the second", () =>
    Effect.gen(function* () {
      const live = yield* startDaemon()
      const l = Deno.listen({ hostname: "127.0.0.1", port: 0 })
      const deadPort = l.addr.port
      l.close()
      const conn = yield* connect({ daemon: [`${deadPort}@127.0.0.1`, `${live.port}@127.0.0.1`] })
      expect(conn.address).toBe(`${live.port}@127.0.0.1`)
      yield* conn.join("g")
      expect(yield* waitFor(hasMember(conn, "g"))).toBe(true)
      // Every address dead: one error naming each.
      const none = yield* Effect.flip(connect({ daemon: [`${deadPort}@127.0.0.1`, `${deadPort}@127.0.0.1`] }))
      expect(none.reason).toBe("CouldNotConnect")
      expect(none.detail).toContain("no daemon accepted a session")
    }).pipe(quiet), TIMEOUT)

  it.scopedLive(
    "while reconnecting, pending requests fail and (whileReconnecting: fail) sends fail, marked reconnecting; the window starts afresh",
    () =>
      quiet(Effect.gen(function* () {
        const first = yield* spawnDaemon(0)
        const daemon = `${first.port}@127.0.0.1`
        const a = yield* connect({
          daemon,
          window: fixedWindow(4),
          whileReconnecting: "fail",
          reconnect: Schedule.spaced("50 millis").pipe(Schedule.intersect(Schedule.recurs(200))),
        })
        const events = yield* eventsOf(a)
        yield* a.join("g")
        expect(yield* waitFor(hasMember(a, "g"))).toBe(true)
        // Nobody answers: the request stays pending.
        const pending = yield* Effect.fork(
          Effect.either(a.request({ group: "nobody", data: "ping", timeout: "20 seconds" })),
        )
        yield* sleep(50)
        yield* first.kill
        const failed = Either.flip(yield* Fiber.join(pending).pipe(Effect.timeout("10 seconds")))
        expect(Either.isRight(failed)).toBe(true)
        const requestError = Either.getOrThrow(failed)
        expect(requestError._tag).toBe("ConnectionError")
        expect(requestError._tag === "ConnectionError" && requestError.reconnecting).toBe(true)
        expect((yield* a.state)._tag).toBe("Reconnecting")
        const send = yield* Effect.flip(a.multicast({ groups: "g", data: "too early" }))
        expect(send._tag === "ConnectionError" && send.reconnecting).toBe(true)

        yield* spawnDaemon(first.port)
        expect(yield* eventually(() => tags(events).includes("Reconnected"), 15_000)).toBe(true)
        expect(yield* waitFor(hasMember(a, "g"))).toBe(true)
        // The rejoin's answer returned no permit it had not taken: the
        // window is whole, and a burst through it comes back.
        for (let i = 0; i < 20; i++) yield* a.multicast({ groups: "g", data: `after ${i}` })
        expect(yield* waitFor(Effect.map(a.stats, (s) => s.inFlight === 0 && s.windowInUse === 0))).toBe(true)
        const s = yield* a.stats
        expect(s.windowPeak).toBeLessThanOrEqual(4)
      })),
    TIMEOUT,
  )

  it.scopedLive(
    "a subscription that ends during the gap (whileReconnecting: fail) is not joined again, and its group's messages reach messages after an explicit join",
    () =>
      quiet(Effect.gen(function* () {
        const first = yield* spawnDaemon(0)
        const daemon = `${first.port}@127.0.0.1`
        const a = yield* connect({
          daemon,
          whileReconnecting: "fail",
          reconnect: Schedule.spaced("50 millis").pipe(Schedule.intersect(Schedule.recurs(200))),
        })
        const events = yield* eventsOf(a)
        const subScope = yield* Scope.make()
        yield* Effect.forkIn(Stream.runDrain(a.subscribe("s")), subScope)
        expect(yield* waitFor(hasMember(a, "s"))).toBe(true)
        yield* first.kill
        expect(yield* eventually(() => tags(events).includes("Disconnected"), 10_000)).toBe(true)
        // The subscription ends while the session is gone: its leave cannot be sent.
        yield* Scope.close(subScope, Exit.void)
        yield* spawnDaemon(first.port)
        expect(yield* eventually(() => tags(events).includes("Reconnected"), 15_000)).toBe(true)
        yield* sleep(100)
        expect(yield* hasMember(a, "s")).toBe(false)
        expect((yield* a.stats).subscribers).toBe(0)
        // Joined again by hand, the group's messages go to `messages` as usual.
        const b = yield* connect({ daemon })
        yield* a.join("s")
        expect(yield* waitFor(hasMember(a, "s"))).toBe(true)
        yield* b.multicast({ groups: "s", data: "hello" })
        const got = yield* a.messages.pipe(Stream.filter(isText("hello")), Stream.take(1), Stream.runCollect)
        expect(got.length).toBe(1)
      })),
    TIMEOUT,
  )

  it.live("ConnectConfig reads a comma-separated SPREAD_DAEMON and a reconnect policy", () =>
    Effect.gen(function* () {
      const c = yield* ConnectConfig.pipe(Effect.provide(envConfig({
        SPREAD_DAEMON: "4803@a, 4804@b,/tmp/4805",
        SPREAD_RECONNECT_DELAY: "1 millis",
        SPREAD_RECONNECT_ATTEMPTS: "2",
        SPREAD_WHILE_RECONNECTING: "fail",
      })))
      expect(c.daemon).toEqual(["4803@a", "4804@b", "/tmp/4805"])
      expect(c.whileReconnecting).toBe("fail")
      // The schedule: the first attempt, then two retries.
      let attempts = 0
      const schedule = c.reconnect
      expect(schedule).toBeDefined()
      if (schedule !== undefined) {
        const refused = new ConnectError({ reason: "CouldNotConnect", address: "4803@a", detail: "refused" })
        yield* Effect.either(Effect.retry(
          Effect.suspend(() => {
            attempts++
            return Effect.fail(refused)
          }),
          schedule,
        ))
      }
      expect(attempts).toBe(3)
      // Reconnecting stays off without RECONNECT_DELAY.
      expect((yield* ConnectConfig.pipe(Effect.provide(envConfig({ SPREAD_DAEMON: "4803" })))).reconnect)
        .toBeUndefined()
      const bad = yield* Effect.flip(
        ConnectConfig.pipe(Effect.provide(envConfig({ SPREAD_WHILE_RECONNECTING: "maybe" }))),
      )
      expect(ConfigError.isConfigError(bad)).toBe(true)
    }))

  it.scopedLive(
    "a daemon that still holds the lost session's name gets a fresh one, reported in Reconnected and the discontinuity",
    () =>
      quiet(Effect.gen(function* () {
        const d = yield* startDaemon()
        const p = yield* proxy(d.port)
        const a = yield* connect({
          daemon: p.spreadName,
          name: "keep",
          reconnect: Schedule.spaced("20 millis").pipe(Schedule.intersect(Schedule.recurs(500))),
        })
        const events = yield* eventsOf(a)
        const messages = yield* collect(a.messages)
        yield* a.join("g")
        expect(yield* waitFor(hasMember(a, "g"))).toBe(true)
        // The client loses its socket; the daemon keeps "#keep#localhost".
        p.state.refuse = true
        p.cut()
        expect(yield* eventually(() => tags(events).includes("Disconnected"), 10_000)).toBe(true)
        // Queued during the gap, under the old name; it goes out under the new one.
        yield* a.multicast({ groups: "g", data: "from the gap" })
        // Queued to the old private group: it goes nowhere once the name is
        // new, so its window permits must come back without it.
        for (let i = 0; i < 3; i++) yield* a.multicast({ groups: "#keep#localhost", data: `to self ${i}` })
        // A request made in the gap carries the old name as its reply-to: no
        // reply can reach it, so it fails once the new name is known, not at
        // its timeout.
        const request = yield* Effect.fork(Effect.flip(a.request({ group: "svc", data: "q", timeout: "60 seconds" })))
        p.state.refuse = false
        expect(yield* eventually(() => tags(events).includes("Reconnected"), 10_000)).toBe(true)
        const reconnected = events.find((e) => e._tag === "Reconnected")
        expect(reconnected).toMatchObject({
          previousPrivateGroup: "#keep#localhost",
          newPrivateGroup: true,
          privateGroup: a.privateGroup,
          rejoined: ["g"],
        })
        expect(a.privateGroup).not.toBe("#keep#localhost")
        const failed = yield* Fiber.join(request).pipe(Effect.timeout("5 seconds"))
        expect(failed).toMatchObject({ _tag: "ConnectionError", reconnecting: true, privateGroup: "#keep#localhost" })
        expect(failed._tag === "ConnectionError" && failed.detail).toContain(`the new session is ${a.privateGroup}`)
        const seen = yield* until(messages.q, isText("from the gap"))
        const mark = seen.find(isDiscontinuity)
        expect(mark).toMatchObject({ previousPrivateGroup: "#keep#localhost", privateGroup: a.privateGroup })
        const gapMessage = seen[seen.length - 1]
        expect(isRegular(gapMessage) && gapMessage.sender).toBe(a.privateGroup)
        expect(yield* waitFor(hasMember(a, "g"))).toBe(true)
        expect(yield* waitFor(Effect.map(a.stats, (st) => st.inFlight === 0 && st.windowInUse === 0))).toBe(true)
      })),
    TIMEOUT,
  )

  it.scopedLive(
    "close while reconnecting stops reconnecting and ends every waiter with the Closed error at once",
    () =>
      quiet(Effect.gen(function* () {
        const d = yield* spawnDaemon(0)
        const a = yield* connect({
          daemon: `${d.port}@127.0.0.1`,
          reconnect: Schedule.spaced("50 millis").pipe(Schedule.intersect(Schedule.recurs(10_000))),
        })
        const events = yield* eventsOf(a)
        const receiver = yield* Effect.fork(Effect.either(a.receive))
        const sub = yield* collect(a.subscribe("sub"))
        yield* d.kill
        expect(yield* eventually(() => tags(events).includes("Disconnected"), 10_000)).toBe(true)
        const started = Date.now()
        yield* a.close.pipe(Effect.timeout("2 seconds"))
        expect(Date.now() - started).toBeLessThan(1000)
        const state = yield* a.state
        expect(state._tag).toBe("Closed")
        const closed = state._tag === "Closed" ? state.error : undefined
        expect(closed?.reason).toBe("Closed")
        expect(Either.flip(yield* Fiber.join(receiver)).pipe(Either.getOrThrow)).toBe(closed)
        expect(Either.flip(yield* Fiber.join(sub.fiber)).pipe(Either.getOrThrow)).toBe(closed)
        expect(yield* eventually(() => tags(events).includes("Terminated"))).toBe(true)
        expect(tags(events)).toEqual(["Disconnected", "Terminated"])
      })),
    TIMEOUT,
  )
})
