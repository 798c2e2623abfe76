import { describe, expect, it } from "@effect/vitest"
import { ReplicaMachine, type ReplicaOutput } from "../../src/client/mod.ts"
import { apply, initial, Net, type Op, type Value } from "./_replicated_net.ts"
import { Prng } from "../_helpers/prng.ts"

const sum = (v: Value | undefined) => v?.n

// A machine for "#j#d1" that has just joined "#a#d1"'s group (view v2), and its output.
const joiner = (maxKept = 100) => {
  const m = new ReplicaMachine<Value, Op>({ me: "#j#d1", initial, apply, merge: { _tag: "Largest" }, maxKept })
  const out: Array<ReplicaOutput<Value>> = []
  m.handle(
    { _tag: "View", key: "v2", cause: "Join", members: ["#a#d1", "#j#d1"], vsSets: [["#j#d1"]], localVsSet: 0 },
    out,
  )
  return { m, out }
}

/**
 * a and d hold 3; j joins from a, its join view is delivered, and a's
 * transfer to it is lost (the partition that follows cuts it off).
 */
const joinerWithLostTransfer = (): Net => {
  const net = new Net()
  net.join("#a#d1")
  net.join("#d#d2", "#a#d1")
  net.run()
  net.update("#a#d1", { add: 3 })
  net.join("#j#d2", "#a#d1")
  const c = net.componentOf("#a#d1")
  net.step()
  net.step()
  c.queue.length = 0
  return net
}

describe("ReplicaMachine", () => {
  it("ReplicaMachine: the group's first member starts from initial; joiners get the value by transfer from the first holder", () => {
    const net = new Net()
    net.join("#a#d1")
    net.run()
    net.update("#a#d1", { add: 5 })
    net.join("#b#d1", "#a#d1")
    net.update("#a#d1", { add: 1 })
    net.join("#c#d1", "#a#d1")
    net.update("#b#d1", { add: 10 })
    net.run()
    expect(net.values(["#a#d1", "#b#d1", "#c#d1"]).map(sum)).toEqual([16, 16, 16])
    // One transfer per joiner, both from the oldest holder.
    const transfers = net.sent.filter((s) => s.out._tag === "SendState")
    expect(transfers.map((s) => [s.from, s.out._tag === "SendState" ? s.out.for : []])).toEqual([
      ["#a#d1", ["#b#d1"]],
      ["#a#d1", ["#c#d1"]],
    ])
    expect(net.machines.get("#c#d1")?.holders).toEqual(["#a#d1", "#b#d1", "#c#d1"])
  })

  it("ReplicaMachine: operations delivered between the join and the transfer are applied after it, exactly once", () => {
    const { m, out } = joiner()
    m.handle({ _tag: "Op", sender: "#a#d1", id: 1, op: { add: 1 } }, out)
    m.handle({ _tag: "Op", sender: "#a#d1", id: 2, op: { note: "x" } }, out)
    expect(m.value).toBeUndefined()
    // The provider's snapshot is as of v2: it does not hold ops 1 and 2.
    m.handle({
      _tag: "State",
      sender: "#a#d1",
      for: ["#j#d1"],
      asOf: "v2",
      snapshot: { value: { n: 100, log: ["old"] }, holders: ["#a#d1"], assigned: [["#j#d1", "#a#d1"]] },
    }, out)
    m.handle({ _tag: "Op", sender: "#a#d1", id: 3, op: { add: 1 } }, out)
    expect(m.value).toEqual({ n: 102, log: ["old", "x"] })
    expect(m.holders).toEqual(["#a#d1", "#j#d1"])
    expect(out.filter((o) => o._tag === "Ready").length).toBe(1)
  })

  it("ReplicaMachine: a transfer for someone else is replayed, and a later one for this member is taken once", () => {
    const net = new Net()
    net.join("#a#d1")
    net.update("#a#d1", { add: 1 })
    net.join("#b#d1", "#a#d1")
    net.join("#c#d1", "#a#d1")
    net.update("#a#d1", { add: 2 })
    net.join("#d#d1", "#a#d1")
    net.update("#b#d1", { add: 3 })
    net.run()
    expect(net.values().map(sum)).toEqual([6, 6, 6, 6])
  })

  it("ReplicaMachine: when the provider leaves before its transfer, the next holder sends it", () => {
    const net = new Net()
    net.join("#a#d1")
    net.join("#b#d1", "#a#d1")
    net.run()
    net.update("#b#d1", { add: 7 })
    net.join("#c#d1", "#a#d1")
    // a is the provider of c's transfer, and disconnects before it could send.
    const c = net.componentOf("#a#d1")
    net.step() // the op
    net.step() // c's join view: a is assigned, its SendState is queued
    c.queue.pop() // ... and lost with a
    net.leave("#a#d1", "Disconnect")
    net.run()
    expect(net.values(["#b#d1", "#c#d1"]).map(sum)).toEqual([7, 7])
    const transfers = net.sent.filter((s) => s.out._tag === "SendState").map((s) => s.from)
    expect(transfers).toEqual(["#a#d1", "#a#d1", "#b#d1"])
  })

  it("ReplicaMachine: a member alone after every holder left starts from initial", () => {
    const { m, out } = joiner()
    m.handle({ _tag: "Op", sender: "#a#d1", id: 1, op: { add: 1 } }, out)
    expect(m.value).toBeUndefined()
    m.handle({ _tag: "View", key: "v3", cause: "Leave", members: ["#j#d1"], vsSets: [["#a#d1"]], localVsSet: 0 }, out)
    expect(m.value).toEqual(initial)
  })

  it("ReplicaMachine: fails with Overflow when more than maxKept events arrive while joining", () => {
    const { m, out } = joiner(3)
    expect(m.handle({ _tag: "Op", sender: "#a#d1", id: 1, op: { add: 1 } }, out)).toBe(true)
    expect(m.handle({ _tag: "Op", sender: "#a#d1", id: 2, op: { add: 1 } }, out)).toBe(true)
    expect(m.handle({ _tag: "Op", sender: "#a#d1", id: 3, op: { add: 1 } }, out)).toBe(false)
    expect(m.failure).toEqual({ _tag: "Overflow", kept: 3 })
  })
})

describe("ReplicaMachine across partitions and merges", () => {
  // The 27-network-partition-merge trace's shape, with more members: a, b, c on
  // one side and d, e on the other, concurrent updates on both sides, merge.
  const scenario = (net: Net) => {
    for (const m of ["#a#d1", "#b#d1", "#c#d1", "#d#d2", "#e#d2"]) {
      if (m === "#a#d1") net.join(m)
      else net.join(m, "#a#d1")
    }
    net.update("#a#d1", { add: 1 })
    net.run()
    net.partition(["#d#d2", "#e#d2"])
    net.update("#a#d1", { add: 10 })
    net.update("#b#d1", { note: "left side" })
    net.update("#d#d2", { add: 100 })
    net.update("#e#d2", { note: "right side" })
    net.update("#e#d2", { add: 1000 })
    net.run()
    // Each component kept working on its own.
    expect(net.values(["#a#d1", "#b#d1", "#c#d1"]).map(sum)).toEqual([11, 11, 11])
    expect(net.values(["#d#d2", "#e#d2"]).map(sum)).toEqual([1101, 1101])
    net.mergeComponents("#a#d1", "#d#d2")
    // Operations sent right after the merge view are applied after the merge.
    net.update("#c#d1", { add: 5 })
    net.run()
  }

  it("ReplicaMachine: Largest keeps the bigger component's value, on every member", () => {
    const net = new Net({ _tag: "Largest" })
    scenario(net)
    const all = net.values()
    expect(all.map(sum)).toEqual([16, 16, 16, 16, 16])
    expect(new Set(all.map((v) => JSON.stringify(v))).size).toBe(1)
    expect(all[0]?.log).toEqual(["left side"])
  })

  it("ReplicaMachine: First keeps the value of the component listed first in the merged view", () => {
    const net = new Net({ _tag: "First" })
    scenario(net)
    // The synthetic merge lists d, e first.
    const all = net.values()
    expect(all.map(sum)).toEqual([1106, 1106, 1106, 1106, 1106])
    expect(all[0]?.log).toEqual(["right side"])
  })

  it("ReplicaMachine: Custom merges every component's value, in the same order on every member", () => {
    const seen: Array<string> = []
    const net = new Net({
      _tag: "Custom",
      merge: (cs) => {
        seen.push(cs.map((c) => c.members.join("+")).join(" | "))
        return { n: cs.reduce((s, c) => s + c.value.n, 0), log: cs.flatMap((c) => c.value.log) }
      },
    })
    scenario(net)
    const all = net.values()
    expect(all.map(sum)).toEqual([1117, 1117, 1117, 1117, 1117])
    expect(all[0]?.log).toEqual(["right side", "left side"])
    expect(new Set(seen)).toEqual(new Set(["#d#d2+#e#d2 | #a#d1+#b#d1+#c#d1"]))
    expect(seen.length).toBe(5)
  })

  it("ReplicaMachine: a joiner whose provider is cut off by a partition gets the transfer from a holder on its side", () => {
    const net = joinerWithLostTransfer()
    net.partition(["#d#d2", "#j#d2"])
    net.update("#d#d2", { add: 4 })
    net.run()
    expect(net.values(["#a#d1", "#d#d2", "#j#d2"]).map(sum)).toEqual([3, 7, 7])
    expect(net.sent.filter((s) => s.out._tag === "SendState").map((s) => s.from)).toEqual([
      "#a#d1",
      "#a#d1",
      "#d#d2",
    ])
  })

  it("ReplicaMachine: a joiner waiting for its transfer when the partition comes gets the merged value", () => {
    const net = joinerWithLostTransfer()
    net.partition(["#j#d2"])
    net.update("#d#d2", { add: 4 })
    net.run()
    // Alone on its side with no holder: it waits (a network view is not "everyone left").
    expect(net.machines.get("#j#d2")?.value).toBeUndefined()
    expect(net.machines.get("#j#d2")?.phase._tag).toBe("Joining")
    net.mergeComponents("#a#d1", "#j#d2")
    net.update("#j#d2", { add: 1 })
    net.run()
    // j's side held no value: the merge keeps a's side's, j has it and applies its own update after.
    expect(net.values(["#a#d1", "#d#d2", "#j#d2"]).map(sum)).toEqual([8, 8, 8])
  })

  it("ReplicaMachine: random joins, leaves, partitions, merges and updates end identical in every component", () => {
    for (let seed = 1; seed <= 300; seed++) {
      const rnd = new Prng(seed)
      const net = new Net(seed % 2 === 0 ? { _tag: "Largest" } : { _tag: "First" })
      let next = 0
      const name = () => `#m${next++}#d${rnd.int(1, 3)}`
      net.join(name())
      for (let round = 0; round < 80; round++) {
        const live = [...net.machines.keys()]
        const r = rnd.int(0, 99)
        if (r < 15) net.join(name(), rnd.pick(live))
        else if (r < 20 && live.length > 2) {
          // #m0#... stays: a group whose every holder leaves before a joiner's
          // transfer has lost its value (the joiner's replica times out).
          const who = rnd.pick(live)
          if (!who.startsWith("#m0#")) net.leave(who, rnd.chance(0.5) ? "Leave" : "Disconnect")
        } else if (r < 25 && net.components.length === 1 && live.length > 2) {
          const away = live.filter(() => rnd.chance(0.5))
          if (away.length > 0 && away.length < live.length) net.partition(away)
        } else if (r < 30 && net.components.length > 1) {
          net.mergeComponents(net.components[0].members[0], net.components[1].members[0])
        } else net.update(rnd.pick(live), rnd.chance(0.8) ? { add: rnd.int(1, 9) } : { note: `r${round}` })
        if (rnd.chance(0.3)) net.step()
      }
      net.run()
      if (net.components.length > 1) net.mergeComponents(net.components[0].members[0], net.components[1].members[0])
      net.run()
      const vs = net.values().map((v) => JSON.stringify(v))
      expect(new Set(vs).size, `seed ${seed}: ${vs.join(" ")}`).toBe(1)
      expect(
        vs[0],
        `seed ${seed}: ${JSON.stringify(net.components)} ${
          JSON.stringify([...net.machines].map(([k, m]) => [k, m.phase._tag]))
        }`,
      ).not.toBe(undefined)
    }
  })
})
