/**
 * The daemon's engine: sessions, groups and the one sequencer.
 *
 * Every request is handled synchronously, start to finish, in the order the
 * session readers hand them in. JavaScript runs one of them at a time, so
 * that call order *is* the total order: each delivery is appended to every
 * recipient's outbox before the next request is looked at, and every
 * receiver sees messages and membership changes in one identical order
 * (what AGREED and SAFE promise; the weaker levels are delivered the same
 * way). A sender's own messages come back in the order it sent them.
 *
 * Nothing here waits. A recipient whose outbox is over its limit is cut off
 * at once: no further copies reach it ({@link EngineSession.offer} answers
 * `"Discarded"` from then on), so everyone else loses nothing. It stays in
 * the engine while its session reads what it had already sent (a bounded
 * drain, see `session.ts`): those requests are sequenced as usual, and its
 * disconnect comes after them, when the session ends. A recipient whose
 * outbox is closed (it is ending) is disconnected right after the current
 * request.
 *
 * @module
 */
import { MAX_GROUP_NAME, MAX_LOCAL_GROUP_MEMBERS } from "../protocol/constants.ts"
import { type Frame, toLittleEndian } from "../protocol/frame.ts"
import { encodeMembership, encodeRejectFor, encodeSelfLeave } from "../protocol/daemon_encoders.ts"
import type { GroupId } from "../protocol/server_messages.ts"
import { isCStringAt, parsePrivateGroup, readCString } from "../protocol/names.ts"
import type { OfferResult } from "../transport/outbox.ts"

/**
 * What {@link EngineSession.offer} answers: an outbox's answer, or
 * `"Discarded"` from a session that takes no more frames (cut off, or its
 * writes failed) while it still reads what its client sent.
 *
 * @since 0.1.0
 * @category models
 */
export type Delivery = OfferResult | "Discarded"

/**
 * The engine's view of one operational session.
 *
 * @since 0.1.0
 * @category models
 */
export interface EngineSession {
  /** The private name, unique on this daemon. */
  readonly privateName: string
  /** `#name#daemon`. */
  readonly privateGroup: string
  /** Receives membership messages. */
  readonly membership: boolean
  /** Queues a frame for this session's writer; never waits. */
  readonly offer: (bytes: Uint8Array) => Delivery
  /**
   * Cuts the session off (outbox over its limit): it writes nothing more
   * and ends once it has read what its client sent (a bounded drain); the
   * engine removes it then.
   */
  readonly cutOff: (reason: string) => void
}

interface SessionState {
  readonly session: EngineSession
  readonly groups: Set<Group>
  mark: number
  live: boolean
}

interface Group {
  readonly name: string
  /** Members sorted by private group name, byte-wise (strncmp order). */
  readonly members: Array<SessionState>
  index: number
}

/**
 * How far clients may grow the engine. A join past any of them gets a
 * REJECT message (the join's own frame, `old_type` CAUSED_BY_JOIN) and
 * changes nothing, as Spread answers a join to a full group.
 *
 * @since 0.1.0
 * @category models
 */
export interface EngineLimits {
  /** Most members of one group. */
  readonly maxGroupMembers: number
  /** Most groups one session belongs to at once. */
  readonly maxGroupsPerSession: number
  /** Most non-empty groups on the daemon. */
  readonly maxGroups: number
}

/**
 * Running totals, read without allocating anything on the hot path.
 *
 * @since 0.1.0
 * @category models
 */
export interface EngineStats {
  sessions: number
  groups: number
  messagesIn: number
  bytesIn: number
  messagesOut: number
  bytesOut: number
  cutOff: number
  /** Joins refused with a REJECT (a full group, or a limit of {@link EngineLimits}). */
  joinsRefused: number
}

/**
 * The engine. One per daemon.
 *
 * @since 0.1.0
 * @category models
 */
export class Engine {
  readonly #sessions = new Map<string, SessionState>()
  readonly #groups = new Map<string, Group>()
  readonly #pending: Array<SessionState> = []
  readonly #limits: EngineLimits
  readonly #daemonName: string
  readonly #procId: number
  readonly #time: number
  #stamp = 0
  #lastDestination = ""
  /** Running totals. */
  readonly stats: EngineStats = {
    sessions: 0,
    groups: 0,
    messagesIn: 0,
    bytesIn: 0,
    messagesOut: 0,
    bytesOut: 0,
    cutOff: 0,
    joinsRefused: 0,
  }
  constructor(
    daemonName: string,
    procId: number,
    timeSeconds: number,
    limits: EngineLimits = {
      maxGroupMembers: MAX_LOCAL_GROUP_MEMBERS,
      maxGroupsPerSession: Number.MAX_SAFE_INTEGER,
      maxGroups: Number.MAX_SAFE_INTEGER,
    },
  ) {
    this.#daemonName = daemonName
    this.#procId = procId
    this.#time = timeSeconds | 0
    this.#limits = limits
  }

  /** Whether a private name is in use by an operational session. */
  has(privateName: string): boolean {
    return this.#sessions.has(privateName)
  }

  /** Adds an operational session. */
  add(session: EngineSession): void {
    this.#sessions.set(session.privateName, { session, groups: new Set(), mark: 0, live: true })
    this.stats.sessions = this.#sessions.size
  }

  /** Members of a group, in order (for tests and tools). */
  members(group: string): ReadonlyArray<string> {
    return this.#groups.get(group)?.members.map((m) => m.session.privateGroup) ?? []
  }

  /**
   * Handles a join of `group` by `session`; `frame` is the join itself,
   * returned to the sender in a REJECT when the join is refused. Answers
   * why it was refused (for the log), or `undefined`.
   */
  join(session: EngineSession, group: string, frame: Frame): string | undefined {
    let refused: string | undefined
    this.#run(session, (s) => {
      refused = this.#join(s, group, frame)
    })
    return refused
  }

  /** Handles a leave of `group` by `session`. */
  leave(session: EngineSession, group: string): void {
    this.#run(session, (s) => this.#leave(s, group))
  }

  /** Delivers a multicast frame from `session`. */
  multicast(session: EngineSession, frame: Frame, selfDiscard: boolean): void {
    // The hot path: no closure, no try (nothing here throws but a bug).
    const s = this.#sessions.get(session.privateName)
    if (s === undefined || s.session !== session || !s.live) return
    this.#multicast(s, frame, selfDiscard)
    if (this.#pending.length > 0) this.#run(undefined, () => {})
  }

  /**
   * Removes a session (KILL, EOF, error, or cut off): the other members of
   * its groups get CAUSED_BY_DISCONNECT. Idempotent.
   */
  remove(session: EngineSession): void {
    const s = this.#sessions.get(session.privateName)
    if (s === undefined || s.session !== session) return
    s.live = false
    this.#run(undefined, () => this.#disconnect(s))
  }

  #run(session: EngineSession | undefined, f: (s: SessionState) => void): void {
    let s: SessionState | undefined
    if (session !== undefined) {
      s = this.#sessions.get(session.privateName)
      if (s === undefined || s.session !== session || !s.live) return
    }
    // Never re-entered: `offer` and `cutOff` only queue bytes or close a
    // socket; a session whose outbox is closed has its disconnect queued in #pending and
    // sequenced right after the current request.
    try {
      f(s as SessionState)
      while (this.#pending.length > 0) {
        const victim = this.#pending.shift()
        if (victim !== undefined) this.#disconnect(victim)
      }
    } finally {
      this.stats.groups = this.#groups.size
      this.stats.sessions = this.#sessions.size
    }
  }

  #deliver(to: SessionState, bytes: Uint8Array): void {
    if (!to.live) return
    const r = to.session.offer(bytes)
    if (r === "Queued") {
      this.stats.messagesOut++
      this.stats.bytesOut += bytes.length
      return
    }
    if (r === "Discarded") return
    if (r === "Overflow") {
      // Deaf from now on; its requests still count until its session ends.
      this.stats.cutOff++
      to.session.cutOff("outbox over its limit (slow reader)")
      return
    }
    // Closed: this session is ending; nobody else is affected.
    to.live = false
    this.#pending.push(to)
  }

  #groupId(g: Group): GroupId {
    return { procId: this.#procId, time: this.#time, index: g.index }
  }

  #sendMembership(g: Group, cause: "Join" | "Leave" | "Disconnect", changed: SessionState): void {
    const bytes = encodeMembership(
      g.name,
      cause,
      g.members.map((m) => m.session.privateGroup),
      this.#groupId(g),
      changed.session.privateGroup,
    )
    for (const m of g.members) if (m.session.membership) this.#deliver(m, bytes)
  }

  #join(s: SessionState, name: string, frame: Frame): string | undefined {
    const limits = this.#limits
    let g = this.#groups.get(name)
    if (g !== undefined && s.groups.has(g)) return undefined
    const refused = g === undefined
      ? this.#groups.size >= limits.maxGroups ? `the daemon has ${limits.maxGroups} groups (maxGroups)` : undefined
      : g.members.length >= limits.maxGroupMembers
      ? `the group has ${limits.maxGroupMembers} members (maxGroupMembers)`
      : undefined
    if (refused !== undefined || s.groups.size >= limits.maxGroupsPerSession) {
      // As Spread past MAX_LOCAL_GROUP_MEMBERS: the joiner alone gets a
      // REJECT (sent whatever its membership flag), and nothing changes.
      this.stats.joinsRefused++
      this.#deliver(s, encodeRejectFor(frame, s.session.privateGroup))
      return refused ?? `the session is in ${limits.maxGroupsPerSession} groups (maxGroupsPerSession)`
    }
    if (g === undefined) {
      g = { name, members: [], index: 0 }
      this.#groups.set(name, g)
    }
    insertSorted(g.members, s)
    s.groups.add(g)
    g.index++
    this.#sendMembership(g, "Join", s)
    return undefined
  }

  #leave(s: SessionState, name: string): void {
    const g = this.#groups.get(name)
    if (g === undefined || !s.groups.has(g)) return
    if (s.session.membership) this.#deliver(s, encodeSelfLeave(name))
    this.#drop(s, g, "Leave")
  }

  #drop(s: SessionState, g: Group, cause: "Leave" | "Disconnect"): void {
    g.members.splice(g.members.indexOf(s), 1)
    s.groups.delete(g)
    g.index++
    if (g.members.length === 0) {
      this.#groups.delete(g.name)
      return
    }
    this.#sendMembership(g, cause, s)
  }

  #disconnect(s: SessionState): void {
    s.live = false
    if (this.#sessions.get(s.session.privateName) !== s) return
    this.#sessions.delete(s.session.privateName)
    for (const g of [...s.groups]) this.#drop(s, g, "Disconnect")
  }

  // A destination name as a string. Floods name the same group again and
  // again, so the last one is kept and compared byte-wise instead of
  // building the string anew.
  #destination(b: Uint8Array, o: number): string {
    const last = this.#lastDestination
    if (isCStringAt(b, o, MAX_GROUP_NAME - 1, last)) return last
    return this.#lastDestination = readCString(b, o, MAX_GROUP_NAME - 1)
  }

  #multicast(s: SessionState, frame: Frame, selfDiscard: boolean): void {
    this.stats.messagesIn++
    this.stats.bytesIn += frame.bytes.length
    const bytes = toLittleEndian(frame)
    const stamp = ++this.#stamp
    if (selfDiscard) s.mark = stamp
    const n = frame.numGroups
    const b = frame.bytes
    for (let i = 0, o = frame.groupsOffset; i < n; i++, o += MAX_GROUP_NAME) {
      const dest = this.#destination(b, o)
      if (dest.charCodeAt(0) === 0x23) {
        const p = parsePrivateGroup(dest)
        if (p === undefined || p.daemonName !== this.#daemonName) continue
        const to = this.#sessions.get(p.privateName)
        if (to !== undefined && to.mark !== stamp) {
          to.mark = stamp
          this.#deliver(to, bytes)
        }
        continue
      }
      const g = this.#groups.get(dest)
      if (g === undefined) continue
      for (const to of g.members) {
        if (to.mark !== stamp) {
          to.mark = stamp
          this.#deliver(to, bytes)
        }
      }
    }
  }
}

const insertSorted = (members: Array<SessionState>, s: SessionState): void => {
  const key = s.session.privateGroup
  let lo = 0
  let hi = members.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (members[mid].session.privateGroup < key) lo = mid + 1
    else hi = mid
  }
  members.splice(lo, 0, s)
}
