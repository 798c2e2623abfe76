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
 * outlives sessions (a new one joins it again), and is read by the sender's
 * one-step path, which applies the same rule to one destination inline.
 *
 * @module
 */
import type { PreparedFrame } from "./frames.ts"
import type { ViewTracker } from "./views.ts"
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

  /** Whether a message to `groups` comes back to the session of `privateGroup` (and so counts). */
  isCounted(groups: ReadonlyArray<string>, selfDiscard: boolean, privateGroup: string): boolean {
    if (selfDiscard) return false
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i]
      if (g === privateGroup || this.joined.has(g)) return true
    }
    return false
  }

  /**
   * Sets what `p` costs in `flow`, as of the frames queued so far: a
   * multicast that comes back costs the size of its largest joined
   * destination (and counts only through `via` when that is its one joined
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
    if (!this.isCounted(p.names, p.selfDiscard, privateGroup)) return
    // `via`: the one destination it comes back through, when only one does
    // (a refused join, or a private group gone with its session, then
    // forgets it).
    let size = 1
    let only: string | undefined
    let single = true
    for (let i = 0; i < p.names.length; i++) {
      const g = p.names[i]
      const own = g === privateGroup
      if (!own && !this.joined.has(g)) continue
      if (!own) size = Math.max(size, this.#views.size(g))
      if (only !== undefined && only !== g) single = false
      only = g
    }
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
