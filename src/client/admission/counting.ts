/**
 * What counts in the flow window, and what it costs. A multicast counts
 * when the daemon will send it back to this session — it names the
 * session's private group or a group the session belongs to, and does not
 * ask to skip its sender; a join or leave counts when the daemon answers it
 * to this session (with membership messages on). Only what comes back can
 * give its permits back, so nothing else may take any.
 *
 * What the session belongs to is taken as of the frames queued so far, not
 * as of the views: the daemon applies joins, leaves and multicasts in that
 * same order, so it decides which messages come back. The set lives here,
 * outlives sessions (a new one joins it again). The rule is
 * {@link Counting.sizeOf}, for one destination: the sender's one-step path
 * calls it for its one destination, {@link Counting.count} for each.
 *
 * @module
 */
import type { PreparedFrame } from "./frames.ts"
import type { ViewTracker } from "../core/views.ts"
import type { FlowControl } from "./window.ts"

/**
 * The window bookkeeping of a connection's senders.
 *
 * @since 0.2.0
 * @category models
 */
export class Counting {
  /** Groups this session belongs to, as of the frames queued so far. */
  readonly joined = new Set<string>()
  readonly #views: ViewTracker
  readonly #membership: boolean

  /**
   * `membership`: whether the session gets membership messages (which
   * answer its joins and leaves).
   */
  constructor(views: ViewTracker, membership: boolean) {
    this.#views = views
    this.#membership = membership
  }

  /**
   * The rule, for one destination: the members a message to `group` counts
   * for when it comes back to the session of `privateGroup` — 1 for the
   * private group, the group's size (at least 1) for a group it belongs
   * to — or 0 when it does not come back through `group`.
   */
  sizeOf(group: string, privateGroup: string): number {
    if (group === privateGroup) return 1
    return this.joined.has(group) ? Math.max(1, this.#views.size(group)) : 0
  }

  /** Whether a message to `groups` comes back to the session of `privateGroup` (and so counts). */
  isCounted(groups: ReadonlyArray<string>, selfDiscard: boolean, privateGroup: string): boolean {
    if (selfDiscard) return false
    for (let i = 0; i < groups.length; i++) if (this.sizeOf(groups[i], privateGroup) > 0) return true
    return false
  }

  /**
   * Sets what `p` costs in `flow`, as of the frames queued so far: a
   * multicast that comes back costs the size of its largest counted
   * destination (and counts only through `via` when that is its one counted
   * destination); a join or leave the daemon answers costs 1.
   */
  count(p: PreparedFrame, flow: FlowControl, privateGroup: string): void {
    p.cost = 0
    p.via = undefined
    if (!flow.enabled) return
    if (p.kind !== "Multicast") {
      const g = p.names[0]
      if (this.#membership && (p.kind === "Join" ? !this.joined.has(g) : this.joined.has(g))) p.cost = 1
      return
    }
    if (p.selfDiscard) return
    // `via`: the one destination it comes back through, when only one does
    // (a refused join, or a private group gone with its session, then
    // forgets it).
    let size = 0
    let only: string | undefined
    let single = true
    for (let i = 0; i < p.names.length; i++) {
      const g = p.names[i]
      const n = this.sizeOf(g, privateGroup)
      if (n === 0) continue
      size = Math.max(size, n)
      if (only !== undefined && only !== g) single = false
      only = g
    }
    if (size === 0) return
    p.cost = flow.costOf(size)
    p.via = single ? only : undefined
  }

  /** Bookkeeping of a frame just queued, in the same synchronous step. */
  committed(p: PreparedFrame, flow: FlowControl): void {
    switch (p.kind) {
      case "Join":
        this.joined.add(p.names[0])
        break
      case "Leave":
        this.joined.delete(p.names[0])
        break
      case "Multicast":
        break
    }
    if (p.cost > 0) flow.commit(p.cost, p.via)
  }
}
