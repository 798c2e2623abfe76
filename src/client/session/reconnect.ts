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
import { Effect, Exit, Schedule, Scope, SubscriptionRef } from "effect"
import { ConnectionError } from "../core/errors.ts"
import type { ConnectError } from "../core/connect_error.ts"
import { openAny, type Opened } from "./dialing.ts"
import type { Events } from "../core/events.ts"
import type { Reassembly } from "../features/reassembly.ts"
import { groupEntry } from "../../protocol/encode.ts"
import type { Inbound } from "../core/inbound.ts"
import type { Discontinuity } from "../core/discontinuity.ts"
import type { ResolvedOptions } from "../options.ts"
import type { Outbound } from "../admission/outbound.ts"
import type { Router } from "../features/router.ts"
import type { Sender } from "../admission/send.ts"
import { type Session, type SessionLife, sessionOf } from "./session.ts"
import type { Counters } from "./stats.ts"
import type { GroupView, ViewTracker } from "../core/views.ts"
import type { FlowControl } from "../admission/window.ts"

/**
 * The parts of a connection reconnecting works on; the current session,
 * and the gap buffers, are in `life`, the connection's one state value.
 *
 * @since 0.2.0
 * @category models
 */
export interface ReconnectCore {
  readonly opts: ResolvedOptions
  readonly scope: Scope.Scope
  /** Starts a fiber in the connection's set, from the runtime captured at connect (see connection.ts). */
  readonly start: (effect: Effect.Effect<void>) => Effect.Effect<void>
  readonly life: SessionLife
  readonly events: Events
  readonly router: Router
  readonly tracker: ViewTracker
  readonly views: SubscriptionRef.SubscriptionRef<ReadonlyMap<string, GroupView>>
  readonly inbound: Inbound
  readonly sender: Sender
  readonly reassembly: Reassembly
  readonly counters: Counters
  /** A fresh buffer and window for senders. */
  readonly freshBuffers: () => { readonly out: Outbound; readonly flow: FlowControl }
  /** Starts a session's reader and writer fibers. */
  readonly run: (s: Session) => Effect.Effect<void>
  /** Wakes everything blocked with a final error. */
  readonly wakeAll: (e: ConnectionError) => Effect.Effect<void>
}

/**
 * The step that starts reconnecting once the lifecycle went Open →
 * Reconnecting after the loss of session `lost` (with `e`, its error;
 * `schedule`, the policy): pending requests fail, views and partial large
 * messages go, the lost session is released, and the attempts start.
 *
 * @since 0.2.0
 * @category constructors
 */
export const makeReconnect = (core: ReconnectCore): (
  lost: Session,
  e: ConnectionError,
  schedule: Schedule.Schedule<unknown, ConnectError>,
) => Effect.Effect<void> => {
  const start = (
    s: Session,
    e: ConnectionError,
    schedule: Schedule.Schedule<unknown, ConnectError>,
  ): Effect.Effect<void> =>
    Effect.suspend(() => {
      const life = core.life.now
      // The error sends and requests get meanwhile.
      const gapError = life._tag === "Reconnecting" ? life.error : e
      const rejoin = [...core.sender.joined]
      const loss = { unconfirmed: s.flow.inFlight, unsent: s.out.frames }
      if (life._tag === "Reconnecting" && life.gap !== undefined) {
        core.counters.sentBefore += s.out.framesQueued
        core.counters.writesBefore += s.out.writes
      }
      core.router.interrupt(gapError)
      // The lost session's views are gone with it, and so are large
      // messages partly received: their rest will not come.
      core.tracker.reset()
      core.reassembly.clear()
      // Senders waiting on the old buffer or window wake and carry on with
      // the gap buffers (or fail with the gap's error, under "fail").
      s.out.abort()
      core.events.publish({ _tag: "Disconnected", error: e, address: s.label })
      return Scope.close(s.scope, Exit.void).pipe(
        Effect.zipRight(SubscriptionRef.set(core.views, core.tracker.current)),
        Effect.zipRight(s.flow.end),
        // Interruptible even when the loss is reported from an
        // uninterruptible region: closing must be able to stop it.
        Effect.zipRight(core.start(Effect.interruptible(attempts(s, e, rejoin, loss, schedule)))),
        Effect.asVoid,
      )
    })

  const attempts = (
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
          const from = core.life.now
          if (!core.life.fail(final)) return
          if (from._tag === "Reconnecting" && from.gap !== undefined) {
            from.gap.out.abort()
            yield* from.gap.flow.end
          }
          return yield* core.wakeAll(final)
        }
      }
    }).pipe(Effect.withSpan("spread.reconnect", { root: true, attributes: { "spread.connection": s.privateGroup } }))

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
        reconnects: 1,
      })
      yield* Effect.uninterruptible(Effect.suspend(() => {
        const life = core.life.now
        if (life._tag !== "Reconnecting") return Scope.close(o.scope, Exit.void)
        // Before any message of the new session (its reader starts below);
        // marks never wait for room (see Inbound.mark).
        core.router.mark(mark)
        core.inbound.mark(mark(privateGroup))
        // The gap buffers become the new session's (under "wait"), or fresh ones.
        let buffers: { readonly out: Outbound; readonly flow: FlowControl }
        if (life.gap !== undefined) {
          buffers = life.gap
        } else {
          core.counters.sentBefore += s.out.framesQueued
          core.counters.writesBefore += s.out.writes
          buffers = core.freshBuffers()
        }
        const { flow, out } = buffers
        let forgotten = 0
        if (privateGroup !== s.privateGroup) {
          out.renameSender(groupEntry(privateGroup))
          // Messages queued in the gap to the old private group go nowhere
          // now: they will not come back, so their permits return here.
          forgotten = flow.forget(s.privateGroup)
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
        // window permits (see `rejoining` in reader.ts).
        const next = sessionOf(o, out, flow, core.opts.membership && flow.enabled ? rejoin : [])
        out.prepend(core.sender.joinFrames(next.nameField, rejoin), rejoin.length)
        // Installed in one transition: from now on senders go to `next`.
        core.life.resume(next)
        core.counters.reconnects++
        return flow.giveBack(forgotten).pipe(
          Effect.zipRight(SubscriptionRef.set(core.views, core.tracker.current)),
          Effect.zipRight(core.run(next)),
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
      }))
    })

  return start
}
