/**
 * A simulated Spread network in one process: several named virtual daemons
 * sharing one sequencer, which can be split into components and merged
 * again.
 *
 * Each component is its own Spread configuration: it has a membership id
 * (`{proc id of its first daemon in configuration order, a time}`), its own
 * copy of every group (members at the component's daemons only), and
 * delivers only among its members. Since every request is handled start to
 * finish in one call (see `engine.ts`), the order in which requests are
 * handled is the total order inside every component.
 *
 * A partition or merge is applied between two requests, the way Spread's
 * groups layer (`groups.c`, 5.0.1) applies a transitional and then a regular
 * configuration, per daemon:
 *
 * - transitional phase: the daemons a daemon keeps from its old component
 *   form its transitional configuration. Every group with a member at a
 *   daemon outside it gets the TRANSITION_MESS signal (carrying the group's
 *   old id) at the daemon's members, in group-name order, and is marked
 *   changed.
 * - regular phase: the new component's membership id is formed. A group is
 *   changed when it lost daemons in the transitional phase or when copies of
 *   it from different old components meet. Every changed group gets the id
 *   `{new membership id, 1}` and a CAUSED_BY_NETWORK membership whose vs
 *   sets hold the members that came together (ordered by the membership id
 *   each daemon's copy had, then configuration order), with the offset of
 *   the recipient's own set. Unchanged groups keep their id and hear
 *   nothing.
 *
 * @module
 */
import { MAX_GROUP_NAME, ServiceBits } from "../../protocol/constants.ts"
import { encodeFrame } from "../../protocol/frame.ts"
import { writeU32 } from "../../protocol/bytes.ts"
import { encodeTransitional } from "../../protocol/daemon_encoders.ts"
import type { GroupId } from "../../protocol/server_messages.ts"

/**
 * A configuration's membership id: the proc id of its first daemon in
 * configuration order and a time in seconds.
 *
 * @since 0.2.0
 * @category models
 */
export interface MembershipId {
  readonly procId: number
  readonly time: number
}

/**
 * One virtual daemon of a {@link NetworkState}.
 *
 * @since 0.2.0
 * @category models
 */
export interface VirtualDaemon {
  /** The daemon name (`#name#<daemon>`). */
  readonly name: string
  /** Its proc id (in membership ids). */
  readonly procId: number
  /** Its place in the configuration (0 first). */
  readonly index: number
  /** The component it is in now. */
  component: Component
  /** The last membership time it formed as a representative (Spread's `Last_time_used`). */
  lastTime: number
}

/**
 * A member of a group: what the network needs of a session.
 *
 * @since 0.2.0
 * @category models
 */
export interface NetMember {
  /** `#name#daemon`. */
  readonly privateGroup: string
  /** The daemon it is connected to. */
  readonly daemon: VirtualDaemon
  /** Whether it receives membership messages. */
  readonly membership: boolean
  /** The groups it is in (the copies of its component). */
  readonly groups: Set<NetGroup<NetMember>>
}

/**
 * One component's copy of a group.
 *
 * @since 0.2.0
 * @category models
 */
export interface NetGroup<M extends NetMember> {
  readonly name: string
  /** Members ordered by daemon (configuration order), then by private group name. */
  members: Array<M>
  /** `{membership id, index}`. */
  memb: MembershipId
  index: number
  /** The membership id each daemon's part of the group was last in step with. */
  readonly daemonMemb: Map<VirtualDaemon, MembershipId>
  /** Set by a transitional configuration that took daemons away. */
  changed: boolean
}

/**
 * A component: daemons that reach each other, and their groups.
 *
 * @since 0.2.0
 * @category models
 */
export interface Component {
  /** Daemons in configuration order. */
  readonly daemons: ReadonlyArray<VirtualDaemon>
  /** The configuration's membership id. */
  readonly memb: MembershipId
  /** Its groups (each holds members of one engine's member type; see `engine.ts`). */
  readonly groups: Map<string, NetGroup<NetMember>>
}

/** What a partition sends: `to` receives `bytes`. */
export type Deliver<M> = (to: M, bytes: Uint8Array) => void

/**
 * Orders two members as Spread lists them: daemon in configuration order,
 * then private group name byte-wise.
 *
 * @since 0.2.0
 * @category models
 */
export const compareMembers = (a: NetMember, b: NetMember): number =>
  a.daemon.index !== b.daemon.index
    ? a.daemon.index - b.daemon.index
    : a.privateGroup < b.privateGroup
    ? -1
    : a.privateGroup > b.privateGroup
    ? 1
    : 0

/** Spread's G_compare_memb_ids: proc id (C int32 difference), then time. */
const compareMembIds = (a: MembershipId, b: MembershipId): number =>
  a.procId !== b.procId ? ((a.procId | 0) - (b.procId | 0)) | 0 : ((a.time | 0) - (b.time | 0)) | 0

const sameMemb = (a: MembershipId, b: MembershipId): boolean => a.procId === b.procId && a.time === b.time

/**
 * Forms a membership id for a configuration led by `leader` at `nowSeconds`:
 * never the same time twice for one leader, as Spread's membership keeps
 * `Last_time_used`.
 */
const formMemb = (leader: VirtualDaemon, nowSeconds: number): MembershipId => {
  const time = nowSeconds <= leader.lastTime ? leader.lastTime + 1 : nowSeconds
  leader.lastTime = time
  return { procId: leader.procId, time }
}

/**
 * The group id of a group.
 *
 * @since 0.2.0
 * @category models
 */
export const groupIdOf = (g: NetGroup<NetMember>): GroupId => ({
  procId: g.memb.procId,
  time: g.memb.time,
  index: g.index,
})

/**
 * Encodes a CAUSED_BY_NETWORK membership: the members in the groups array;
 * the body holds the group id, the vs sets and the offset of `own` (the set
 * holding the recipient's daemon).
 *
 * @since 0.2.0
 * @category encoding
 */
export const encodeNetworkMembership = (
  group: string,
  members: ReadonlyArray<string>,
  groupId: GroupId,
  vsSets: ReadonlyArray<ReadonlyArray<string>>,
  own: number,
): Uint8Array => {
  let size = 20
  for (const s of vsSets) size += 4 + s.length * MAX_GROUP_NAME
  const body = new Uint8Array(size)
  writeU32(body, 0, groupId.procId, true)
  writeU32(body, 4, groupId.time, true)
  writeU32(body, 8, groupId.index, true)
  writeU32(body, 12, vsSets.length, true)
  let o = 20
  let ownOffset = 0
  for (let i = 0; i < vsSets.length; i++) {
    if (i === own) ownOffset = o - 20
    const s = vsSets[i]
    writeU32(body, o, s.length, true)
    o += 4
    for (const name of s) {
      for (let k = 0; k < name.length && k < MAX_GROUP_NAME - 1; k++) body[o + k] = name.charCodeAt(k) & 0xff
      o += MAX_GROUP_NAME
    }
  }
  writeU32(body, 16, ownOffset, true)
  return encodeFrame({
    type: ServiceBits.REG_MEMB_MESS | ServiceBits.CAUSED_BY_NETWORK,
    name: group,
    groups: members,
    data: body,
  })
}

/**
 * Why a partition was refused.
 *
 * @since 0.2.0
 * @category models
 */
export type PartitionProblem = string

/**
 * Checks a requested split: every daemon named exactly once, no empty
 * component. Answers the problem, quoting the value, or `undefined`.
 *
 * @since 0.2.0
 * @category models
 */
export const checkComponents = (
  daemons: ReadonlyArray<VirtualDaemon>,
  components: ReadonlyArray<ReadonlyArray<string>>,
): PartitionProblem | undefined => {
  const seen = new Set<string>()
  const known = new Set(daemons.map((d) => d.name))
  for (const c of components) {
    if (c.length === 0) return "a component is empty"
    for (const n of c) {
      if (!known.has(n)) return `unknown daemon "${n}" (daemons: ${[...known].map((k) => `"${k}"`).join(", ")})`
      if (seen.has(n)) return `daemon "${n}" is in two components`
      seen.add(n)
    }
  }
  const missing = [...known].filter((n) => !seen.has(n))
  if (missing.length > 0) return `daemon "${missing[0]}" is in no component`
  return undefined
}

/**
 * The initial component holding every daemon, formed at `nowSeconds`.
 *
 * @since 0.2.0
 * @category constructors
 */
export const initialComponent = (daemons: ReadonlyArray<VirtualDaemon>, nowSeconds: number): Component => {
  const first = daemons[0]
  const memb: MembershipId = first === undefined ? { procId: 0, time: nowSeconds } : formMemb(first, nowSeconds)
  return { daemons: [...daemons].sort((a, b) => a.index - b.index), memb, groups: new Map() }
}

/**
 * Applies a new set of components (names, each daemon exactly once; check
 * with {@link checkComponents} first): sends the transitional signals and
 * the network memberships through `deliver`, and moves every daemon to its
 * new component. Components that do not change are left as they are.
 *
 * @since 0.2.0
 * @category combinators
 */
export const applyComponents = <M extends NetMember>(
  daemons: ReadonlyArray<VirtualDaemon>,
  components: ReadonlyArray<ReadonlyArray<string>>,
  nowSeconds: number,
  deliver: Deliver<M>,
): void => {
  const byName = new Map(daemons.map((d) => [d.name, d]))
  const wanted: Array<Array<VirtualDaemon>> = components.map((c) =>
    c.map((n) => byName.get(n)).filter((d): d is VirtualDaemon => d !== undefined).sort((a, b) => a.index - b.index)
  )
  // Components whose daemons stay exactly together are untouched.
  const sameAsOld = (ds: ReadonlyArray<VirtualDaemon>): boolean => {
    const old = ds[0].component
    return old.daemons.length === ds.length && ds.every((d) => d.component === old)
  }
  const changing = wanted.filter((ds) => !sameAsOld(ds))
  if (changing.length === 0) return

  // Transitional phase, per old component and per new component it feeds:
  // the daemons that stay together form a synced set.
  interface Synced {
    readonly old: Component
    readonly daemons: ReadonlyArray<VirtualDaemon>
    /** Group copies after the transitional phase. */
    readonly groups: Map<string, NetGroup<M>>
  }
  const syncedOf: Array<Array<Synced>> = []
  for (const ds of changing) {
    const sets: Array<Synced> = []
    const olds: Array<Component> = []
    for (const d of ds) if (!olds.includes(d.component)) olds.push(d.component)
    for (const old of olds) {
      const keep = ds.filter((d) => d.component === old)
      const lost = old.daemons.length !== keep.length
      const transMemb = lost ? formMemb(keep[0], nowSeconds) : old.memb
      const groups = new Map<string, NetGroup<M>>()
      for (const name of [...old.groups.keys()].sort()) {
        // Every group of a network holds members of the one type M.
        const g = old.groups.get(name) as unknown as NetGroup<M>
        const keptMembers = g.members.filter((m) => keep.includes(m.daemon))
        if (keptMembers.length === 0) continue
        // A copy per new component: the old copy may feed several.
        const copy: NetGroup<M> = {
          name: g.name,
          members: keptMembers,
          memb: g.memb,
          index: g.index,
          daemonMemb: new Map([...g.daemonMemb].filter(([d]) => keep.includes(d))),
          changed: g.changed,
        }
        const partitioned = [...g.daemonMemb.keys()].some((d) => !keep.includes(d))
        if (partitioned) {
          const signal = encodeTransitional(g.name, groupIdOf(g))
          for (const m of keptMembers) if (m.membership) deliver(m, signal)
          copy.memb = transMemb
          copy.index = 1
          copy.changed = true
          for (const d of copy.daemonMemb.keys()) copy.daemonMemb.set(d, transMemb)
        }
        groups.set(name, copy)
      }
      sets.push({ old, daemons: keep, groups })
    }
    syncedOf.push(sets)
  }

  // Regular phase: form each new component and tell changed groups.
  for (let i = 0; i < changing.length; i++) {
    const ds = changing[i]
    const memb = formMemb(ds[0], nowSeconds)
    const component: Component = { daemons: ds, memb, groups: new Map() }
    const names = new Set<string>()
    for (const s of syncedOf[i]) for (const n of s.groups.keys()) names.add(n)
    for (const name of [...names].sort()) {
      const copies = syncedOf[i].map((s) => s.groups.get(name)).filter((g): g is NetGroup<M> => g !== undefined)
      const first = copies[0]
      const merged: NetGroup<M> = copies.length === 1 ? first : {
        name,
        members: copies.flatMap((g) => g.members).sort(compareMembers),
        memb: first.memb,
        index: first.index,
        daemonMemb: new Map(copies.flatMap((g) => [...g.daemonMemb])),
        changed: true,
      }
      component.groups.set(name, merged as unknown as NetGroup<NetMember>)
      if (!merged.changed) continue
      // vs sets: daemons ordered by the membership id they were in step
      // with, then configuration order; one set per distinct id.
      const order = [...merged.daemonMemb].sort(([da, ma], [db, mb]) => compareMembIds(ma, mb) || da.index - db.index)
      const sets: Array<Array<string>> = []
      const setOf = new Map<VirtualDaemon, number>()
      let last: MembershipId | undefined
      for (const [d, m] of order) {
        if (last === undefined || !sameMemb(last, m)) {
          sets.push([])
          last = m
        }
        setOf.set(d, sets.length - 1)
        for (const member of merged.members) if (member.daemon === d) sets[sets.length - 1].push(member.privateGroup)
      }
      merged.memb = memb
      merged.index = 1
      merged.changed = false
      for (const d of merged.daemonMemb.keys()) merged.daemonMemb.set(d, memb)
      const list = merged.members.map((m) => m.privateGroup)
      const gid = groupIdOf(merged)
      const perDaemon = new Map<VirtualDaemon, Uint8Array>()
      for (const m of merged.members) {
        if (!m.membership) continue
        let bytes = perDaemon.get(m.daemon)
        if (bytes === undefined) {
          bytes = encodeNetworkMembership(name, list, gid, sets, setOf.get(m.daemon) ?? 0)
          perDaemon.set(m.daemon, bytes)
        }
        deliver(m, bytes)
      }
    }
    // Members now belong to the new component's copies of their groups.
    const touched = new Set<M>()
    for (const g of component.groups.values()) for (const m of g.members) touched.add(m as M)
    for (const m of touched) m.groups.clear()
    for (const g of component.groups.values()) for (const m of g.members) m.groups.add(g)
    for (const d of ds) d.component = component
  }
}
