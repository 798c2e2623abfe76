/**
 * The replica's state machine, pure: no Effect, no IO, no clock. It is fed
 * the group's events in the order the daemon delivered them — views
 * (membership messages), operations, state transfers and merge messages,
 * already decoded — and answers what to send. Every member feeds its own
 * machine the same sequence (Spread's total order and virtual synchrony),
 * so every member computes the same value, the same state holders and the
 * same choice of who sends a state transfer. replicated.ts drives it over a
 * connection; tests drive it with synthetic sequences.
 *
 * States (a tagged union, {@link Phase}):
 *
 * - `Joining`: no state yet. Every event from the first view on is kept,
 *   until a state transfer naming this member arrives: the snapshot (as of
 *   the view it names) replaces the state, and the events kept after that
 *   view are replayed — so an operation is applied exactly once.
 * - `Live`: holds the value; applies operations in delivered order.
 * - `Merging`: a network view brought components together; every member
 *   announces its component's state, events are kept until every member of
 *   the view has announced (or left), then the merge policy picks the value
 *   and the kept events are replayed.
 *
 * @module
 */

/**
 * A replica's transferable state: the value, the members known to hold it
 * (oldest holder first), and the joiners promised a transfer (joiner →
 * provider).
 *
 * @since 0.3.0
 * @category models
 */
export interface Snapshot<A> {
  /** The value. */
  readonly value: A
  /** The members that hold it, oldest holder first. */
  readonly holders: ReadonlyArray<string>
  /** Joiners promised a transfer, each with its provider. */
  readonly assigned: ReadonlyArray<readonly [string, string]>
}

/**
 * One component of a merge: the members that came through the partition
 * together (a vs_set of the network-caused membership) and their value.
 *
 * @since 0.3.0
 * @category models
 */
export interface Component<A> {
  /** The component's members, as the membership's vs_set lists them. */
  readonly members: ReadonlyArray<string>
  /** The value they held. */
  readonly value: A
}

/**
 * How the value is chosen when a network-caused membership brings
 * components together (see docs/replicated.md):
 *
 * - `Largest`: the value of the component with the most members; a tie goes
 *   to the component listed first (the one whose first member comes first in
 *   the new view's member list).
 * - `First`: the value of the component listed first.
 * - `Custom`: `merge(components)`, components in that order; it must be a
 *   pure function of its argument (every member calls it with the same one).
 *
 * Components whose members held no value (joiners still waiting for their
 * transfer) are left out; a merge with no value at all starts from `initial`.
 *
 * @since 0.3.0
 * @category models
 */
export type MergePolicy<A> =
  | { readonly _tag: "Largest" }
  | { readonly _tag: "First" }
  | { readonly _tag: "Custom"; readonly merge: (components: ReadonlyArray<Component<A>>) => A }

/**
 * An event of the group, decoded, in delivered order.
 *
 * @since 0.3.0
 * @category models
 */
export type ReplicaEvent<A, Op> =
  | {
    readonly _tag: "View"
    /** The view's group id, as a string (`procId:time:index`). */
    readonly key: string
    readonly cause: "Join" | "Leave" | "Disconnect" | "Network"
    readonly members: ReadonlyArray<string>
    readonly vsSets: ReadonlyArray<ReadonlyArray<string>>
    readonly localVsSet: number
  }
  | { readonly _tag: "Op"; readonly sender: string; readonly id: number; readonly op: Op }
  | {
    readonly _tag: "State"
    readonly sender: string
    readonly for: ReadonlyArray<string>
    readonly asOf: string
    readonly snapshot: Snapshot<A>
  }
  | {
    readonly _tag: "Merge"
    readonly sender: string
    readonly asOf: string
    readonly vs: ReadonlyArray<string>
    readonly snapshot: Snapshot<A> | undefined
  }

/**
 * What the machine asks its driver to do, or tells it, after an event.
 *
 * @since 0.3.0
 * @category models
 */
export type ReplicaOutput<A> =
  | {
    readonly _tag: "SendState"
    readonly for: ReadonlyArray<string>
    readonly asOf: string
    readonly snapshot: Snapshot<A>
  }
  | {
    readonly _tag: "SendMerge"
    readonly asOf: string
    readonly vs: ReadonlyArray<string>
    readonly snapshot: Snapshot<A> | undefined
  }
  | { readonly _tag: "Applied"; readonly sender: string; readonly id: number; readonly value: A }
  | { readonly _tag: "Ready"; readonly value: A; readonly via: "Alone" | "Transfer" | "Merge" }
  | {
    readonly _tag: "Merged"
    readonly asOf: string
    readonly components: ReadonlyArray<Component<A>>
    readonly value: A
  }

/**
 * What a member holding the value knows (mutable, owned by its machine).
 *
 * @since 0.3.0
 * @category models
 */
export interface Core<A> {
  /** The value. */
  value: A
  /** The members that hold it, oldest holder first. */
  holders: Array<string>
  /** Joiners promised a transfer → their provider. */
  assigned: Map<string, string>
  /** The current view's members, in the daemon's order. */
  members: ReadonlyArray<string>
}

/**
 * The machine's phase.
 *
 * @since 0.3.0
 * @category models
 */
export type Phase<A, Op> =
  | { readonly _tag: "Joining"; readonly kept: Array<ReplicaEvent<A, Op>> }
  | { readonly _tag: "Live"; readonly core: Core<A> }
  | {
    readonly _tag: "Merging"
    readonly asOf: string
    readonly members: ReadonlyArray<string>
    readonly own: Core<A> | undefined
    readonly vs: ReadonlyArray<string>
    readonly waiting: Set<string>
    readonly received: Map<string, Component<A>>
    readonly kept: Array<ReplicaEvent<A, Op>>
  }

/**
 * Why the machine refused an event sequence.
 *
 * - `Overflow`: more than `maxKept` events kept while joining or merging.
 *
 * @since 0.3.0
 * @category models
 */
export type MachineFailure = { readonly _tag: "Overflow"; readonly kept: number }

/**
 * Settings of a {@link ReplicaMachine}.
 *
 * @since 0.3.0
 * @category models
 */
export interface MachineOptions<A, Op> {
  /** This member's private group. */
  readonly me: string
  /** The value of a group's first member. */
  readonly initial: A
  /**
   * The value this member held before it rejoined (after a reconnect): used
   * instead of `initial` when it is alone in its first view.
   */
  readonly resume?: A | undefined
  /** Applies one operation (pure: every member calls it with the same arguments). */
  readonly apply: (value: A, op: Op) => A
  /** The merge policy. */
  readonly merge: MergePolicy<A>
  /** Events kept at most while joining or merging; beyond, the machine fails. */
  readonly maxKept: number
}

/**
 * The replica's state machine (see the module notes).
 *
 * @since 0.3.0
 * @category models
 */
export class ReplicaMachine<A, Op> {
  #phase: Phase<A, Op> = { _tag: "Joining", kept: [] }
  #failure: MachineFailure | undefined
  readonly #o: MachineOptions<A, Op>

  /** A machine that has seen nothing yet (`Joining`). */
  constructor(options: MachineOptions<A, Op>) {
    this.#o = options
  }

  /** The phase now. */
  get phase(): Phase<A, Op> {
    return this.#phase
  }

  /** The value, once there is one. */
  get value(): A | undefined {
    return this.#phase._tag === "Live" ? this.#phase.core.value : undefined
  }

  /** The members known to hold the value (oldest holder first), while `Live`. */
  get holders(): ReadonlyArray<string> {
    return this.#phase._tag === "Live" ? this.#phase.core.holders : []
  }

  /** Why the machine stopped, if it did. */
  get failure(): MachineFailure | undefined {
    return this.#failure
  }

  /**
   * Feeds one event; appends to `out` what to send or report. Answers
   * `false` once the machine failed (see {@link failure}).
   */
  handle(e: ReplicaEvent<A, Op>, out: Array<ReplicaOutput<A>>): boolean {
    if (this.#failure !== undefined) return false
    const p = this.#phase
    switch (p._tag) {
      case "Joining":
        return this.#joining(p.kept, e, out)
      case "Live":
        this.#live(p.core, e, out)
        return true
      case "Merging":
        return this.#merging(p, e, out)
    }
  }

  #keep(kept: Array<ReplicaEvent<A, Op>>, e: ReplicaEvent<A, Op>): boolean {
    if (kept.length >= this.#o.maxKept) {
      this.#failure = { _tag: "Overflow", kept: kept.length }
      return false
    }
    kept.push(e)
    return true
  }

  #joining(kept: Array<ReplicaEvent<A, Op>>, e: ReplicaEvent<A, Op>, out: Array<ReplicaOutput<A>>): boolean {
    const me = this.#o.me
    switch (e._tag) {
      case "View": {
        if (!e.members.includes(me)) return true
        if (e.cause === "Network" && e.vsSets.length > 1) {
          this.#startMerge(undefined, e, out)
          return true
        }
        if (e.cause !== "Network" && e.members.length === 1 && e.members[0] === me) {
          // Alone in the group: nobody else holds a value — the group's first member,
          // or every holder left before the transfer. Start from `initial` (or, back
          // from a reconnect and alone in the first view, from the value held before).
          const value = this.#o.resume !== undefined && kept.length === 0 ? this.#o.resume : this.#o.initial
          const core: Core<A> = { value, holders: [me], assigned: new Map(), members: e.members }
          this.#phase = { _tag: "Live", core }
          out.push({ _tag: "Ready", value: core.value, via: "Alone" })
          return true
        }
        return this.#keep(kept, e)
      }
      case "Op":
      case "Merge":
        // Before the first view nothing is ours; after it, keep for the replay.
        return kept.length === 0 ? true : this.#keep(kept, e)
      case "State": {
        if (kept.length === 0) return true
        if (!e.for.includes(me)) return this.#keep(kept, e)
        const at = kept.findIndex((k) => k._tag === "View" && k.key === e.asOf)
        if (at < 0) return this.#keep(kept, e)
        const s = e.snapshot
        const core: Core<A> = {
          value: s.value,
          holders: [...s.holders],
          assigned: new Map(s.assigned),
          members: (kept[at] as { members: ReadonlyArray<string> }).members,
        }
        this.#phase = { _tag: "Live", core }
        const replay: Array<ReplicaOutput<A>> = []
        for (let i = at + 1; i < kept.length; i++) this.#replayOne(kept[i], replay)
        this.#replayOne(e, replay)
        if (this.#failure !== undefined) return false
        const now = this.#phase
        out.push({ _tag: "Ready", value: now._tag === "Live" ? now.core.value : s.value, via: "Transfer" })
        for (const o of replay) out.push(o)
        return true
      }
    }
  }

  // Replays a kept event through whatever phase the machine is in now.
  #replayOne(e: ReplicaEvent<A, Op>, out: Array<ReplicaOutput<A>>): void {
    this.handle(e, out)
  }

  #live(core: Core<A>, e: ReplicaEvent<A, Op>, out: Array<ReplicaOutput<A>>): void {
    switch (e._tag) {
      case "Op":
        core.value = this.#o.apply(core.value, e.op)
        out.push({ _tag: "Applied", sender: e.sender, id: e.id, value: core.value })
        return
      case "State":
        for (const m of e.for) {
          core.assigned.delete(m)
          if (!core.holders.includes(m) && core.members.includes(m)) core.holders.push(m)
        }
        return
      case "Merge":
        return
      case "View": {
        if (e.cause === "Network" && e.vsSets.length > 1) {
          this.#startMerge(core, e, out)
          return
        }
        this.#view(core, e, out)
        return
      }
    }
  }

  // A view that merges nothing: forget who left, promise a transfer to
  // every member without the value whose provider (if any) is gone.
  #view(core: Core<A>, e: Extract<ReplicaEvent<A, Op>, { _tag: "View" }>, out: Array<ReplicaOutput<A>>): void {
    const members = e.members
    core.members = members
    core.holders = core.holders.filter((h) => members.includes(h))
    for (const [j, p] of core.assigned) {
      if (!members.includes(j) || !members.includes(p)) core.assigned.delete(j)
    }
    const provider = members.find((m) => core.holders.includes(m))
    if (provider === undefined) return
    const needing = members.filter((m) => !core.holders.includes(m) && !core.assigned.has(m))
    if (needing.length === 0) return
    for (const j of needing) core.assigned.set(j, provider)
    if (provider === this.#o.me) {
      out.push({ _tag: "SendState", for: needing, asOf: e.key, snapshot: snapshotOf(core) })
    }
  }

  #startMerge(
    own: Core<A> | undefined,
    e: Extract<ReplicaEvent<A, Op>, { _tag: "View" }>,
    out: Array<ReplicaOutput<A>>,
  ): void {
    const vs = e.vsSets[e.localVsSet] ?? [this.#o.me]
    this.#phase = {
      _tag: "Merging",
      asOf: e.key,
      members: e.members,
      own,
      vs,
      waiting: new Set(e.members),
      received: new Map(),
      kept: [],
    }
    out.push({ _tag: "SendMerge", asOf: e.key, vs, snapshot: own === undefined ? undefined : snapshotOf(own) })
  }

  #merging(
    p: Extract<Phase<A, Op>, { _tag: "Merging" }>,
    e: ReplicaEvent<A, Op>,
    out: Array<ReplicaOutput<A>>,
  ): boolean {
    switch (e._tag) {
      case "Merge": {
        if (e.asOf !== p.asOf) return true
        p.waiting.delete(e.sender)
        const key = componentKey(e.vs)
        if (e.snapshot !== undefined && !p.received.has(key)) {
          p.received.set(key, { members: e.vs, value: e.snapshot.value })
        }
        if (p.waiting.size === 0) this.#finishMerge(p, out)
        return this.#failure === undefined
      }
      case "View": {
        if (e.cause === "Network" && e.vsSets.length > 1) {
          // A new merge before this one ended: finish this one with what came,
          // then start anew. If this member's own side's value did not come
          // (the new change came before any announcement was delivered), it
          // counts that value: without it, a merge of nothing would reset
          // every holder to `initial`. Members of different sides may then
          // hold different values, but only until the new merge, which takes
          // one value per vs set (the first announced), the same at every member.
          const key = componentKey(p.vs)
          if (p.own !== undefined && !p.received.has(key)) {
            p.received.set(key, { members: p.vs, value: p.own.value })
          }
          this.#finishMerge(p, out)
          if (this.#failure !== undefined) return false
          return this.handle(e, out)
        }
        for (const w of p.waiting) if (!e.members.includes(w)) p.waiting.delete(w)
        if (!this.#keep(p.kept, e)) return false
        if (p.waiting.size === 0) this.#finishMerge(p, out)
        return this.#failure === undefined
      }
      case "Op":
      case "State":
        return this.#keep(p.kept, e)
    }
  }

  #finishMerge(p: Extract<Phase<A, Op>, { _tag: "Merging" }>, out: Array<ReplicaOutput<A>>): void {
    const order = (c: Component<A>): number => {
      const i = c.members.reduce((best, m) => {
        const at = p.members.indexOf(m)
        return at >= 0 && at < best ? at : best
      }, Number.MAX_SAFE_INTEGER)
      return i
    }
    const components = [...p.received.values()].sort((a, b) =>
      order(a) - order(b) || componentKey(a.members).localeCompare(componentKey(b.members))
    )
    const value = components.length === 0 ? this.#o.initial : this.#pick(components)
    const members = p.members
    const core: Core<A> = { value, holders: [...members], assigned: new Map(), members }
    const wasLive = p.own !== undefined
    this.#phase = { _tag: "Live", core }
    if (!wasLive) out.push({ _tag: "Ready", value, via: "Merge" })
    out.push({ _tag: "Merged", asOf: p.asOf, components, value })
    for (const k of p.kept) this.#replayOne(k, out)
  }

  #pick(components: ReadonlyArray<Component<A>>): A {
    const policy = this.#o.merge
    switch (policy._tag) {
      case "First":
        return components[0].value
      case "Largest": {
        let best = components[0]
        for (const c of components) if (c.members.length > best.members.length) best = c
        return best.value
      }
      case "Custom":
        return policy.merge(components)
    }
  }
}

const snapshotOf = <A>(core: Core<A>): Snapshot<A> => ({
  value: core.value,
  holders: [...core.holders],
  assigned: [...core.assigned],
})

const componentKey = (vs: ReadonlyArray<string>): string => [...vs].sort().join("\u0000")
