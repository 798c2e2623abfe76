/**
 * The public model of a connection: its operations and its gauges.
 *
 * @module
 */
import type { Chunk, Effect, Option, Scope, Stream } from "effect"
import type { Version } from "../protocol/handshake.ts"
import type { ServerMessage } from "../protocol/server_messages.ts"
import type { ConnectionError, RequestError } from "./core/errors.ts"
import type { ConnectionEvent } from "./core/events.ts"
import type { OutgoingMessage } from "./admission/frames.ts"
import type { FailedReply, Reply, RequestManyOptions, RequestOptions, RespondOptions } from "./features/request.ts"
import type { RequestTimeout, ResponderError } from "./features/request_errors.ts"
import type { JoinOptions, SubscribeOptions, Subscription } from "./features/subscribe.ts"
import type { ConnectionState } from "./core/state.ts"
import type { GroupView } from "./core/views.ts"
import type { ConnectionStats } from "./session/stats.ts"

export type { ConnectionStats } from "./session/stats.ts"

/**
 * An open session with a Spread daemon. Every operation may be called from
 * any number of fibers at once. Once the connection failed or was closed,
 * every operation fails with the same sticky {@link ConnectionError}. With
 * the `reconnect` option a lost session is replaced under the same
 * connection; {@link messages} and {@link subscribe} streams then carry a
 * `Discontinuity` (see `isDiscontinuity`) where the sessions meet.
 *
 * @since 0.1.0
 * @category models
 */
export interface Connection {
  /**
   * The session's private group, `#name#daemon` (the current session's:
   * after a reconnect under a fresh name it changes).
   */
  readonly privateGroup: string
  /** The private name (as requested, or as the daemon generated it). */
  readonly privateName: string
  /** The daemon's name. */
  readonly daemonName: string
  /** The daemon's protocol version. */
  readonly daemonVersion: Version
  /** The daemon's address (the current session's, when `daemon` is a list). */
  readonly address: string
  /**
   * Joins `group`. Succeeds once the request is queued (as `SP_join`
   * returns once sent); the membership message follows on {@link messages}
   * and in {@link watch}. With `{ confirmed: true }` it succeeds once that
   * membership message came — the daemon has made this connection a member,
   * and every Agreed or Safe message sent to `group` from then on reaches it
   * (no sleep needed before telling others it is there); it fails with a
   * `RequestError` `JoinRefused` when the daemon refuses the join, and
   * `NoMembership` on a connection opened with `membership: false`.
   */
  readonly join: (group: string, options?: JoinOptions) => Effect.Effect<void, ConnectionError | RequestError>
  /** Leaves `group`. Succeeds once the request is queued. */
  readonly leave: (group: string) => Effect.Effect<void, ConnectionError | RequestError>
  /**
   * Multicasts one message. Waits while the flow window or the outbox is
   * full; succeeds once the frame is queued. A payload too large for one
   * Spread message (up to `maxMessageBytes`) is sent in fragments and
   * delivered whole by receiving spreadfx clients (see fragments.ts); if
   * the send is interrupted partway, receivers are told to drop the part
   * they hold (best effort; their bounds free it otherwise).
   */
  readonly multicast: (message: OutgoingMessage) => Effect.Effect<void, ConnectionError | RequestError>
  /**
   * Multicasts messages in order. All are checked first: if one is
   * invalid, none is sent. Each goes out at once while the window and the
   * buffer have room, and waits where they are full. Interrupted partway,
   * the messages already queued are sent (a large message cut short is
   * aborted at its receivers: nothing partial is ever delivered).
   */
  readonly multicastMany: (
    messages: Iterable<OutgoingMessage>,
  ) => Effect.Effect<void, ConnectionError | RequestError>
  /**
   * The next message. Concurrent receivers share the messages (each is
   * delivered to one receiver): {@link receive}, {@link receiveChunk} and
   * {@link messages} are one **work queue**, not a broadcast — two fibers
   * reading it and filtering by group split the messages between them; use
   * {@link subscribe} for one group's messages. Messages of subscribed
   * groups and replies to requests do not come here. Once the connection
   * failed or was closed, buffered messages are discarded and this fails
   * with the sticky error.
   */
  readonly receive: Effect.Effect<ServerMessage, ConnectionError>
  /** Between 1 and `max` messages (4096 by default), as soon as one is available. */
  readonly receiveChunk: (max?: number) => Effect.Effect<Chunk.Chunk<ServerMessage>, ConnectionError>
  /**
   * The messages as a stream, in chunks of what is buffered. It fails with
   * the sticky error when the connection ends. Concurrent streams share the
   * messages, like concurrent {@link receive} calls: this is a **work
   * queue** (each message reaches one of them), not a broadcast. It carries
   * what no subscription claims: messages of groups joined with
   * {@link join}, messages to this connection's private group (other than
   * replies), rejects. Its buffer applies backpressure: when nobody takes
   * from it and it fills, the connection stops reading the socket — for
   * subscribers too. After a reconnect it carries one `Discontinuity` before
   * the new session's messages.
   */
  readonly messages: Stream.Stream<ServerMessage, ConnectionError>
  /**
   * One group's messages and membership changes, as a stream. The group is
   * joined when the first subscriber's stream starts and left when the last
   * one ends (reference counted). Every subscriber gets every message of its
   * group from the moment it subscribed (a broadcast), through its own
   * bounded buffer whose policy is backpressure: a subscriber that stops
   * taking stops the connection reading (a `SlowConsumer` event naming the
   * group comes first). While a group has a subscriber, its messages go to
   * its subscribers only, not to {@link messages}; a message naming several
   * subscribed groups reaches the subscribers of each. Fails with a
   * `RequestError` for an invalid group name and with the sticky error when
   * the connection ends. Do not also `join`/`leave` a subscribed group.
   */
  readonly subscribe: (group: string, options?: SubscribeOptions) => Subscription
  /**
   * {@link subscribe}, started now: joins `group` (when it has no
   * subscriber yet) and returns once the daemon confirmed this connection
   * in it (as `join` with `{ confirmed: true }`), with the stream of the
   * group's messages from then on, buffered from the moment of the call.
   * The subscription lasts as long as the scope; run the stream within it.
   *
   * @since 0.3.0
   */
  readonly subscribeJoined: (
    group: string,
    options?: SubscribeOptions,
  ) => Effect.Effect<Subscription, ConnectionError | RequestError, Scope.Scope>
  /**
   * Multicasts a request envelope with `data` to `group` (e.g.
   * `request({ group: "svc", data: "ping", timeout: "2 seconds" })`; a
   * fresh correlation id, this
   * connection's private group as reply-to) and completes with the first
   * reply; `RequestTimeout` when none came within `timeout` (5 s by
   * default), `ResponderError` when it was an error reply, the sticky error
   * if the connection ends first.
   */
  readonly request: (
    request: RequestOptions,
  ) => Effect.Effect<Reply, ConnectionError | RequestError | RequestTimeout | ResponderError>
  /**
   * Multicasts a request envelope to `group` and collects the replies until
   * `count` came (by default, the other members of this connection's view
   * of `group`) or `timeout` passed; answers those that came, in order.
   */
  readonly requestMany: (
    request: RequestManyOptions,
  ) => Effect.Effect<ReadonlyArray<Reply | FailedReply>, ConnectionError | RequestError>
  /**
   * Subscribes to `group` and answers every request envelope that arrives
   * there with `handler`'s value (`respond({ group: "svc", handler: (req)
   * => Effect.succeed(req.data) })`) (a failure becomes an error reply); runs
   * until interrupted, or fails with the sticky error.
   */
  readonly respond: <E, R>(
    responder: RespondOptions<E, R>,
  ) => Effect.Effect<never, ConnectionError | RequestError, R>
  /**
   * {@link respond}, started in the current scope: returns once the daemon
   * confirmed this connection in `group` (so the first request sent after
   * it is answered, no sleep needed), with the handler running in a fiber
   * of the scope until the scope closes or the connection ends.
   *
   * @since 0.3.0
   */
  readonly respondJoined: <E, R>(
    responder: RespondOptions<E, R>,
  ) => Effect.Effect<void, ConnectionError | RequestError, R | Scope.Scope>
  /** The current view of `group`, if this connection is a member. */
  readonly view: (group: string) => Effect.Effect<Option.Option<GroupView>>
  /** The current views of every group this connection is a member of. */
  readonly views: Effect.Effect<ReadonlyMap<string, GroupView>>
  /**
   * The view of `group` now, then each time it changes; fails with the
   * sticky error when the connection ends.
   */
  readonly watch: (group: string) => Stream.Stream<Option.Option<GroupView>, ConnectionError>
  /**
   * Health events from the moment of subscription (sliding buffer of 64 per
   * subscriber), ending with one `Terminated` event when the connection
   * ends (at once for a subscriber that comes after the end). With
   * `reconnect`: `Disconnected` when a session is lost, `Reconnected` when
   * a new one took its place.
   */
  readonly events: Stream.Stream<ConnectionEvent>
  /** Gauges: flow window, inbound and outbound buffers, counters. */
  readonly stats: Effect.Effect<ConnectionStats>
  /** The state now. */
  readonly state: Effect.Effect<ConnectionState>
  /** Waits until the connection fails or is closed; answers the sticky error. */
  readonly awaitClosed: Effect.Effect<ConnectionError>
  /**
   * Closes the connection: wakes every blocked call with the `Closed` error,
   * lets frames already queued and then the disconnect (KILL) be written and
   * the daemon close its side (all bounded by `closeTimeout`), then stops the
   * fibers and closes the socket. Safe from any fiber, any number of times,
   * concurrently; every call returns once the connection is closed. The
   * scope does the same when it closes.
   */
  readonly close: Effect.Effect<void>
}
