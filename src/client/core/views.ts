/**
 * The current view of each group a connection belongs to, as the daemon's
 * membership messages describe it, held in a `SubscriptionRef` so fibers
 * can watch it: the reader applies the messages ({@link ViewTracker}), the
 * connection's `view` and `watch` read them. Views need the membership flag
 * (on by default).
 *
 * @module
 */
import { Effect, Option, Stream, SubscriptionRef } from "effect"
import type { GroupId, MembershipCause, ServerMessage } from "../../protocol/server_messages.ts"

/**
 * A group's membership as of the last membership message.
 *
 * @since 0.1.0
 * @category models
 */
export interface GroupView {
  /** The group's name. */
  readonly group: string
  /** The group id of this view (compare with `equalGroupIds`). */
  readonly groupId: GroupId
  /** Private group names of the members, in the daemon's order. */
  readonly members: ReadonlyArray<string>
  /** What caused this view. */
  readonly cause: MembershipCause
  /** The member that joined, left or disconnected (absent for `Network`). */
  readonly changed: string | undefined
}

/**
 * Applies membership messages to a copy-on-write map of views. The reader
 * calls {@link apply} per message and {@link flush} once per read.
 *
 * @since 0.1.0
 * @category models
 */
export class ViewTracker {
  #current: ReadonlyMap<string, GroupView> = new Map()
  #draft: Map<string, GroupView> | undefined

  /** The views as last flushed. */
  get current(): ReadonlyMap<string, GroupView> {
    return this.#current
  }

  /** Members of `group` in the latest view, including unflushed changes (0 when unknown). */
  size(group: string): number {
    return (this.#draft ?? this.#current).get(group)?.members.length ?? 0
  }

  /** Applies one message to the pending views. */
  apply(m: ServerMessage): void {
    switch (m._tag) {
      case "Membership": {
        this.#writable().set(m.group, {
          group: m.group,
          groupId: m.groupId,
          members: m.members,
          cause: m.cause,
          changed: m.changed,
        })
        return
      }
      case "SelfLeave":
        if ((this.#draft ?? this.#current).has(m.group)) this.#writable().delete(m.group)
        return
      case "Regular":
      case "Transitional":
      case "Reject":
        return
    }
  }

  /** The new views when something changed since the last flush. */
  flush(): ReadonlyMap<string, GroupView> | undefined {
    const d = this.#draft
    if (d === undefined) return undefined
    this.#draft = undefined
    this.#current = d
    return d
  }

  /** Forgets every view (a new session starts with none). */
  reset(): void {
    this.#current = new Map()
    this.#draft = undefined
  }

  #writable(): Map<string, GroupView> {
    if (this.#draft === undefined) this.#draft = new Map(this.#current)
    return this.#draft
  }
}

/**
 * The views of a connection as its fibers share them.
 *
 * @since 0.2.0
 * @category models
 */
export type ViewsRef = SubscriptionRef.SubscriptionRef<ReadonlyMap<string, GroupView>>

/**
 * The current view of `group`, if the connection is a member.
 *
 * @since 0.2.0
 * @category getters
 */
export const viewOf = (views: ViewsRef, group: string): Effect.Effect<Option.Option<GroupView>> =>
  Effect.map(SubscriptionRef.get(views), (m) => Option.fromNullable(m.get(group)))

/**
 * The view of `group` now, then each time it changes; fails as `end` does
 * (with the sticky error, when the connection ends).
 *
 * @since 0.2.0
 * @category getters
 */
export const watchView = <E>(
  views: ViewsRef,
  group: string,
  end: Effect.Effect<never, E>,
): Stream.Stream<Option.Option<GroupView>, E> =>
  views.changes.pipe(
    Stream.map((m) => Option.fromNullable(m.get(group))),
    Stream.changesWith((a, b) => Option.isNone(a) ? Option.isNone(b) : Option.isSome(b) && a.value === b.value),
    Stream.interruptWhen(end),
  )
