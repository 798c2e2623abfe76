/**
 * The daemon's engine: sessions, groups and the one sequencer, shared by
 * every virtual daemon of the process (a {@link Network}; one daemon alone
 * is a network of one). Groups live per component of the network; see
 * `network/network.ts` for partitions and merges.
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
import { isCStringAt, privateGroupName, readCString } from "../protocol/names.ts"
import type { OfferResult } from "../transport/outbox.ts"
import {
  applyComponents,
  checkComponents,
  compareMembers,
  type Component,
  groupIdOf,
  initialComponent,
  type MembershipId,
  type NetGroup,
  type NetMember,
  type VirtualDaemon,
} from "./network/network.ts"

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

interface SessionState extends NetMember {
  readonly session: EngineSession
  readonly groups: Set<Group>
  mark: number
  live: boolean
}

type Group = NetGroup<SessionState>

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
 * One virtual daemon of a {@link Network}: its name and proc id.
 *
 * @since 0.2.0
 * @category models
 */
export interface NetworkDaemon {
  /** The daemon name (`#name#<daemon>`). */
  readonly name: string
  /** Its proc id in membership ids. */
  readonly procId: number
}

/**
 * The sequencer of one or more virtual daemons in one process: sessions,
 * groups per component, and the partition and merge of components.
 *
 * Every request is handled start to finish in one call, so the order of
 * calls is the total order inside every component. A daemon with one
 * virtual daemon is a network of one that never splits.
 *
 * @since 0.2.0
 * @category models
 */
export class Network {
  readonly #sessions = new Map<string, SessionState>()
  readonly #pending: Array<SessionState> = []
  readonly #daemons: ReadonlyArray<VirtualDaemon>
  readonly #byName: ReadonlyMap<string, VirtualDaemon>
  /** @internal */
  readonly limits: EngineLimits
  /** @internal */
  stamp = 0
  #lastDestination = ""
  /** Running totals of every virtual daemon together. */
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
    daemons: ReadonlyArray<NetworkDaemon>,
    timeSeconds: number,
    limits: EngineLimits = {
      maxGroupMembers: MAX_LOCAL_GROUP_MEMBERS,
      maxGroupsPerSession: Number.MAX_SAFE_INTEGER,
      maxGroups: Number.MAX_SAFE_INTEGER,
    },
  ) {
    this.limits = limits
    const vds: Array<VirtualDaemon> = daemons.map((d, index) => ({
      name: d.name,
      procId: d.procId | 0,
      index,
      // Replaced by the initial component just below.
      component: undefined as unknown as Component,
      lastTime: 0,
    }))
    const all = initialComponent(vds, timeSeconds | 0)
    for (const d of vds) d.component = all
    this.#daemons = vds
    this.#byName = new Map(vds.map((d) => [d.name, d]))
  }

  /** The virtual daemons, in configuration order. */
  get daemons(): ReadonlyArray<string> {
    return this.#daemons.map((d) => d.name)
  }

  /** The components now: daemon names, each component in configuration order. */
  components(): ReadonlyArray<ReadonlyArray<string>> {
    const seen: Array<Component> = []
    for (const d of this.#daemons) if (!seen.includes(d.component)) seen.push(d.component)
    return seen.map((c) => c.daemons.map((d) => d.name))
  }

  /** The membership id of the component `daemon` is in (for tests and tools). */
  membershipId(daemon: string): MembershipId | undefined {
    return this.#byName.get(daemon)?.component.memb
  }

  /**
   * Splits or merges the daemons into `components` (each daemon named
   * exactly once) at `nowSeconds`: members see what Spread shows for the
   * change (see `network/network.ts`). Answers the problem with the request,
   * or `undefined` once applied.
   */
  partition(components: ReadonlyArray<ReadonlyArray<string>>, nowSeconds: number): string | undefined {
    const problem = checkComponents(this.#daemons, components)
    if (problem !== undefined) return problem
    this.#run(
      undefined,
      () =>
        applyComponents<SessionState>(
          this.#daemons,
          components,
          nowSeconds | 0,
          (to, bytes) => this.deliver(to, bytes),
        ),
    )
    return undefined
  }

  /** The engine of the virtual daemon called `name`, or `undefined` when there is none. */
  engine(name: string): Engine | undefined {
    const d = this.#byName.get(name)
    return d === undefined ? undefined : new Engine(d.name, d.procId, 0, undefined, { network: this, daemon: d })
  }

  /** The virtual daemon called `name`. @internal */
  daemon(name: string): VirtualDaemon | undefined {
    return this.#byName.get(name)
  }

  /** @internal */
  session(privateGroup: string): SessionState | undefined {
    return this.#sessions.get(privateGroup)
  }

  /** @internal */
  add(daemon: VirtualDaemon, session: EngineSession): void {
    this.#sessions.set(session.privateGroup, {
      session,
      privateGroup: session.privateGroup,
      daemon,
      membership: session.membership,
      groups: new Set(),
      mark: 0,
      live: true,
    })
    this.stats.sessions = this.#sessions.size
  }

  /** @internal */
  run(session: EngineSession | undefined, f: (s: SessionState) => void): void {
    this.#run(session, f)
  }

  #run(session: EngineSession | undefined, f: (s: SessionState) => void): void {
    let s: SessionState | undefined
    if (session !== undefined) {
      s = this.#sessions.get(session.privateGroup)
      if (s === undefined || s.session !== session || !s.live) return
    }
    // Never re-entered: `offer` and `cutOff` only queue bytes or close a
    // socket; a session whose outbox is closed has its disconnect queued in #pending and
    // sequenced right after the current request.
    try {
      f(s as SessionState)
      while (this.#pending.length > 0) {
        const victim = this.#pending.shift()
        if (victim !== undefined) this.disconnect(victim)
      }
    } finally {
      let groups = 0
      let last: Component | undefined
      for (const d of this.#daemons) {
        if (d.component !== last) groups += d.component.groups.size
        last = d.component
      }
      this.stats.groups = groups
      this.stats.sessions = this.#sessions.size
    }
  }

  /** @internal */
  get pending(): number {
    return this.#pending.length
  }

  /** @internal */
  deliver(to: SessionState, bytes: Uint8Array): void {
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

  #sendMembership(g: Group, cause: "Join" | "Leave" | "Disconnect", changed: SessionState): void {
    const bytes = encodeMembership(
      g.name,
      cause,
      g.members.map((m) => m.privateGroup),
      groupIdOf(g),
      changed.privateGroup,
    )
    for (const m of g.members) if (m.membership) this.deliver(m, bytes)
  }

  #groupsOf(s: SessionState): Map<string, Group> {
    // Every group of a network holds SessionStates (see NetGroup).
    return s.daemon.component.groups as unknown as Map<string, Group>
  }

  /** @internal */
  groupsOf(daemon: VirtualDaemon): Map<string, Group> {
    return daemon.component.groups as unknown as Map<string, Group>
  }

  /** @internal */
  join(s: SessionState, name: string, frame: Frame): string | undefined {
    const limits = this.limits
    const groups = this.#groupsOf(s)
    let g = groups.get(name)
    if (g !== undefined && s.groups.has(g)) return undefined
    const refused = g === undefined
      ? groups.size >= limits.maxGroups ? `the daemon has ${limits.maxGroups} groups (maxGroups)` : undefined
      : g.members.length >= limits.maxGroupMembers
      ? `the group has ${limits.maxGroupMembers} members (maxGroupMembers)`
      : undefined
    if (refused !== undefined || s.groups.size >= limits.maxGroupsPerSession) {
      // As Spread past MAX_LOCAL_GROUP_MEMBERS: the joiner alone gets a
      // REJECT (sent whatever its membership flag), and nothing changes.
      this.stats.joinsRefused++
      this.deliver(s, encodeRejectFor(frame, s.privateGroup))
      return refused ?? `the session is in ${limits.maxGroupsPerSession} groups (maxGroupsPerSession)`
    }
    const comp = s.daemon.component
    if (g === undefined) {
      g = { name, members: [], memb: comp.memb, index: 0, daemonMemb: new Map(), changed: false }
      groups.set(name, g)
    }
    insertSorted(g.members, s)
    // A daemon new to the group is in step with the group's id (G_handle_join).
    if (!g.daemonMemb.has(s.daemon)) g.daemonMemb.set(s.daemon, g.memb)
    s.groups.add(g)
    g.index++
    this.#sendMembership(g, "Join", s)
    return undefined
  }

  /** @internal */
  leave(s: SessionState, name: string): void {
    const g = this.#groupsOf(s).get(name)
    if (g === undefined || !s.groups.has(g)) return
    if (s.membership) this.deliver(s, encodeSelfLeave(name))
    this.#drop(s, g, "Leave")
  }

  #drop(s: SessionState, g: Group, cause: "Leave" | "Disconnect"): void {
    g.members.splice(g.members.indexOf(s), 1)
    s.groups.delete(g)
    g.index++
    if (!g.members.some((m) => m.daemon === s.daemon)) g.daemonMemb.delete(s.daemon)
    if (g.members.length === 0) {
      this.#groupsOf(s).delete(g.name)
      return
    }
    this.#sendMembership(g, cause, s)
  }

  /** @internal */
  disconnect(s: SessionState): void {
    s.live = false
    if (this.#sessions.get(s.privateGroup) !== s) return
    this.#sessions.delete(s.privateGroup)
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

  /** @internal */
  multicast(s: SessionState, frame: Frame, selfDiscard: boolean): void {
    this.stats.messagesIn++
    this.stats.bytesIn += frame.bytes.length
    const bytes = toLittleEndian(frame)
    const stamp = ++this.stamp
    if (selfDiscard) s.mark = stamp
    const comp = s.daemon.component
    const groups = comp.groups as unknown as Map<string, Group>
    const n = frame.numGroups
    const b = frame.bytes
    for (let i = 0, o = frame.groupsOffset; i < n; i++, o += MAX_GROUP_NAME) {
      const dest = this.#destination(b, o)
      if (dest.charCodeAt(0) === 0x23) {
        // `#name#daemon`: the session of that name at that daemon, when the
        // daemon is in the sender's component.
        const to = this.#sessions.get(dest)
        if (to !== undefined && to.mark !== stamp && to.daemon.component === comp) {
          to.mark = stamp
          this.deliver(to, bytes)
        }
        continue
      }
      const g = groups.get(dest)
      if (g === undefined) continue
      for (const to of g.members) {
        if (to.mark !== stamp) {
          to.mark = stamp
          this.deliver(to, bytes)
        }
      }
    }
  }
}

/**
 * The engine of one (virtual) daemon: its sessions' requests go to the
 * {@link Network} it belongs to. `new Engine(name, procId, time)` is a
 * daemon alone in its own network.
 *
 * @since 0.1.0
 * @category models
 */
export class Engine {
  readonly #net: Network
  readonly #daemon: VirtualDaemon
  /** Running totals (of the whole network). */
  readonly stats: EngineStats
  constructor(
    daemonName: string,
    procId: number,
    timeSeconds: number,
    limits?: EngineLimits,
    /** Set by {@link Network.engine}: the network and daemon to join. */
    attach?: { readonly network: Network; readonly daemon: VirtualDaemon },
  ) {
    if (attach !== undefined) {
      this.#net = attach.network
      this.#daemon = attach.daemon
    } else {
      this.#net = new Network([{ name: daemonName, procId }], timeSeconds, limits)
      // A network of one always holds its daemon.
      this.#daemon = this.#net.daemon(daemonName) as VirtualDaemon
    }
    this.stats = this.#net.stats
  }

  /** The network this daemon is part of. */
  get network(): Network {
    return this.#net
  }

  /** Whether a private name is in use by an operational session of this daemon. */
  has(privateName: string): boolean {
    return this.#net.session(privateGroupName(privateName, this.#daemon.name)) !== undefined
  }

  /** Adds an operational session (its private group names this daemon). */
  add(session: EngineSession): void {
    this.#net.add(this.#daemon, session)
  }

  /** Members of a group as this daemon's component sees it, in order (for tests and tools). */
  members(group: string): ReadonlyArray<string> {
    return this.#net.groupsOf(this.#daemon).get(group)?.members.map((m) => m.privateGroup) ?? []
  }

  /**
   * Handles a join of `group` by `session`; `frame` is the join itself,
   * returned to the sender in a REJECT when the join is refused. Answers
   * why it was refused (for the log), or `undefined`.
   */
  join(session: EngineSession, group: string, frame: Frame): string | undefined {
    let refused: string | undefined
    this.#net.run(session, (s) => {
      refused = this.#net.join(s, group, frame)
    })
    return refused
  }

  /** Handles a leave of `group` by `session`. */
  leave(session: EngineSession, group: string): void {
    this.#net.run(session, (s) => this.#net.leave(s, group))
  }

  /** Delivers a multicast frame from `session`. */
  multicast(session: EngineSession, frame: Frame, selfDiscard: boolean): void {
    // The hot path: no closure, no try (nothing here throws but a bug).
    const net = this.#net
    const s = net.session(session.privateGroup)
    if (s === undefined || s.session !== session || !s.live) return
    net.multicast(s, frame, selfDiscard)
    if (net.pending > 0) net.run(undefined, () => {})
  }

  /**
   * Removes a session (KILL, EOF, error, or cut off): the other members of
   * its groups get CAUSED_BY_DISCONNECT. Idempotent.
   */
  remove(session: EngineSession): void {
    const net = this.#net
    const s = net.session(session.privateGroup)
    if (s === undefined || s.session !== session) return
    s.live = false
    net.run(undefined, () => net.disconnect(s))
  }
}

const insertSorted = (members: Array<SessionState>, s: SessionState): void => {
  let lo = 0
  let hi = members.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (compareMembers(members[mid], s) < 0) lo = mid + 1
    else hi = mid
  }
  members.splice(lo, 0, s)
}
