import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber, Stream } from "effect"
import {
  ChannelError,
  decodeEnvelope,
  encodeEnvelope,
  isRegular,
  openChannel,
  openRequestChannel,
  ResponderError,
} from "../../mod.ts"
import { daemonAndClients } from "../_helpers/clients.ts"
import {
  awaitMembers,
  Chat,
  OutOfStock,
  PlaceOrder,
  placeOrder,
  Presence,
  Stock,
  Unknown,
} from "./channels_fixtures.ts"

const at = new Date("2026-12-07T15:00:00.000Z")

/** The typed failure of `self` (not a defect). */
const failureOf = <A, E>(self: Effect.Effect<A, E>) =>
  Effect.map(Effect.exit(self), (exit) => {
    if (Exit.isSuccess(exit)) throw new Error("expected a failure")
    const e = Cause.failureOption(exit.cause)
    if (e._tag === "None") throw new Error(`expected a typed failure, got ${Cause.pretty(exit.cause)}`)
    return e.value
  })

describe("openChannel", () => {
  it.scopedLive(
    "publish reaches a subscriber in another connection as the typed value; channels sharing a group stay apart",
    () =>
      Effect.gen(function* () {
        const { clients: [alice, bob] } = yield* daemonAndClients("alice", "bob")
        const chat = openChannel(bob, Chat)
        const presence = openChannel(bob, Presence)
        const lines = yield* Effect.fork(chat.subscribe().pipe(Stream.take(2), Stream.runCollect))
        const here = yield* Effect.fork(presence.subscribe().pipe(Stream.take(1), Stream.runCollect))
        yield* awaitMembers(bob, "room", 1)
        // A plain message of the group is passed over by both.
        yield* alice.multicast({ groups: "room", data: "plain text" })
        yield* openChannel(alice, Presence).publish({ who: "alice", here: true })
        yield* openChannel(alice, Chat).publish({ from: "alice", text: "hello", at })
        yield* openChannel(alice, Chat).publish({ from: "alice", text: "again", at })
        const got = [...(yield* Fiber.join(lines))]
        expect(got).toEqual([{ from: "alice", text: "hello", at }, { from: "alice", text: "again", at }])
        expect(got[0].at).toBeInstanceOf(Date)
        expect([...(yield* Fiber.join(here))]).toEqual([{ who: "alice", here: true }])
      }),
    15_000,
  )

  it.scopedLive(
    "a plain subscriber sees a channel message as a well-formed envelope of kind Message with the channel tag",
    () =>
      Effect.gen(function* () {
        const { clients: [alice, bob] } = yield* daemonAndClients("alice", "bob")
        const raw = yield* Effect.fork(
          bob.subscribe("room").pipe(Stream.filter(isRegular), Stream.take(1), Stream.runCollect),
        )
        yield* awaitMembers(bob, "room", 1)
        yield* openChannel(alice, Chat).publish({ from: "alice", text: "hi", at })
        const [m] = yield* Fiber.join(raw)
        const env = decodeEnvelope(m.data)
        expect(env?.kind).toBe("Message")
        expect(env?.headers).toEqual({ channel: "chat.line" })
        expect(new TextDecoder().decode(env?.body)).toBe('{"from":"alice","text":"hi","at":"2026-12-07T15:00:00.000Z"}')
      }),
    15_000,
  )

  it.scopedLive(
    "onDecodeError: 'fail' fails the stream with a Decode ChannelError after the values before it; 'skip' drops and counts",
    () =>
      Effect.gen(function* () {
        const { clients: [alice, bob, carol] } = yield* daemonAndClients("alice", "bob", "carol")
        const failing = openChannel(bob, Chat)
        const skipping = openChannel(carol, Chat)
        const strict = yield* Effect.fork(Stream.runCollect(failing.subscribe()))
        const lenient = yield* Effect.fork(
          skipping.subscribe({ onDecodeError: "skip" }).pipe(Stream.take(2), Stream.runCollect),
        )
        yield* awaitMembers(carol, "room", 2)
        const chat = openChannel(alice, Chat)
        yield* chat.publish({ from: "alice", text: "one", at })
        const bad = encodeEnvelope({
          kind: "Message",
          idHigh: 0,
          idLow: 0,
          replyTo: "",
          headers: { channel: "chat.line" },
          body: new TextEncoder().encode('{"from":"alice","text":7}'),
        })
        if (bad === undefined) throw new Error("cannot encode")
        yield* alice.multicast({ groups: "room", data: bad })
        yield* chat.publish({ from: "alice", text: "two", at })
        const e = yield* failureOf(Fiber.join(strict))
        expect(e).toBeInstanceOf(ChannelError)
        if (!(e instanceof ChannelError)) throw e
        expect(e.reason).toBe("Decode")
        expect(e.sender).toBe(alice.privateGroup)
        expect(e.message).toContain(`Cannot decode a message from "${alice.privateGroup}" on channel "chat.line"`)
        const kept = [...(yield* Fiber.join(lenient))].map((l) => l.text)
        expect(kept).toEqual(["one", "two"])
        expect(yield* skipping.decodeFailures).toBe(1)
        expect(yield* failing.decodeFailures).toBe(0)
      }),
    15_000,
  )

  it.effect("publish of a value the schema refuses fails with an Encode ChannelError and sends nothing", () =>
    Effect.gen(function* () {
      const { clients: [alice] } = yield* daemonAndClients("alice")
      const e = yield* failureOf(
        openChannel(alice, Chat).publish({ from: "alice", text: "x", at: new Date(Number.NaN) }),
      )
      expect(e).toBeInstanceOf(ChannelError)
      expect((e as ChannelError).reason).toBe("Encode")
      expect((yield* alice.stats).sent).toBe(0)
    }).pipe(Effect.scoped))
})

describe("openRequestChannel", () => {
  it.scopedLive(
    "request answers the success value, or fails with the declared tagged error the handler failed with",
    () =>
      Effect.gen(function* () {
        const { clients: [client, server] } = yield* daemonAndClients("client", "server")
        yield* Effect.forkScoped(openRequestChannel(server, PlaceOrder).serve(placeOrder))
        yield* awaitMembers(server, "orders", 1)
        const orders = openRequestChannel(client, PlaceOrder)
        expect(yield* orders.request({ item: "tea", qty: 2 })).toEqual({ orderId: 42, total: 6 })
        const out = yield* failureOf(orders.request({ item: "tea", qty: 9 }))
        expect(out).toBeInstanceOf(OutOfStock)
        expect(out).toEqual(new OutOfStock({ item: "tea", left: 5 }))
        const unknown = yield* failureOf(orders.request({ item: "mate", qty: 1 }))
        expect(unknown).toBeInstanceOf(Unknown)
        // Typed on the caller's side too: catchTag narrows to the declared errors.
        const handled = yield* orders.request({ item: "coffee", qty: 1 }).pipe(
          Effect.catchTag("OutOfStock", (e) => Effect.succeed(`out of ${e.item}, ${e.left} left`)),
        )
        expect(handled).toBe("out of coffee, 0 left")
      }),
    15_000,
  )

  it.scopedLive(
    "two request channels on one group: each server answers only requests tagged with its channel",
    () =>
      Effect.gen(function* () {
        const { clients: [client, server] } = yield* daemonAndClients("client", "server")
        yield* Effect.forkScoped(openRequestChannel(server, PlaceOrder).serve(placeOrder))
        yield* Effect.forkScoped(openRequestChannel(server, Stock).serve((item) => Effect.succeed(item.length)))
        yield* awaitMembers(server, "orders", 1)
        expect(yield* openRequestChannel(client, Stock).request("coffee")).toBe(6)
        expect(yield* openRequestChannel(client, PlaceOrder).request({ item: "tea", qty: 1 })).toEqual({
          orderId: 42,
          total: 3,
        })
        // An untagged plain request reaches neither: it times out.
        const plain = yield* failureOf(client.request({ group: "orders", data: "hi", timeout: "200 millis" }))
        expect((plain as { _tag: string })._tag).toBe("RequestTimeout")
      }),
    15_000,
  )

  it.scopedLive(
    "a plain requester gets the declared error as a ResponderError whose reason is the error's JSON",
    () =>
      Effect.gen(function* () {
        const { clients: [client, server] } = yield* daemonAndClients("client", "server")
        yield* Effect.forkScoped(openRequestChannel(server, PlaceOrder).serve(placeOrder))
        yield* awaitMembers(server, "orders", 1)
        const ok = yield* client.request({
          group: "orders",
          data: '{"item":"tea","qty":1}',
          headers: { channel: "orders.place" },
        })
        expect(new TextDecoder().decode(ok.data)).toBe('{"orderId":42,"total":3}')
        const e = yield* failureOf(
          client.request({ group: "orders", data: '{"item":"coffee","qty":1}', headers: { channel: "orders.place" } }),
        )
        expect(e).toBeInstanceOf(ResponderError)
        expect(JSON.parse((e as ResponderError).reason)).toEqual({ _tag: "OutOfStock", item: "coffee", left: 0 })
        // A request that does not decode gets a plain-text error reply.
        const garbled = yield* failureOf(
          client.request({ group: "orders", data: '{"item":"tea"}', headers: { channel: "orders.place" } }),
        )
        expect((garbled as ResponderError).reason).toContain('Cannot decode a message from "')
      }),
    15_000,
  )

  it.scopedLive(
    "a plain respond answering a channel request with text the schema refuses fails the request as Decode",
    () =>
      Effect.gen(function* () {
        const { clients: [client, server] } = yield* daemonAndClients("client", "server")
        yield* Effect.forkScoped(server.respond({ group: "orders", handler: () => Effect.succeed("not json") }))
        yield* awaitMembers(server, "orders", 1)
        const e = yield* failureOf(openRequestChannel(client, Stock).request("tea"))
        expect(e).toBeInstanceOf(ChannelError)
        expect((e as ChannelError).reason).toBe("Decode")
      }),
    15_000,
  )
})
