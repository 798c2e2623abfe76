import { describe, expect, it } from "@effect/vitest"
import { Data, Effect, Exit, Fiber, Option, Stream } from "effect"
import { connect, type Connection } from "../../src/client/connection.ts"
import { decodeEnvelope, encodeEnvelope } from "../../src/client/features/envelope.ts"
import type { ServerMessage } from "../../src/protocol/server_messages.ts"
import { quiet, sleep } from "./_fixtures.ts"
import { daemonAndClients } from "../_helpers/clients.ts"

const TIMEOUT = 15_000
const decoder = new TextDecoder()

/** Forks `respond` and waits until the responder is subscribed. */
const serve = <E>(
  conn: Connection,
  group: string,
  handler: (data: string) => Effect.Effect<string, E>,
) =>
  Effect.gen(function* () {
    const before = (yield* conn.stats).subscribers
    const fiber = yield* Effect.forkScoped(conn.respond({ group, handler: (req) => handler(decoder.decode(req.data)) }))
    while ((yield* conn.stats).subscribers === before) yield* sleep(5)
    return fiber
  })

/** Waits until `conn`'s view of `group` has `n` members. */
const awaitMembers = (conn: Connection, group: string, n: number) =>
  conn.watch(group).pipe(
    Stream.filter((v) => Option.isSome(v) && v.value.members.length === n),
    Stream.take(1),
    Stream.runDrain,
    Effect.timeoutFail({ duration: 5000, onTimeout: () => `no view of ${group} with ${n} members` }),
  )

class Refused extends Data.TaggedError("Refused")<{ readonly message: string }> {}

describe("request/reply", () => {
  it.scopedLive(
    "request completes with the reply of a responder; the request on the wire is a documented envelope",
    () =>
      Effect.gen(function* () {
        const { clients: [server, client, observer] } = yield* daemonAndClients("server", "client", "observer")
        yield* observer.join("time")
        yield* serve(server, "time", (q) => Effect.succeed(`echo ${q}`))
        yield* awaitMembers(observer, "time", 2)
        const reply = yield* client.request({ group: "time", data: "now?", timeout: "2 seconds" })
        expect(decoder.decode(reply.data)).toBe("echo now?")
        expect(reply.sender).toBe("#server#localhost")
        expect(reply.correlationId).toMatch(/^[0-9a-f]{16}$/)
        // A plain member of the group sees the request as an ordinary message
        // whose payload decodes as the README describes.
        let seen: ServerMessage | undefined
        while (seen === undefined || seen._tag !== "Regular") seen = yield* observer.receive
        const env = decodeEnvelope(seen.data)
        expect(env?.kind).toBe("Request")
        expect(env?.replyTo).toBe("#client#localhost")
        expect(env?.correlationId).toBe(reply.correlationId)
        expect(env === undefined ? "" : decoder.decode(env.body)).toBe("now?")
        // The reply never reached the client's shared buffer.
        expect((yield* client.stats).inbound).toBe(0)
      }),
    TIMEOUT,
  )

  it.scopedLive(
    "a client that writes the envelope by hand (as a C client would) gets the reply on its private group",
    () =>
      Effect.gen(function* () {
        const { clients: [server, plain] } = yield* daemonAndClients("server", "plain")
        yield* serve(server, "upper", (q) => Effect.succeed(q.toUpperCase()))
        const payload = encodeEnvelope({
          kind: "Request",
          idHigh: 0xdeadbeef,
          idLow: 42,
          replyTo: plain.privateGroup,
          body: new TextEncoder().encode("shout"),
        })
        if (payload === undefined) return yield* Effect.dieMessage("encode failed")
        yield* plain.multicast({ groups: "upper", data: payload })
        const m = yield* plain.receive
        expect(m._tag).toBe("Regular")
        if (m._tag !== "Regular") return
        const env = decodeEnvelope(m.data)
        expect(env?.kind).toBe("Reply")
        expect(env?.correlationId).toBe("deadbeef0000002a")
        expect(env === undefined ? "" : decoder.decode(env.body)).toBe("SHOUT")
      }),
    TIMEOUT,
  )

  it.scopedLive(
    "request fails with RequestTimeout when nobody answers, and a late reply is dropped",
    () =>
      Effect.gen(function* () {
        const { clients: [server, client] } = yield* daemonAndClients("server", "client")
        const nobody = yield* Effect.flip(client.request({ group: "void", data: "anyone?", timeout: "150 millis" }))
        expect(nobody._tag).toBe("RequestTimeout")
        if (nobody._tag === "RequestTimeout") expect(nobody.group).toBe("void")
        yield* serve(server, "slow", (q) => Effect.as(sleep(300), q))
        const late = yield* Effect.flip(client.request({ group: "slow", data: "hurry", timeout: "100 millis" }))
        expect(late._tag).toBe("RequestTimeout")
        yield* sleep(400)
        const stats = yield* client.stats
        expect(stats.lateReplies).toBe(1)
        expect(stats.inbound).toBe(0)
        expect(stats.pendingRequests).toBe(0)
      }),
    TIMEOUT,
  )

  it.scopedLive(
    "a failing handler is answered with an error reply: request fails with ResponderError",
    () =>
      Effect.gen(function* () {
        const { clients: [server, client] } = yield* daemonAndClients("server", "client")
        yield* serve(server, "picky", (q) =>
          q === "ok" ? Effect.succeed("fine") : Effect.fail(new Refused({ message: `no ${q}` })))
        const e = yield* Effect.flip(client.request({ group: "picky", data: "thanks", timeout: "2 seconds" }))
        expect(e._tag).toBe("ResponderError")
        if (e._tag === "ResponderError") {
          expect(e.reason).toBe("no thanks")
          expect(e.responder).toBe("#server#localhost")
        }
        // The responder carries on.
        expect(decoder.decode((yield* client.request({ group: "picky", data: "ok" })).data)).toBe("fine")
      }),
    TIMEOUT,
  )

  it.scopedLive(
    "requestMany gathers one reply per member of its view, or what came by the deadline",
    () =>
      Effect.gen(function* () {
        const { daemon: d, clients: [client] } = yield* daemonAndClients("client")
        for (const name of ["w1", "w2", "w3"]) {
          const w = yield* connect({ daemon: d.spreadName, name })
          yield* serve(w, "workers", () => Effect.succeed(name))
        }
        const all = yield* client.requestMany({ group: "workers", data: "status", count: 3, timeout: "2 seconds" })
        expect(all.map((r) => r._tag === "Reply" ? decoder.decode(r.data) : r.reason).sort()).toEqual([
          "w1",
          "w2",
          "w3",
        ])
        // Without a count: as many as came before the deadline (not a member, so no view).
        const start = Date.now()
        const some = yield* client.requestMany({ group: "workers", data: "status", timeout: "300 millis" })
        expect(some.length).toBe(3)
        expect(Date.now() - start).toBeGreaterThanOrEqual(250)
        // A member counts the others in its view and returns as soon as they replied.
        const member = yield* connect({ daemon: d.spreadName, name: "member" })
        yield* member.join("workers")
        yield* awaitMembers(member, "workers", 4)
        const t0 = Date.now()
        const fromView = yield* member.requestMany({ group: "workers", data: "status", timeout: "5 seconds" })
        expect(fromView.length).toBe(3)
        expect(Date.now() - t0).toBeLessThan(2000)
      }),
    TIMEOUT,
  )

  it.scopedLive(
    "a waiting request fails with the sticky error when the connection closes",
    () =>
      Effect.gen(function* () {
        const { clients: [client] } = yield* daemonAndClients("client")
        const waiting = yield* Effect.fork(client.request({ group: "void", data: "x", timeout: "10 seconds" }))
        yield* sleep(50)
        yield* client.close
        const exit = yield* Fiber.await(waiting).pipe(Effect.timeout(2000))
        expect(Exit.isFailure(exit)).toBe(true)
        if (Exit.isFailure(exit)) expect(JSON.stringify(exit.cause)).toContain("ConnectionError")
        const after = yield* Effect.flip(client.request({ group: "void", data: "x" }))
        // The very same sticky error, not a copy or a wrapper.
        expect(after).toBe(yield* client.awaitClosed)
      }).pipe(quiet),
    TIMEOUT,
  )

  it.scopedLive(
    "ordinary messages flow as before: to a responder's group they are ignored, to a requester they reach messages",
    () =>
      Effect.gen(function* () {
        const { clients: [server, client] } = yield* daemonAndClients("server", "client")
        yield* serve(server, "svc", (q) => Effect.succeed(q))
        yield* client.multicast({ groups: "svc", data: "not a request" })
        // A payload that starts like an envelope but is not one.
        const fake = Uint8Array.of(0xff, 0x53, 0x46, 0x58, 1, 2, ...new Array(30).fill(7))
        yield* client.request({ group: "svc", data: "warm up" })
        yield* server.multicast({ groups: client.privateGroup, data: fake })
        const m = yield* client.receive
        expect(m._tag === "Regular" ? [...m.data] : []).toEqual([...fake])
        expect(decoder.decode((yield* client.request({ group: "svc", data: "still there" })).data)).toBe("still there")
      }),
    TIMEOUT,
  )
})
