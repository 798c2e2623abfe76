/**
 * `subscribe(group)`: a stream of one group's messages and membership
 * changes, broadcast to every subscriber of the group, with the group joined
 * while at least one subscriber runs (reference counted).
 *
 * Each subscriber has its own bounded buffer (an `Inbound`, like the shared
 * one) with the same overflow policy: backpressure. When a subscriber's
 * buffer is full the reader waits for it, so one stalled subscriber stops
 * the connection reading, for every consumer; `events` carries a
 * `SlowConsumer` event naming the group well before that. A subscriber that
 * ends (its stream is interrupted or done) is removed at once and a reader
 * waiting on it is released.
 *
 * @module
 */
import { Effect, type Scope, Stream } from "effect"
import type { ServerMessage } from "../../protocol/server_messages.ts"
import { validateGroupName } from "../../protocol/names.ts"
import { type ConnectionError, type RequestError, requestErrorOf } from "../core/errors.ts"
import type { Events } from "../core/events.ts"
import { Inbound } from "../core/inbound.ts"
import type { Router, Subscriber } from "./router.ts"

/**
 * Options of `join`.
 *
 * @since 0.3.0
 * @category models
 */
export interface JoinOptions {
  /**
   * Succeed once the daemon's membership message shows this connection in
   * the group, not as soon as the join is queued (false by default).
   */
  readonly confirmed?: boolean
}

/**
 * Options of `subscribe`.
 *
 * @since 0.2.0
 * @category models
 */
export interface SubscribeOptions {
  /**
   * Messages this subscriber's buffer holds (the connection's
   * `inboundCapacity` by default, at least 4). When full, the connection
   * stops reading its socket until this subscriber takes some.
   */
  readonly bufferSize?: number
}

/**
 * A group's messages, as `subscribe` returns them: it fails with a
 * `RequestError` for an invalid group name and with the connection's
 * sticky error when the connection ends.
 *
 * @since 0.3.0
 * @category models
 */
export type Subscription = Stream.Stream<ServerMessage, ConnectionError | RequestError>

/**
 * What a subscription needs of its connection.
 *
 * @since 0.2.0
 * @category models
 */
export interface SubscribeContext {
  readonly router: Router
  readonly events: Events
  readonly capacity: number
  readonly slowRatio: number
  readonly failSticky: Effect.Effect<never, ConnectionError>
  /** Ends a finished subscriber's buffer (nobody reads that error). */
  readonly closing: ConnectionError
  readonly join: (group: string, options?: JoinOptions) => Effect.Effect<void, ConnectionError | RequestError>
  /** Waits until this connection is a confirmed member of `group` (joined by another subscriber). */
  readonly awaitJoined: (group: string) => Effect.Effect<void, ConnectionError | RequestError>
  readonly leave: (group: string) => Effect.Effect<void, ConnectionError | RequestError>
  /**
   * Forgets that `group` is joined (its leave could not be sent — during a
   * reconnect gap with `whileReconnecting: "fail"` — so it must not be
   * joined again when the session comes back).
   */
  readonly unjoin: (group: string) => void
}

/**
 * The subscription stream of `group` (see the module notes).
 *
 * @since 0.2.0
 * @category constructors
 */
export const subscribe = (
  ctx: SubscribeContext,
  group: string,
  options: SubscribeOptions = {},
): Subscription => Stream.unwrapScoped(subscription(ctx, group, options, false))

/**
 * A subscription of `group` started in the current scope: its stream, once
 * the group is joined — queued, or, with `confirmed`, confirmed by the
 * daemon's membership message (`subscribeJoined`).
 *
 * @since 0.3.0
 * @category constructors
 */
export const subscription = (
  ctx: SubscribeContext,
  group: string,
  options: SubscribeOptions,
  confirmed: boolean,
): Effect.Effect<Subscription, ConnectionError | RequestError, Scope.Scope> =>
  Effect.gen(function* () {
    const invalid = validateGroupName(group)
    if (invalid !== undefined) return yield* Effect.fail(requestErrorOf("subscribe", invalid))
    const ended = ctx.router.ended
    if (ended !== undefined) return yield* Effect.fail(ended)
    const capacity = Math.max(4, Math.floor(options.bufferSize ?? ctx.capacity))
    const inbound = yield* Inbound.make(
      capacity,
      Math.max(1, Math.floor(capacity * ctx.slowRatio)),
      Math.floor(capacity / 4),
      ctx.events,
      ctx.failSticky,
      group,
    )
    const sub: Subscriber = { group, inbound, pending: [] }
    const first = yield* Effect.acquireRelease(
      Effect.sync(() => ctx.router.add(sub)),
      () =>
        Effect.suspend(() => {
          const last = ctx.router.remove(sub)
          return Effect.zipRight(
            inbound.end(ctx.router.ended ?? ctx.closing),
            last && ctx.router.ended === undefined
              ? Effect.catchAll(ctx.leave(group), () =>
                Effect.sync(() => {
                  // No leave went out, so no self-leave will come.
                  ctx.router.leaveFailed(group)
                  ctx.unjoin(group)
                }))
              : Effect.void,
          )
        }),
    )
    if (first) yield* ctx.join(group, { confirmed })
    // Not the first: the first subscriber's join may still be unanswered.
    else if (confirmed) yield* ctx.awaitJoined(group)
    return inbound.stream
  })
