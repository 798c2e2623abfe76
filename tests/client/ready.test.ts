import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Stream } from "effect"
import { RequestError } from "../../src/client/core/errors.ts"
import { daemonAndClients } from "../_helpers/clients.ts"

const TIMEOUT = 20_000
const decoder = new TextDecoder()

describe("readiness without sleeps", () => {
  it.scopedLive(
    "respondJoined returns once joined: the first request sent right after it is answered, every time",
    () =>
      Effect.gen(function* () {
        const { clients: [server, client] } = yield* daemonAndClients("server", "client")
        // A fresh group each round: a responder that was not yet a member
        // when the request was sequenced would let it time out. The server's
        // join waits behind a burst it is still sending, so a responder that
        // returned as soon as its join was queued would be too early.
        const noise = new Uint8Array(20_000)
        for (let i = 0; i < 10; i++) {
          yield* Effect.scoped(Effect.gen(function* () {
            yield* server.multicastMany(Array.from({ length: 200 }, () => ({ groups: "noise", data: noise })))
            yield* server.respondJoined({
              group: `svc${i}`,
              handler: (req) => Effect.succeed(`re ${decoder.decode(req.data)}`),
            })
            const reply = yield* client.request({ group: `svc${i}`, data: `q${i}`, timeout: "1 second" })
            expect(decoder.decode(reply.data)).toBe(`re q${i}`)
          }))
        }
        // The responders went with their scopes: nothing subscribed is left.
        expect((yield* server.stats).subscribers).toBe(0)
      }),
    TIMEOUT,
  )

  it.scopedLive(
    "join with confirmed: true returns once a member: a message sent right after by another client reaches it",
    () =>
      Effect.gen(function* () {
        const { clients: [a, b] } = yield* daemonAndClients("a", "b")
        for (let i = 0; i < 20; i++) {
          yield* a.join(`g${i}`, { confirmed: true })
          const view = yield* a.view(`g${i}`)
          expect(view._tag === "Some" && view.value.members.includes(a.privateGroup)).toBe(true)
          yield* b.multicast({ groups: `g${i}`, data: `m${i}` })
        }
        // Every message came, each after its group's membership message.
        const got: Array<string> = []
        while (got.length < 20) {
          const m = yield* a.receive
          if (m._tag === "Regular") got.push(decoder.decode(m.data))
        }
        expect(got).toEqual(Array.from({ length: 20 }, (_, i) => `m${i}`))
      }),
    TIMEOUT,
  )

  it.scopedLive(
    "subscribeJoined returns once joined, also for a second subscriber of the group",
    () =>
      Effect.gen(function* () {
        const { clients: [a, b] } = yield* daemonAndClients("a", "b")
        const first = yield* a.subscribeJoined("news")
        const second = yield* a.subscribeJoined("news")
        yield* b.multicast({ groups: "news", data: "hello" })
        const regular = (s: typeof first) =>
          s.pipe(
            Stream.filter((m) => m._tag === "Regular"),
            Stream.take(1),
            Stream.runCollect,
            Effect.map(Chunk.toArray),
          )
        const [[m1], [m2]] = yield* Effect.all([regular(first), regular(second)], { concurrency: 2 })
        expect(m1._tag === "Regular" && decoder.decode(m1.data)).toBe("hello")
        expect(m2._tag === "Regular" && decoder.decode(m2.data)).toBe("hello")
      }),
    TIMEOUT,
  )

  it.scopedLive(
    "a confirmed join is refused with NoMembership on a connection without membership messages",
    () =>
      Effect.gen(function* () {
        const { clients: [a] } = yield* daemonAndClients({ name: "a", membership: false })
        const e = yield* Effect.flip(a.join("g", { confirmed: true }))
        expect(e).toBeInstanceOf(RequestError)
        expect(e.reason).toBe("NoMembership")
        expect(e.message).toContain(`"g"`)
      }),
    TIMEOUT,
  )

  it.scopedLive(
    "a confirmed join fails with the sticky error when the connection ends first",
    () =>
      Effect.gen(function* () {
        const { clients: [a] } = yield* daemonAndClients("a")
        const joining = yield* Effect.fork(
          Effect.zipRight(a.close, a.join("late", { confirmed: true })),
        )
        const exit = yield* joining.await
        expect(exit._tag).toBe("Failure")
      }),
    TIMEOUT,
  )
})
