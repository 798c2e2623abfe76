/**
 * A synthetic Spread network for the replica's state machine: components of
 * members, each delivering one total order to its members, with the
 * membership messages real Spread 5.0.1 sends (tests/fixtures/spread-traces/
 * 27-network-partition-merge): a join is a `Join` view whose vs_set is the
 * joiner; a partition is a transitional signal then a `Network` view per
 * component with one vs_set (the members that remain); a merge is a `Network`
 * view with the union and one vs_set per former component, the receiver's
 * own marked by `localVsSet`.
 */
import { type MergePolicy, type ReplicaEvent, ReplicaMachine, type ReplicaOutput } from "../../src/client/mod.ts"

/** Operations of the test value: add to a counter, or append to a log. */
export type Op = { readonly add: number } | { readonly note: string }
/** The test value. */
export interface Value {
  readonly n: number
  readonly log: ReadonlyArray<string>
}
export const initial: Value = { n: 0, log: [] }
export const apply = (v: Value, op: Op): Value =>
  "add" in op ? { n: v.n + op.add, log: v.log } : { n: v.n, log: [...v.log, op.note] }

/** An event queued in a component, for the members it had when it was queued. */
interface Pending {
  readonly to: ReadonlyArray<string>
  readonly event: (member: string) => ReplicaEvent<Value, Op>
}

interface ComponentState {
  members: Array<string>
  queue: Array<Pending>
}

const enqueue = (c: ComponentState, event: (member: string) => ReplicaEvent<Value, Op>): void => {
  c.queue.push({ to: [...c.members], event })
}

/** The network (see the module notes). */
export class Net {
  readonly machines = new Map<string, ReplicaMachine<Value, Op>>()
  readonly components: Array<ComponentState> = []
  readonly sent: Array<{ from: string; out: ReplicaOutput<Value> }> = []
  #views = 0
  #ids = 0
  readonly merge: MergePolicy<Value>

  constructor(merge: MergePolicy<Value> = { _tag: "Largest" }) {
    this.merge = merge
  }

  #key(): string {
    return `1:1000:${++this.#views}`
  }

  componentOf(member: string): ComponentState {
    const c = this.components.find((c) => c.members.includes(member))
    if (c === undefined) throw new Error(`no component has ${member}`)
    return c
  }

  /** `member` joins; it starts a component of its own when `alone`, else joins `with`'s component. */
  join(member: string, withMember?: string): void {
    const m = new ReplicaMachine<Value, Op>({
      me: member,
      initial,
      apply,
      merge: this.merge,
      maxKept: 10_000,
    })
    this.machines.set(member, m)
    const c = withMember === undefined ? { members: [], queue: [] } : this.componentOf(withMember)
    if (withMember === undefined) this.components.push(c)
    c.members.push(member)
    const members = [...c.members]
    const key = this.#key()
    enqueue(c, () => ({ _tag: "View", key, cause: "Join", members, vsSets: [[member]], localVsSet: 0 }))
  }

  /** `member` leaves (or disconnects). */
  leave(member: string, cause: "Leave" | "Disconnect" = "Leave"): void {
    const c = this.componentOf(member)
    c.members = c.members.filter((m) => m !== member)
    this.machines.delete(member)
    if (c.members.length === 0) this.components.splice(this.components.indexOf(c), 1)
    const members = [...c.members]
    const key = this.#key()
    enqueue(c, () => ({ _tag: "View", key, cause, members, vsSets: [[member]], localVsSet: 0 }))
  }

  /** `from` multicasts an operation to its component. */
  update(from: string, op: Op): number {
    const id = ++this.#ids
    enqueue(this.componentOf(from), () => ({ _tag: "Op", sender: from, id, op }))
    return id
  }

  /** Splits `from`'s component: `away` become a component of their own. */
  partition(away: ReadonlyArray<string>): void {
    const c = this.componentOf(away[0])
    const stay = c.members.filter((m) => !away.includes(m))
    const gone = c.members.filter((m) => away.includes(m))
    const rest: ComponentState = { members: gone, queue: [...c.queue] }
    c.members = stay
    this.components.push(rest)
    for (const part of [c, rest]) {
      const members = [...part.members]
      const key = this.#key()
      enqueue(part, () => ({ _tag: "View", key, cause: "Network", members, vsSets: [members], localVsSet: 0 }))
    }
  }

  /** Merges the components of `a` and `b` (after both delivered what they hold). */
  mergeComponents(a: string, b: string): void {
    this.run()
    const ca = this.componentOf(a)
    const cb = this.componentOf(b)
    // Real Spread lists the members in daemon order; here b's come first to
    // show the order is not "our component first".
    const members = [...cb.members, ...ca.members]
    const vsSets = [[...cb.members], [...ca.members]]
    ca.members = [...members]
    this.components.splice(this.components.indexOf(cb), 1)
    const key = this.#key()
    enqueue(ca, (me) => ({
      _tag: "View",
      key,
      cause: "Network",
      members,
      vsSets,
      localVsSet: vsSets.findIndex((s) => s.includes(me)),
    }))
  }

  /** Delivers one event of each component with something pending; answers whether any was. */
  step(): boolean {
    let any = false
    for (const c of [...this.components]) {
      const next = c.queue.shift()
      if (next === undefined) continue
      any = true
      for (const member of next.to) {
        const m = this.machines.get(member)
        if (m === undefined || !c.members.includes(member)) continue
        const out: Array<ReplicaOutput<Value>> = []
        if (!m.handle(next.event(member), out)) throw new Error(`${member} failed: ${JSON.stringify(m.failure)}`)
        for (const o of out) this.#outcome(member, o, c)
      }
    }
    return any
  }

  #outcome(from: string, o: ReplicaOutput<Value>, c: ComponentState): void {
    this.sent.push({ from, out: o })
    switch (o._tag) {
      case "SendState": {
        const e: ReplicaEvent<Value, Op> = {
          _tag: "State",
          sender: from,
          for: o.for,
          asOf: o.asOf,
          snapshot: o.snapshot,
        }
        enqueue(c, () => e)
        return
      }
      case "SendMerge": {
        const e: ReplicaEvent<Value, Op> = { _tag: "Merge", sender: from, asOf: o.asOf, vs: o.vs, snapshot: o.snapshot }
        enqueue(c, () => e)
        return
      }
      default:
        return
    }
  }

  /** Delivers everything pending. */
  run(): void {
    while (this.step()) {
      // until quiet
    }
  }

  /** Each member's value (undefined while it has none). */
  values(members: ReadonlyArray<string> = [...this.machines.keys()]): Array<Value | undefined> {
    return members.map((m) => this.machines.get(m)?.value)
  }
}
