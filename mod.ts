/**
 * spreadfx: a Spread Toolkit 4/5 client for Effect, on Deno.
 *
 * A connection is a scoped resource: {@link connect} performs the
 * handshake, and closing its scope sends the disconnect and releases the
 * socket in bounded time. Any number of fibers may {@link Connection.join},
 * {@link Connection.leave}, {@link Connection.multicast} and receive on one
 * connection at once. Outbound frames are queued whole and written in
 * coalesced batches by one writer fiber; a flow window keeps a sender from
 * outrunning its own copies (a daemon cuts off a session 1000 messages
 * behind); inbound messages wait in a bounded buffer whose overflow policy
 * is backpressure, with a `SlowConsumer` event well before it is full. The
 * first failure is sticky: every later and every blocked call fails with the
 * same {@link ConnectionError}.
 *
 * `messages` / `receive` are one work queue (each message reaches one
 * consumer); `subscribe(group)` broadcasts one group's messages to every
 * subscriber, joining and leaving by reference count. `request`,
 * `requestMany` and `respond` do request/reply over private groups with a
 * documented envelope; `json(schema)` types payloads; `layerConfig` reads
 * settings from Effect `Config`; connections publish Effect metrics and
 * spans.
 *
 * The embedded daemon is in `@spreadfx/spreadfx/daemon`, the codec in
 * `@spreadfx/spreadfx/protocol`, and a test layer (an embedded daemon and a
 * connected `Spread`) in `@spreadfx/spreadfx/testing`; this module pulls in
 * none of them.
 *
 * @example
 * ```ts
 * import { Effect, Stream } from "effect"
 * import { connect, isRegular, text } from "@spreadfx/spreadfx"
 *
 * const program = Effect.scoped(Effect.gen(function* () {
 *   const spread = yield* connect({ daemon: "4803@localhost", name: "alice" })
 *   yield* spread.join("chat")
 *   yield* spread.multicast({ groups: "chat", data: "hello, group", service: "Agreed" })
 *   yield* spread.messages.pipe(
 *     Stream.filter(isRegular),
 *     Stream.take(1),
 *     Stream.runForEach((m) => Effect.log(`${m.sender} says ${text(m)}`)),
 *   )
 * }))
 *
 * Effect.runPromise(program)
 * ```
 *
 * @example
 * ```ts
 * // As a service: the layer connects, and disconnects when released.
 * import { Effect } from "effect"
 * import { layer, Spread } from "@spreadfx/spreadfx"
 *
 * const announce = Effect.gen(function* () {
 *   const spread = yield* Spread
 *   yield* spread.multicast({ groups: ["ops", "audit"], data: "deploy started", messType: 7 })
 * })
 *
 * Effect.runPromise(announce.pipe(Effect.provide(layer({ daemon: { host: "spread.internal", port: 4803 } }))))
 * ```
 *
 * @module
 */
export * from "./src/client/mod.ts"
export type { RejectCodeName, ServiceLevel } from "./src/protocol/constants.ts"
export type { Version } from "./src/protocol/handshake.ts"
export {
  equalGroupIds,
  type GroupId,
  type MembershipCause,
  type MembershipMessage,
  type RegularMessage,
  type RejectMessage,
  type SelfLeaveMessage,
  type ServerMessage,
  type TransitionalMessage,
} from "./src/protocol/server_messages.ts"
