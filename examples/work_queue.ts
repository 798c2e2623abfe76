/**
 * A work queue over group views: workers subscribe to "jobs"; a producer
 * multicasts each job to the group (Agreed, so every worker sees the jobs
 * and the membership changes in one total order). Each worker keeps the
 * group's view from the membership messages in its own subscription stream
 * and takes exactly the jobs the view assigns to it (job number modulo the
 * member count, members in the daemon's order), so every job is done once,
 * with no coordinator and no locks. When a worker leaves, the next view
 * hands its share to the others — for every job after the change, at every
 * worker alike. Workers report to the producer's private group.
 *
 * Run: `deno run --allow-net --allow-read --allow-write --allow-env examples/work_queue.ts`
 *
 * @module
 */
import { Console, Effect, Fiber, Option, Stream } from "effect"
import { connect, type Connection, isMembership, isRegular, text } from "../mod.ts"
import * as Daemon from "../src/daemon/mod.ts"

const JOBS = "jobs"

/** A worker: does the jobs its current view assigns to it, reporting each to `producer`. */
const worker = (conn: Connection, name: string, producer: string) =>
  conn.subscribe(JOBS).pipe(
    Stream.runFoldEffect([] as ReadonlyArray<string>, (members, m) => {
      if (isMembership(m)) return Effect.succeed(m.members)
      if (!isRegular(m) || members.length === 0) return Effect.succeed(members)
      const job = Number(text(m))
      if (members[job % members.length] !== conn.privateGroup) return Effect.succeed(members)
      return Effect.as(conn.multicast({ groups: producer, data: `${job} ${name}` }), members)
    }),
  )

/** Waits until `conn`'s view of the jobs group has `n` members. */
const members = (conn: Connection, n: number) =>
  conn.watch(JOBS).pipe(
    Stream.filter((v) => Option.isSome(v) && v.value.members.length === n),
    Stream.take(1),
    Stream.runDrain,
  )

/** Sends jobs `from` until `to` (excluded); answers who did each, by job. */
const batch = (producer: Connection, from: number, to: number) =>
  Effect.gen(function* () {
    for (let job = from; job < to; job++) yield* producer.multicast({ groups: JOBS, data: String(job) })
    const done = new Map<number, Array<string>>()
    for (let n = 0; n < to - from;) {
      const m = yield* producer.receive
      if (!isRegular(m)) continue
      const [job, who] = text(m).split(" ")
      done.set(Number(job), [...(done.get(Number(job)) ?? []), who])
      n++
    }
    return done
  })

const summary = (done: ReadonlyMap<number, ReadonlyArray<string>>): string => {
  const by = new Map<string, Array<number>>()
  for (const [job, workers] of [...done].sort((a, b) => a[0] - b[0])) {
    for (const w of workers) by.set(w, [...(by.get(w) ?? []), job])
  }
  return [...by].sort().map(([w, jobs]) => `${w} did ${jobs.join(",")}`).join("; ")
}

/**
 * The work queue in two phases (three workers, then two): answers who did
 * each job, by job, per phase.
 *
 * @since 0.2.0
 */
export const main: Effect.Effect<{
  readonly phase1: ReadonlyMap<number, ReadonlyArray<string>>
  readonly phase2: ReadonlyMap<number, ReadonlyArray<string>>
}> = Effect.scoped(Effect.gen(function* () {
  const daemon = yield* Daemon.make({ port: 0, unixSocket: false })
  const producer = yield* connect({ daemon: daemon.spreadName, name: "producer" })
  const names = ["w1", "w2", "w3"]
  const conns = yield* Effect.forEach(names, (name) => connect({ daemon: daemon.spreadName, name }))
  const fibers = yield* Effect.forEach(
    conns,
    (c, i) => Effect.forkScoped(worker(c, names[i], producer.privateGroup)),
  )
  yield* members(conns[0], 3)
  const phase1 = yield* batch(producer, 0, 15)
  yield* Console.log(`three workers: ${summary(phase1)}`)

  // w3 stops: its subscription ends, so it leaves the group.
  yield* Fiber.interrupt(fibers[2])
  yield* members(conns[0], 2)
  const phase2 = yield* batch(producer, 15, 30)
  yield* Console.log(`after w3 left: ${summary(phase2)}`)
  return { phase1, phase2 }
})).pipe(Effect.orDie)

if (import.meta.main) Effect.runPromise(main)
