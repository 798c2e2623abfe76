/**
 * Partitions in process against real Spread 5.0.1 captures: three daemons
 * in network namespaces, partitioned by taking their links down and merged
 * by bringing them up (tests/fixtures/spread-traces/29-* and later; their
 * README section says how they were captured). Each test replays the
 * clients' requests and the partitions of a capture against virtual
 * daemons of one embedded daemon and compares what every client saw.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import {
  decodeMembershipBody,
  type Frame,
  FrameDecoder,
  isProtocolError,
  readU32,
  ServiceBits,
} from "../../src/protocol/mod.ts"
import { RawClient } from "../_helpers/raw_client.ts"
import { fromHex } from "../_helpers/traces.ts"
import { eventually, startDaemon } from "./_fixtures.ts"

const DIR = new URL("../fixtures/spread-traces/", import.meta.url)

/** Proc ids of the captured daemons (their hashed virtual ids; see the README). */
const PROC_IDS: Record<string, number> = { d1: 1552775919, d2: 348480928, d3: -280616338 }

interface Rec {
  readonly t: number
  readonly conn: number
  readonly dir: "c2d" | "d2c"
  readonly hex: string
  readonly ev?: string
}

interface Capture {
  /** Private group of each connection. */
  readonly groups: Map<number, string>
  /** Frames each connection received. */
  readonly received: Map<number, Array<Frame>>
  /** Requests and partitions in the order to replay them. */
  readonly steps: ReadonlyArray<Step>
}

type Step =
  | { readonly _tag: "Request"; readonly conn: number; readonly frame: Frame }
  | { readonly _tag: "Components"; readonly components: ReadonlyArray<ReadonlyArray<string>> }

const isNetwork = (f: Frame): boolean =>
  (f.type & ServiceBits.REG_MEMB_MESS) !== 0 && (f.type & ServiceBits.CAUSED_BY_NETWORK) !== 0 &&
  (f.type & ServiceBits.REGULAR_MESS) === 0

const isData = (f: Frame): boolean => (f.type & ServiceBits.REGULAR_MESS) !== 0

/**
 * Reads a capture: the frames of each stream, and the replay plan. A link
 * change takes effect in the plan where the daemons applied it: at the
 * first CAUSED_BY_NETWORK membership any client received after it.
 */
const readCapture = (name: string): Capture => {
  const recs: Array<Rec> = Deno.readTextFileSync(new URL(`${name}/trace.jsonl`, DIR))
    .split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l))
  const links = Deno.readTextFileSync(new URL(`${name}/events.txt`, DIR))
    .split("\n").filter((l) => l.trim() !== "").map((l) => {
      const [t, , iface, state] = l.split(" ")
      return { t: Number(t), daemon: `d${iface.replace("spv", "")}`, up: state === "up" }
    })
  const groups = new Map<number, string>()
  const received = new Map<number, Array<Frame>>()
  const requests: Array<{ t: number; readonly step: Step }> = []
  const networkTimes: Array<number> = []
  const arrivals: Array<{ readonly t: number; readonly frame: Frame }> = []
  const decoders = new Map<string, FrameDecoder>()
  const handshake = new Map<string, number>()
  for (const r of recs) {
    if (r.ev !== undefined || r.hex === "") continue
    const key = `${r.conn}/${r.dir}`
    const bytes = fromHex(r.hex)
    const seen = handshake.get(key) ?? 0
    if (seen < 2) {
      // The recorder's handshake: connect and auth choice out; auth list and accept in.
      handshake.set(key, seen + 1)
      if (r.dir === "d2c" && seen === 1) groups.set(r.conn, String.fromCharCode(...bytes.subarray(5)))
      continue
    }
    let d = decoders.get(key)
    if (d === undefined) {
      d = new FrameDecoder(r.dir === "c2d" ? "toDaemon" : "toClient")
      decoders.set(key, d)
    }
    d.push(bytes)
    for (let f = d.next(); f !== undefined; f = d.next()) {
      if (isProtocolError(f)) throw new Error(`${name} ${key}: ${f.message}`)
      if (r.dir === "c2d") requests.push({ t: r.t, step: { _tag: "Request", conn: r.conn, frame: f } })
      else {
        const list = received.get(r.conn) ?? []
        list.push(f)
        received.set(r.conn, list)
        arrivals.push({ t: r.t, frame: f })
        if (isNetwork(f)) networkTimes.push(r.t)
      }
    }
  }
  // Joins, leaves and disconnects sent at nearly the same time were ordered
  // by the daemons' ring, not by the clock: replay each where its
  // membership message was delivered, ordered by the group id's index.
  const CHANGES = ServiceBits.JOIN_MESS | ServiceBits.LEAVE_MESS | ServiceBits.KILL_MESS
  for (const req of requests) {
    if (req.step._tag !== "Request" || (req.step.frame.type & CHANGES) === 0) continue
    const who = groups.get(req.step.conn)
    const effect = arrivals.find((a) => {
      const f = a.frame
      if (a.t < req.t || isData(f) || (f.type & ServiceBits.REG_MEMB_MESS) === 0 || isNetwork(f)) return false
      const body = decodeMembershipBody(f.data, true)
      return !isProtocolError(body) && body.vsSets[0]?.[0] === who
    })
    if (effect !== undefined) req.t = effect.t - 0.5 + readU32(effect.frame.data, 8, true) * 1e-4
  }
  const daemons = ["d1", "d2", "d3"]
  const up = new Map(daemons.map((d) => [d, true]))
  const changes: Array<{ t: number; step: Step }> = []
  for (let i = 0; i < links.length;) {
    // Link changes closer than a second are one network event.
    const t0 = links[i].t
    while (i < links.length && links[i].t - t0 < 1000) {
      up.set(links[i].daemon, links[i].up)
      i++
    }
    const joined = daemons.filter((d) => up.get(d))
    const components = [...(joined.length > 0 ? [joined] : []), ...daemons.filter((d) => !up.get(d)).map((d) => [d])]
    const effective = networkTimes.find((t) => t > t0)
    if (effective === undefined) throw new Error(`${name}: no network membership after the link change at ${t0}`)
    changes.push({ t: effective - 0.5, step: { _tag: "Components", components } })
  }
  const steps = [...requests, ...changes].sort((a, b) => a.t - b.t).map((s) => s.step)
  return { groups, received, steps }
}

/** A frame as compared: everything but the membership time, which becomes its rank in the stream. */
const shapes = (frames: ReadonlyArray<Frame>, names: (s: string) => string = (s) => s) => {
  const times: Array<number> = []
  return frames.map((f) => {
    const base = {
      type: f.type,
      sender: names(f.sender),
      groups: f.groups.map(names),
      messType: f.messType,
    }
    if (isData(f)) return { ...base, data: new TextDecoder().decode(f.data) }
    const time = readU32(f.data, 4, true)
    if (!times.includes(time)) times.push(time)
    const gid = { procId: readU32(f.data, 0, true) | 0, timeRank: times.indexOf(time), index: readU32(f.data, 8, true) }
    if ((f.type & ServiceBits.TRANSITION_MESS) !== 0) return { ...base, gid, dataLen: f.data.length }
    const body = decodeMembershipBody(f.data, true)
    if (isProtocolError(body)) return { ...base, body: body.message }
    return { ...base, gid, vsSets: body.vsSets, local: body.localVsSetOffset }
  })
}

/** Replays a capture against virtual daemons d1, d2, d3 and answers what each connection received. */
const replayCapture = (cap: Capture) =>
  Effect.gen(function* () {
    const d = yield* startDaemon({
      port: 0,
      unixSocket: false,
      name: "d1",
      procId: PROC_IDS.d1,
      virtualDaemons: [{ name: "d2", procId: PROC_IDS.d2 }, { name: "d3", procId: PROC_IDS.d3 }],
    })
    const clients = new Map<number, RawClient>()
    const got = new Map<number, Array<Frame>>()
    for (const [conn, pg] of [...cap.groups].sort((a, b) => a[0] - b[0])) {
      const [, name, daemon] = pg.split("#")
      const v = d.daemons.find((x) => x.name === daemon)
      if (v === undefined) throw new Error(`no daemon ${daemon}`)
      const c = yield* RawClient.connect({ _tag: "Tcp", hostname: v.host, port: v.port }, { name })
      expect(c.privateGroup).toBe(pg)
      clients.set(conn, c)
      const list: Array<Frame> = []
      got.set(conn, list)
      yield* Effect.forkScoped(Effect.gen(function* () {
        for (;;) {
          const r = yield* c.next(60_000)
          if (r._tag !== "Frame") return
          list.push(r.frame)
        }
      }))
    }
    const total = () => [...got.values()].reduce((n, l) => n + l.length, 0)
    for (const step of cap.steps) {
      if (step._tag === "Components") {
        yield* d.partition(step.components)
        continue
      }
      const c = clients.get(step.conn)
      if (c === undefined) continue
      // Each request is sequenced before the next is sent: wait for what it makes the daemon send.
      const before = total()
      yield* c.write(step.frame.bytes)
      yield* eventually(() => total() > before, 300)
    }
    // Everything sent has arrived once every connection has as many frames as in the capture.
    yield* eventually(() => [...cap.received].every(([conn, l]) => (got.get(conn)?.length ?? 0) >= l.length), 5000)
    return got
  })

/** Data frames between network memberships: what each view delivered to a connection. */
const viewsOf = (frames: ReadonlyArray<Frame>): Array<Array<string>> => {
  const views: Array<Array<string>> = [[]]
  for (const f of frames) {
    if (isNetwork(f)) views.push([])
    else if (isData(f)) views[views.length - 1].push(new TextDecoder().decode(f.data))
  }
  return views
}

describe("Daemon partitions against real Spread captures", () => {
  for (const name of ["29-three-components", "30-leave-during-split"]) {
    it.scoped(
      `Daemon.partition shows every client of ${name} what real Spread showed it`,
      () =>
        Effect.gen(function* () {
          const cap = readCapture(name)
          const ours = yield* replayCapture(cap)
          for (const [conn, real] of cap.received) {
            expect({ conn, frames: shapes(ours.get(conn) ?? []) }).toEqual({ conn, frames: shapes(real) })
          }
        }),
      60_000,
    )
  }

  it.scoped(
    "Daemon.partition with AGREED traffic: memberships as in 31-agreed-during-partition, one order per component",
    () =>
      Effect.gen(function* () {
        const cap = readCapture("31-agreed-during-partition")
        const ours = yield* replayCapture(cap)
        const membershipsOnly = (fs: ReadonlyArray<Frame>) => shapes(fs.filter((f) => !isData(f)))
        for (const [conn, real] of cap.received) {
          expect({ conn, frames: membershipsOnly(ours.get(conn) ?? []) }).toEqual({
            conn,
            frames: membershipsOnly(real),
          })
        }
        // Both the capture and the simulation: while split ({d1, d2} | {d3}),
        // alice (conn 1) and bob (conn 2) are delivered the same messages in
        // the same order and nothing from carol; carol only her own.
        for (const got of [cap.received, ours]) {
          const [a, b, c] = [1, 2, 3].map((n) => viewsOf(got.get(n) ?? []))
          // views: before the split, during it, after the merge.
          expect(a.length).toBe(3)
          expect(a[1]).toEqual(b[1])
          expect(a[1].some((s) => s.startsWith("carol:"))).toBe(false)
          expect(a[1].length).toBeGreaterThan(0)
          expect(c[1].every((s) => s.startsWith("carol:"))).toBe(true)
          expect(c[1].length).toBeGreaterThan(0)
          // After the merge, one order for all three.
          expect(a[2]).toEqual(b[2])
          expect(a[2]).toEqual(c[2])
        }
      }),
    120_000,
  )
})
