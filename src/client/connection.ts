/**
 * A client connection to a Spread daemon, assembled from the folders of
 * src/client (each has a README), lowest first:
 *
 * - core/: the values a connection carries — its lifecycle state (one
 *   `Ref`, named transitions), received messages, the inbound buffer,
 *   events and views;
 * - admission/: the send path — can this frame go out now, or must it wait
 *   for the flow window or the writer buffer;
 * - features/: request/reply, subscribe (and the reader's dispatch table,
 *   router.ts), large messages, the envelope, typed payloads;
 * - session/: one daemon session (reader and writer fibers, loss,
 *   reconnect, close, stats);
 * - config/: settings from Effect `Config`, and the `Spread` layer;
 * - beside them: dialing.ts and handshake.ts (opening a session), options.ts,
 *   errors.ts, model.ts (the public {@link Connection} type) and
 *   operations.ts (the object that implements it).
 *
 * Fibers replace the C library's threads: one reader fiber decodes what the
 * daemon sends, one writer fiber writes what senders encoded (everything
 * encoded since its last write, in one write), and any number of fibers may
 * multicast, join, leave and receive at once. The first failure is recorded
 * as a sticky {@link ConnectionError}.
 *
 * The parts that belong to one daemon session (socket, decoder, outbound
 * buffer, flow window, reader and writer fibers) are a {@link Session}; the
 * parts that outlive it (inbound buffer, subscriptions, events, views,
 * state, the sender's joined groups) belong to the connection — so that,
 * with the `reconnect` option, a lost session is replaced under the same
 * connection:
 *
 * 1. the lost session's reader or writer reports the loss; the lifecycle
 *    goes Open → Reconnecting; `Disconnected` is published; requests
 *    pending fail (marked `reconnecting`); the senders move to a fresh
 *    outbound buffer and window (`whileReconnecting: "wait"`: they queue
 *    there, bounded by the outbox limits, then wait) or keep the closed one
 *    (`"fail"`: they fail, marked `reconnecting`);
 * 2. attempts follow the schedule, each trying the daemon addresses in
 *    turn with the same private name, or a fresh one when the daemon
 *    refuses it as in use;
 * 3. on success a {@link Discontinuity} goes into `messages` and every
 *    `subscribe` stream, the join frames of every group joined before are
 *    put ahead of what senders queued, the new reader and writer start,
 *    the lifecycle goes back to Open, and `Reconnected` is published;
 * 4. when the schedule gives up, Reconnecting → Failed: the sticky error
 *    (one object) reaches every waiter, as without `reconnect`.
 *
 * @module
 */
import { Deferred, Duration, Effect, FiberSet, Schedule, type Scope, SubscriptionRef } from "effect"
import { makeClose } from "./session/close.ts"
import { ConnectionError } from "./core/errors.ts"
import type { ConnectError } from "./core/connect_error.ts"
import { openAny, type Opened } from "./session/dialing.ts"
import { Events } from "./core/events.ts"
import { Reassembly } from "./features/reassembly.ts"
import { makeReconnect } from "./session/reconnect.ts"
import { runSession, type Session, type SessionCore, type SessionLife, sessionOf, targetOf } from "./session/session.ts"
import { Inbound } from "./core/inbound.ts"
import { type ConnectOptions, labelOf, type ResolvedOptions, resolveOptions } from "./options.ts"
import { Outbound } from "./admission/outbound.ts"
import type { Connection } from "./model.ts"
import { connectionOf } from "./operations.ts"
import { Router } from "./features/router.ts"
import { Sender } from "./admission/send.ts"
import { publishMetrics } from "./core/observability.ts"
import { Lifecycle } from "./core/state.ts"
import { Counters, metricSampleOf } from "./session/stats.ts"
import { ViewTracker } from "./core/views.ts"
import { FlowControl } from "./admission/window.ts"

export type { Connection, ConnectionStats } from "./model.ts"
export type { JoinOptions } from "./features/subscribe.ts"
export type { ConnectionState } from "./core/state.ts"
export type { OutgoingMessage } from "./admission/frames.ts"

/**
 * Connects to a daemon. The connection belongs to the scope: closing the
 * scope sends the disconnect, stops the connection's fibers and closes the
 * socket, in bounded time even when the daemon is gone. `connectTimeout`
 * bounds everything before the connection is returned: the TCP or Unix
 * connect (even to a peer that never answers), and the handshake — per
 * address when `daemon` is a list, tried in turn until one accepts.
 *
 * With `reconnect`, a lost session is replaced on that schedule (see the
 * module notes and the README's "Reconnect" section).
 *
 * @since 0.1.0
 * @category constructors
 */
export const connect = (options: ConnectOptions = {}): Effect.Effect<Connection, ConnectError, Scope.Scope> =>
  Effect.gen(function* () {
    const opts = yield* resolveOptions(options)
    const scope = yield* Effect.scope
    // Once a session is open nothing interrupts the wiring that installs its
    // finalizer, so an interruption at any instant leaves no socket behind
    // (one that lands while dialing or mid-handshake closes it in openAny).
    return yield* Effect.uninterruptibleMask((restore) =>
      Effect.flatMap(restore(openAny(opts, opts.name, false, scope)), (first) => start(opts, first))
    )
  }).pipe(Effect.withSpan("spread.connect", { attributes: { "spread.daemon": labelOf(options.daemon) } }))

// Wires the parts of a connection around an accepted session. The parts
// are made once and never replaced; what changes — the session, the gap
// buffers — is the lifecycle's one state value.
const start = (opts: ResolvedOptions, first: Opened): Effect.Effect<Connection, never, Scope.Scope> =>
  Effect.gen(function* () {
    const scope = yield* Effect.scope
    const limits = { maxFrames: opts.outboxMessages, maxBytes: opts.outboxBytes }
    const closing = new ConnectionError({
      reason: "Closed",
      privateGroup: first.hs.accept.privateGroup,
      detail: "the connection is closing",
    })
    const freshBuffers = () => ({ out: new Outbound(limits), flow: new FlowControl(opts.window) })

    // ----- the one state value, holding the first session -----
    const life: SessionLife = new Lifecycle(sessionOf(first, new Outbound(limits), new FlowControl(opts.window), []))
    const failSticky: Effect.Effect<never, ConnectionError> = Effect.suspend(() => Effect.fail(life.sticky(closing)))

    // ----- parts that outlive a session -----
    const terminated = yield* Deferred.make<ConnectionError>()
    const events = yield* Events.make(terminated)
    const inbound = yield* Inbound.make(opts.inboundCapacity, opts.slowHigh, opts.slowLow, events, failSticky)
    const tracker = new ViewTracker()
    const views = yield* SubscriptionRef.make(tracker.current)
    const fibers = yield* FiberSet.make<void, never>()
    // The connection's long-lived fibers (each session's reader and writer,
    // the reconnect attempts, the sweeps) start from the runtime captured
    // here, once. Forked from the fiber at hand instead (FiberSet.run), a
    // new session's fibers would descend from the lost session's reader:
    // every generation inherits the FiberRef stacks of the one before and
    // adds to them, a few KiB more with every reconnect, for good.
    const runIn = yield* FiberSet.runtime(fibers)<never>()
    const start = (effect: Effect.Effect<void>): Effect.Effect<void> =>
      Effect.sync(() => {
        runIn(effect)
      })
    const counters = new Counters()
    const sender = new Sender(() => targetOf(life.now), tracker, opts.membership, failSticky)
    const nonce = crypto.getRandomValues(new Uint32Array(1))[0]
    // Partial large messages outlive nothing: a new session starts afresh (see reconnect.ts).
    const reassembly = new Reassembly(opts.maxMessageBytes, opts.maxReassemblyBytes, yield* Effect.clock)
    const router = new Router(
      first.hs.accept.privateGroup,
      opts.membership,
      nonce,
      (group) => sender.joined.has(group),
      () => life.finalError,
    )
    const parts = {
      opts,
      scope,
      fibers,
      start,
      life,
      events,
      inbound,
      tracker,
      views,
      sender,
      reassembly,
      router,
      counters,
      terminated,
      failSticky,
      closing,
      nonce,
      freshBuffers,
      // The gap buffers senders queue into while reconnecting: fresh ones
      // under "wait", named for the lost session's private group (renamed
      // if the new session gets another); none under "fail".
      gapOf: (lost: Session) =>
        opts.whileReconnecting === "wait"
          ? { ...freshBuffers(), privateGroup: lost.privateGroup, nameField: lost.nameField }
          : undefined,
      // Wakes everything blocked: receivers, senders waiting for permits or
      // room, and watchers of `awaitClosed` and `events`.
      wakeAll: (e: ConnectionError) =>
        Effect.all([Deferred.succeed(terminated, e), sender.target.flow.end, inbound.end(e), router.end(e)], {
          discard: true,
        }),
    }
    const reconnect = makeReconnect({ ...parts, run: (s) => runSession(sessionParts, s) })
    const sessionParts: SessionCore = { ...parts, reconnect }
    yield* runSession(sessionParts, life.session)
    const close = yield* makeClose(parts)

    // Partial large messages that waited too long for their next fragment
    // go, even when no fragment comes to make the reader look (reassembly.ts).
    yield* start(
      Effect.interruptible(
        Effect.repeat(Effect.sync(() => reassembly.sweep()), Schedule.spaced(Duration.seconds(1))),
      ).pipe(Effect.asVoid),
    )
    if (opts.metrics) {
      // Interruptible even when the connection is made in an uninterruptible
      // region (a fiber inherits that status): closing must stop it.
      yield* start(
        Effect.interruptible(publishMetrics(first.hs.accept.privateGroup, () => metricSampleOf(parts))),
      )
    }
    return connectionOf(parts, close)
  })
