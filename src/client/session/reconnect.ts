/**
 * Reconnecting: what happens between a lost session and its replacement
 * under the same connection (with the `reconnect` option). `disconnect`
 * runs once the lifecycle went Open → Reconnecting: the senders get a fresh
 * buffer and window (or keep the closed one under `whileReconnecting:
 * "fail"`), pending requests fail, views and partial large messages go, and
 * the attempts start on the schedule; `resume` installs a new session: marks
 * the streams with a discontinuity, joins the groups again ahead of what was
 * queued in the gap, gives back the permits of messages to a private group
 * that no longer exists, and starts the session's fibers.
 *
 * @module
 */
import { Effect, Exit, FiberSet, Schedule, Scope, SubscriptionRef } from "effect"
import { type ConnectError, ConnectionError } from "../errors.ts"
import { openAny, type Opened } from "../dialing.ts"
import type { Events } from "../core/events.ts"
import type { Reassembly } from "../features/fragments.ts"
import { groupEntry } from "../../protocol/encode.ts"
import type { Inbound } from "../core/inbound.ts"
import type { Discontinuity } from "../core/discontinuity.ts"
import type { ResolvedOptions } from "../options.ts"
import type { Outbound } from "../admission/outbound.ts"
import type { Router } from "../features/router.ts"
import type { Sender } from "../admission/send.ts"
import { type Session, sessionOf } from "./session.ts"
import type { Lifecycle } from "../core/state.ts"
import type { GroupView, ViewTracker } from "../core/views.ts"
import type { FlowControl } from "../admission/window.ts"

/**
 * The parts of a connection reconnecting works on; `current`, `out` and
 * `flow` are the connection's current session, buffer and window.
 *
 * @since 0.2.0
 * @category models
 */
export interface ReconnectCore {
  readonly opts: ResolvedOptions
  readonly scope: Scope.Scope
  readonly fibers: FiberSet.FiberSet<void, never>
  readonly life: Lifecycle
  readonly events: Events
  readonly router: Router
  readonly tracker: ViewTracker
  readonly views: SubscriptionRef.SubscriptionRef<ReadonlyMap<string, GroupView>>
  readonly inbound: Inbound
  readonly sender: Sender
  readonly reassembly: Reassembly
  current: Session
  readonly out: Outbound
  readonly flow: FlowControl
  /** Gives the senders a fresh buffer and window. */
  readonly freshBuffers: () => void
  /** Starts a session's reader and writer fibers. */
  readonly run: (s: Session, leftover: Uint8Array) => Effect.Effect<void>
  /** Wakes everything blocked with a final error. */
  readonly wakeAll: (e: ConnectionError) => Effect.Effect<void>
  /** Counts a reconnect. */
  readonly reconnected: () => void
}

/**
 * The step that starts reconnecting after the loss of session `s` (with
 * `e`, its error; `gap`, the error sends get meanwhile; `schedule`, the
 * policy).
 *
 * @since 0.2.0
 * @category constructors
 */
export const makeReconnector = (core: ReconnectCore): (
  s: Session,
  e: ConnectionError,
  gap: ConnectionError,
  schedule: Schedule.Schedule<unknown, ConnectError>,
) => Effect.Effect<void> => {
  // Open → Reconnecting happened: hand the senders a fresh buffer (or
  // leave them the closed one), fail pending requests, drop the socket,
  // and start reconnecting.
  const disconnect = (
    s: Session,
    e: ConnectionError,
    gap: ConnectionError,
    schedule: Schedule.Schedule<unknown, ConnectError>,
  ): Effect.Effect<void> =>
    Effect.suspend(() => {
      const rejoin = [...core.sender.joined]
      const loss = { unconfirmed: s.flow.inFlight, unsent: s.out.frames }
      if (core.opts.whileReconnecting === "wait") {
        core.freshBuffers()
        core.sender.rebind(core.out, core.flow)
      }
      core.router.interrupt(gap)
      // The lost session's views are gone with it, and so are large
      // messages partly received: their rest will not come.
      core.tracker.reset()
      core.reassembly.clear()
      // Senders waiting on the old buffer or window wake and try the
      // current one (or fail with `gap`, under "fail").
      s.out.abort()
      core.events.publish({ _tag: "Disconnected", error: e, address: s.label })
      return Scope.close(s.scope, Exit.void).pipe(
        Effect.zipRight(SubscriptionRef.set(core.views, core.tracker.current)),
        Effect.zipRight(s.flow.end),
        // Interruptible even when the loss is reported from an
        // uninterruptible region: closing must be able to stop it.
        Effect.zipRight(FiberSet.run(core.fibers, Effect.interruptible(reconnect(s, e, rejoin, loss, schedule)))),
        Effect.asVoid,
      )
    })

  const reconnect = (
    s: Session,
    e: ConnectionError,
    rejoin: ReadonlyArray<string>,
    loss: { readonly unconfirmed: number; readonly unsent: number },
    schedule: Schedule.Schedule<unknown, ConnectError>,
  ): Effect.Effect<void> =>
    Effect.gen(function* () {
      const driver = yield* Schedule.driver(schedule)
      let attempts = 0
      while (true) {
        attempts++
        const r = yield* Effect.either(openAny(core.opts, s.privateName, true, core.scope))
        if (r._tag === "Right") return yield* resume(s, r.right, e, rejoin, loss, attempts)
        const next = yield* Effect.either(driver.next(r.left))
        if (next._tag === "Left") {
          // The schedule gave up: the loss becomes final.
          const final = new ConnectionError({
            reason: e.reason,
            privateGroup: e.privateGroup,
            detail: `${e.detail}; reconnecting gave up after ${attempts} attempt${
              attempts === 1 ? "" : "s"
            }: ${r.left.message}`,
            cause: r.left,
          })
          const firstFailure = yield* core.life.fail(final)
          if (!firstFailure) return
          core.out.abort()
          return yield* core.wakeAll(final)
        }
      }
    }).pipe(Effect.withSpan("spread.reconnect", { attributes: { "spread.connection": s.privateGroup } }))

  // A new session is open: mark the streams, join again, start it.
  const resume = (
    s: Session,
    o: Opened,
    e: ConnectionError,
    joinedAtLoss: ReadonlyArray<string>,
    loss: { readonly unconfirmed: number; readonly unsent: number },
    attempts: number,
  ): Effect.Effect<void> =>
    Effect.gen(function* () {
      // Under "fail" nothing was queued in the gap, but a subscription
      // that ended then could not send its leave and forgot its group:
      // that group is not joined again. (Under "wait" the leaves queued in
      // the gap follow the re-joins and undo them in order.)
      const rejoin = core.opts.whileReconnecting === "fail"
        ? joinedAtLoss.filter((g) => core.sender.joined.has(g))
        : joinedAtLoss
      const privateGroup = o.hs.accept.privateGroup
      const mark = (group: string): Discontinuity => ({
        _tag: "Transitional",
        discontinuity: true,
        group,
        groupId: undefined,
        cause: e,
        privateGroup,
        previousPrivateGroup: s.privateGroup,
        rejoined: rejoin,
      })
      // Before any message of the new session (its reader starts below).
      // Both wait for room; interrupted (a close) while they do, the new
      // session is closed unused.
      yield* Effect.onInterrupt(
        Effect.zipRight(core.router.mark(mark), core.inbound.offer([mark(privateGroup)])),
        () => Scope.close(o.scope, Exit.void),
      )
      yield* Effect.uninterruptible(Effect.suspend(() => {
        // Installed before the state goes back to Open, so a close from
        // then on finds the new session (and one that came first makes
        // `resume` answer false: the new session is closed unused).
        if (core.opts.whileReconnecting === "fail") core.freshBuffers()
        core.sender.rebind(core.out, core.flow, privateGroup)
        let forgotten = 0
        if (privateGroup !== s.privateGroup) {
          core.out.renameSender(groupEntry(privateGroup))
          // Messages queued in the gap to the old private group go nowhere
          // now: they will not come back, so their permits return here.
          forgotten = core.flow.forget(s.privateGroup)
          // Requests made in the gap name the old private group as their
          // reply-to (inside their envelope, which the rename cannot reach):
          // no reply can come, so they fail now rather than at their timeout.
          core.router.failRequests(
            new ConnectionError({
              reason: e.reason,
              privateGroup: s.privateGroup,
              detail: `${e.detail}; the new session is ${privateGroup}, and replies to a request sent meanwhile ` +
                `would go to ${s.privateGroup}`,
              reconnecting: true,
            }),
          )
        }
        core.router.rebind(privateGroup)
        core.tracker.reset()
        // Joins first, ahead of what senders queued meanwhile; they take no
        // window permits (see `rejoining` in receive.ts).
        core.out.prepend(core.sender.joinFrames(rejoin), rejoin.length)
        const next = sessionOf(o, core.out, core.flow, core.opts.membership && core.flow.enabled ? rejoin : [])
        core.current = next
        return Effect.flatMap(core.life.resume, (ok) => {
          if (!ok) {
            next.out.abort()
            return Scope.close(o.scope, Exit.void)
          }
          core.reconnected()
          return core.flow.giveBack(forgotten).pipe(
            Effect.zipRight(SubscriptionRef.set(core.views, core.tracker.current)),
            Effect.zipRight(core.run(next, o.hs.leftover)),
            Effect.zipRight(Effect.sync(() =>
              core.events.publish({
                _tag: "Reconnected",
                address: o.label,
                privateGroup,
                previousPrivateGroup: s.privateGroup,
                newPrivateGroup: privateGroup !== s.privateGroup,
                rejoined: rejoin,
                attempts,
                unconfirmed: loss.unconfirmed,
                unsent: loss.unsent,
                cause: e,
              })
            )),
          )
        })
      }))
    })

  return disconnect
}
