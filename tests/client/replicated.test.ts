import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Fiber, Schedule, Schema, Stream } from "effect"
import { connect, type Connection, replicated, type ReplicatedOptions } from "../../src/client/mod.ts"
import { daemonAndClients } from "../_helpers/clients.ts"
import { startDaemonProcess } from "../_helpers/daemon_process.ts"

const TIMEOUT = 30_000

const Value = Schema.Struct({ n: Schema.Number, log: Schema.Array(Schema.String) })
type Value = typeof Value.Type
const Op = Schema.Union(Schema.Struct({ add: Schema.Int }), Schema.Struct({ note: Schema.String }))
type Op = typeof Op.Type

const options: ReplicatedOptions<Value, Schema.Schema.Encoded<typeof Value>, Op, Schema.Schema.Encoded<typeof Op>> = {
  group: "shared",
  value: Value,
  operation: Op,
  initial: { n: 0, log: [] },
  apply: (v, op) => "add" in op ? { n: v.n + op.add, log: v.log } : { n: v.n, log: [...v.log, op.note] },
  transferTimeout: "10 seconds",
}

/** Waits until `r`'s value satisfies `done`. */
const until = (changes: Stream.Stream<Value, unknown>, done: (v: Value) => boolean) =>
  changes.pipe(Stream.filter(done), Stream.take(1), Stream.runCollect, Effect.map((c) => Chunk.unsafeHead(c)))

const replicaOf = (conn: Connection, extra: Partial<typeof options> = {}) => replicated(conn, { ...options, ...extra })

describe("replicated", () => {
  it.scoped(
    "replicated: four connections updating concurrently end with identical values, each update applied once",
    () =>
      Effect.gen(function* () {
        const { clients } = yield* daemonAndClients("r1", "r2", "r3", "r4")
        const replicas = []
        for (const c of clients) replicas.push(yield* replicaOf(c))
        const PER = 50
        yield* Effect.forEach(
          replicas,
          (r, i) =>
            Effect.forEach(
              Array.from({ length: PER }, (_, k) => k),
              (k) => r.update(k % 10 === 0 ? { note: `r${i}-${k}` } : { add: i + 1 }),
              { discard: true },
            ),
          { concurrency: "unbounded", discard: true },
        )
        const expected = [1, 2, 3, 4].reduce((s, by) => s + by * (PER - PER / 10), 0)
        const finals = yield* Effect.forEach(replicas, (r) => until(r.changes, (v) => v.log.length === 4 * PER / 10))
        for (const f of finals) {
          expect(f.n).toBe(expected)
          expect(f.log).toEqual(finals[0].log)
        }
        expect(new Set(finals[0].log).size).toBe(4 * PER / 10)
        // Everyone applied the notes in one order: the sender's own order is kept within it.
        for (let i = 0; i < 4; i++) {
          const mine = finals[0].log.filter((s) => s.startsWith(`r${i}-`))
          expect(mine).toEqual(Array.from({ length: PER / 10 }, (_, k) => `r${i}-${k * 10}`))
        }
      }),
    TIMEOUT,
  )

  it.scoped(
    "replicated: update answers the value right after its operation, applied in the group's order",
    () =>
      Effect.gen(function* () {
        const { clients: [a, b] } = yield* daemonAndClients("u1", "u2")
        const ra = yield* replicaOf(a)
        const rb = yield* replicaOf(b)
        expect(yield* ra.update({ add: 5 })).toEqual({ n: 5, log: [] })
        expect((yield* rb.update({ note: "x" })).n).toBe(5)
        expect(yield* ra.get).toEqual({ n: 5, log: ["x"] })
        expect(yield* rb.holders).toEqual([a.privateGroup, b.privateGroup])
      }),
    TIMEOUT,
  )

  it.scoped(
    "replicated: a late joiner under load gets the state and every later operation exactly once",
    () =>
      Effect.gen(function* () {
        const { clients: [a, b, c, late] } = yield* daemonAndClients("l1", "l2", "l3", "late")
        const writers = [yield* replicaOf(a), yield* replicaOf(b), yield* replicaOf(c)]
        const N = 300
        const load = yield* Effect.forEach(
          writers,
          (r, i) =>
            Effect.forEach(
              Array.from({ length: N }, (_, k) => k),
              (k) => r.update({ note: `${i}:${k}` }),
              { discard: true },
            ).pipe(Effect.fork),
        )
        // Join while the writers are busy.
        yield* until(writers[0].changes, (v) => v.log.length >= 100)
        const joiner = yield* replicaOf(late)
        const atJoin = (yield* joiner.get).log.length
        expect(atJoin).toBeGreaterThanOrEqual(100)
        yield* Effect.forEach(load, Fiber.join, { discard: true })
        const done = (v: Value) => v.log.length === 3 * N
        const [w, j] = yield* Effect.all([until(writers[0].changes, done), until(joiner.changes, done)])
        expect(j.log).toEqual(w.log)
        expect(new Set(j.log).size).toBe(3 * N)
        const heldAtJoin = atJoin
        // The joiner's own updates go through the same order.
        expect((yield* joiner.update({ add: 1 })).n).toBe(1)
        expect(yield* until(writers[2].changes, (v) => v.n === 1)).toEqual({ n: 1, log: w.log })
        expect(heldAtJoin).toBeLessThan(3 * N + 1)
      }),
    TIMEOUT,
  )

  it.scoped(
    "replicated: a message on the group that is not a replica message fails every replica with Decode",
    () =>
      Effect.gen(function* () {
        const { clients: [a, b, stranger] } = yield* daemonAndClients("d1", "d2", "d3")
        const ra = yield* replicaOf(a)
        const rb = yield* replicaOf(b)
        yield* ra.update({ add: 1 })
        yield* stranger.multicast({ groups: "shared", data: `{"t":"op","id":1,"op":{"add":1.5}}` })
        const e = yield* rb.changes.pipe(Stream.runDrain, Effect.flip)
        expect(e.reason).toBe("Decode")
        expect(e.message).toContain(stranger.privateGroup)
        expect(e.message).toContain("1.5")
        expect((yield* Effect.flip(ra.get)).reason).toBe("Decode")
        expect((yield* Effect.flip(ra.update({ add: 1 }))).reason).toBe("Decode")
      }),
    TIMEOUT,
  )

  it.scoped(
    "replicated: an operation that does not fit its schema is refused with Encode; the replica goes on",
    () =>
      Effect.gen(function* () {
        const { clients: [a] } = yield* daemonAndClients("e1")
        const ra = yield* replicaOf(a)
        const e = yield* Effect.flip(ra.update({ add: 1.5 }))
        expect(e.reason).toBe("Encode")
        expect(e.message).toContain("1.5")
        expect((yield* ra.update({ add: 2 })).n).toBe(2)
      }),
    TIMEOUT,
  )

  it.scoped("replicated: SAFE operations converge too", () =>
    Effect.gen(function* () {
      const { clients: [a, b] } = yield* daemonAndClients("s1", "s2")
      const ra = yield* replicaOf(a, { service: "Safe" })
      const rb = yield* replicaOf(b, { service: "Safe" })
      yield* Effect.all([ra.update({ add: 1 }), rb.update({ add: 2 })], { concurrency: 2 })
      expect(yield* until(ra.changes, (v) => v.n === 3)).toEqual(yield* until(rb.changes, (v) => v.n === 3))
    }), TIMEOUT)

  it.scopedLive(
    "replicated: a joiner whose transfer never comes fails with TransferTimeout",
    () =>
      Effect.gen(function* () {
        const { clients: [a, b] } = yield* daemonAndClients("t1", "t2")
        // a is in the group but is no replica: it never sends a transfer.
        yield* a.join("shared")
        yield* a.watch("shared").pipe(Stream.filter((v) => v._tag === "Some"), Stream.take(1), Stream.runDrain)
        const e = yield* Effect.flip(replicaOf(b, { transferTimeout: "300 millis" }))
        expect(e.reason).toBe("TransferTimeout")
      }),
    TIMEOUT,
  )
  it.scopedLive(
    "replicated: after a daemon restart the reconnected replicas keep the value they held and go on together",
    () =>
      Effect.gen(function* () {
        const first = yield* startDaemonProcess({ port: 0 })
        const port = first.address._tag === "Tcp" ? first.address.port : 0
        const daemon = `${port}@127.0.0.1`
        const reconnect = Schedule.spaced("50 millis").pipe(Schedule.intersect(Schedule.recurs(200)))
        const a = yield* connect({ daemon, name: "ra", reconnect })
        const b = yield* connect({ daemon, name: "rb", reconnect })
        const ra = yield* replicaOf(a)
        const rb = yield* replicaOf(b)
        yield* ra.update({ add: 5 })
        yield* rb.update({ note: "before" })
        yield* until(ra.changes, (v) => v.log.length === 1)
        yield* first.kill
        yield* startDaemonProcess({ port })
        // Both rejoin: the first one back is alone and keeps its value, the other gets it by transfer.
        yield* a.watch("shared").pipe(
          Stream.filter((v) => v._tag === "Some" && v.value.members.length === 2),
          Stream.take(1),
          Stream.runDrain,
          Effect.timeout("15 seconds"),
        )
        // A newcomer after the restart gets the value held before it, not `initial`.
        const c = yield* connect({ daemon, name: "rc" })
        const rc = yield* replicaOf(c)
        expect(yield* rc.get).toEqual({ n: 5, log: ["before"] })
        expect(yield* rc.update({ add: 1 })).toEqual({ n: 6, log: ["before"] })
        for (const r of [ra, rb]) expect(yield* until(r.changes, (v) => v.n === 6)).toEqual({ n: 6, log: ["before"] })
      }),
    TIMEOUT,
  )
})
