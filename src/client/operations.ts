/**
 * The public face of a connection: the {@link Connection} object, each of
 * whose operations is a call into the room that does the work — join and
 * leave through the sender (each in its span), multicast through the
 * large-message room, receive from the inbound buffer, subscribe and
 * request through the router, views, events, state, stats and close.
 *
 * Nothing here starts or owns anything: connection.ts makes the parts and
 * starts the fibers, then hands them here through {@link OperationsCore}.
 *
 * @module
 */
import { Deferred, Effect, Option, SubscriptionRef } from "effect"
import { type ConnectionError, RequestError } from "./core/errors.ts"
import type { Events } from "./core/events.ts"
import { MAX_TAKE } from "./core/inbound.ts"
import { largeAware } from "./features/large.ts"
import type { Connection } from "./model.ts"
import type { JoinOptions } from "./features/subscribe.ts"
import type { ResolvedOptions } from "./options.ts"
import { request, type RequestContext, requestMany, respond, respondJoined } from "./features/request.ts"
import type { Sender } from "./admission/send.ts"
import type { SessionLife } from "./session/session.ts"
import { statsOf, type StatsSources } from "./session/stats.ts"
import { subscribe, type SubscribeContext, subscription } from "./features/subscribe.ts"
import { viewOf, type ViewsRef, watchView } from "./core/views.ts"

/**
 * The parts of a connection its operations call into; the current session
 * is in `life`.
 *
 * @since 0.2.0
 * @category models
 */
export interface OperationsCore extends StatsSources {
  readonly opts: ResolvedOptions
  readonly life: SessionLife
  readonly events: Events
  readonly views: ViewsRef
  readonly sender: Sender
  /** Completed with the sticky error when the connection fails or is closed. */
  readonly terminated: Deferred.Deferred<ConnectionError>
  /** Fails with the sticky error. */
  readonly failSticky: Effect.Effect<never, ConnectionError>
  /** The error of a connection that is closing (its state still `Open`). */
  readonly closing: ConnectionError
  /** The prefix of this connection's fragment ids (large.ts). */
  readonly nonce: number
}

/**
 * The connection's operations over `core`, with `close` from close.ts.
 *
 * @since 0.2.0
 * @category constructors
 */
export const connectionOf = (core: OperationsCore, close: Effect.Effect<void>): Connection => {
  const { events, inbound, opts, reassembly, router, sender, terminated, views } = core
  // `useSpan`, not `withSpan`: the span is not made the current one, so
  // the sticky error fails these calls as the very same object (a failure
  // inside a current span is wrapped to carry it).
  // Whether this connection is a member of `group` in its current views.
  const isMember = (group: string) =>
    core.views.pipe(
      SubscriptionRef.get,
      Effect.map((vs) => vs.get(group)?.members.includes(core.life.session.privateGroup) === true),
    )
  const noMembership = (group: string) =>
    Effect.fail(
      new RequestError({
        reason: "NoMembership",
        operation: "join",
        detail: `Cannot confirm the join of group "${group}": the connection was opened with membership: false`,
      }),
    )
  // Waits for the answer to a join registered in `d`, cancelling the wait however it ends.
  const answered = (group: string, d: Deferred.Deferred<void, ConnectionError | RequestError>) =>
    Effect.ensuring(Deferred.await(d), Effect.sync(() => router.cancelJoin(group, d)))
  const join = (group: string, options?: JoinOptions) =>
    Effect.useSpan("spread.join", { attributes: { "spread.group": group } }, () => {
      if (options?.confirmed !== true) return sender.command("Join", group)
      if (!opts.membership) return noMembership(group)
      // Registered before the join is queued, so its answer cannot be missed.
      return Effect.suspend(() => {
        const d = router.awaitJoin(group)
        return Effect.zipRight(
          Effect.onError(sender.command("Join", group), () => Effect.sync(() => router.cancelJoin(group, d))),
          answered(group, d),
        )
      })
    })
  // Confirmed membership of a group another subscriber joined.
  const awaitJoined = (group: string): Effect.Effect<void, ConnectionError | RequestError> =>
    opts.membership
      ? Effect.suspend(() => {
        const d = router.awaitJoin(group)
        return Effect.flatMap(
          isMember(group),
          (member) => member ? Effect.sync(() => router.cancelJoin(group, d)) : answered(group, d),
        )
      })
      : noMembership(group)
  const leave = (group: string) =>
    Effect.useSpan("spread.leave", { attributes: { "spread.group": group } }, () => sender.command("Leave", group))
  // Payloads too large for one Spread message go in fragments (large.ts).
  const { multicast, multicastMany } = largeAware(
    sender,
    opts.maxMessageBytes,
    core.nonce,
    opts.fragmentBytes,
    (idHigh, idLow) => reassembly.forget(idHigh, idLow),
  )
  const subscribeContext: SubscribeContext = {
    router,
    events,
    capacity: opts.inboundCapacity,
    slowRatio: opts.slowHigh / opts.inboundCapacity,
    failSticky: core.failSticky,
    closing: core.closing,
    join,
    awaitJoined,
    leave,
    unjoin: (group) => sender.joined.delete(group),
  }
  const subscribeTo: Connection["subscribe"] = (group, options) => subscribe(subscribeContext, group, options)
  const subscribeJoined: Connection["subscribeJoined"] = (group, options) =>
    subscription(subscribeContext, group, options ?? {}, true)
  const requestContext: RequestContext = {
    router,
    get privateGroup() {
      return sender.privateGroup
    },
    multicast,
    subscribe: subscribeTo,
    subscribeJoined,
    othersIn: (group) =>
      Effect.map(viewOf(views, group), Option.map((v) => v.members.filter((x) => x !== sender.privateGroup).length)),
  }

  return {
    get privateGroup() {
      return core.life.session.privateGroup
    },
    get privateName() {
      return core.life.session.privateName
    },
    get daemonName() {
      return core.life.session.daemonName
    },
    get daemonVersion() {
      return core.life.session.version
    },
    get address() {
      return core.life.session.label
    },
    join,
    leave,
    multicast,
    multicastMany,
    receive: inbound.take,
    receiveChunk: (max = MAX_TAKE) => inbound.takeChunk(Math.max(1, Math.floor(max))),
    messages: inbound.stream,
    view: (group) => viewOf(views, group),
    views: SubscriptionRef.get(views),
    // Ends with the sticky error when the connection ends.
    watch: (group) => watchView(views, group, Effect.flatMap(Deferred.await(terminated), Effect.fail)),
    subscribe: subscribeTo,
    subscribeJoined,
    request: (options) => request(requestContext, options),
    requestMany: (options) => requestMany(requestContext, options),
    respond: (options) => respond(requestContext, options),
    respondJoined: (options) => respondJoined(requestContext, options),
    events: events.stream,
    stats: Effect.sync(() => statsOf(core)),
    state: core.life.get,
    awaitClosed: Deferred.await(terminated),
    close,
  }
}
