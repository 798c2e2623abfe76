/**
 * The replicated value (`replicated`, src/client/features/replicated):
 *
 * 1. updates/s applied, at 3 and at 10 members: every member issues its
 *    share of the updates (a counter increment, AGREED), up to 64 in flight
 *    per member (`IN_FLIGHT`); the figure is all updates divided by the time from the
 *    first update until every member has applied every update (so at 10
 *    members the daemon delivers 10 copies of each);
 * 2. state-transfer time for a 1 MiB value (a 1 MiB string): the time a
 *    joiner's `replicated` takes to return, with one member holding the
 *    value (the transfer is one 1 MiB+ message, sent in fragments), median
 *    of 5 joins.
 *
 * Members are connections in this process to an embedded daemon in this
 * process (the numbers include both sides' work on a shared event loop).
 *
 * ```sh
 * deno run -A bench/replicated.ts           # full run
 * deno run -A bench/replicated.ts --quick   # a tenth of the updates
 * IN_FLIGHT=16 deno run -A bench/replicated.ts   # updates in flight per member (64 by default)
 * ```
 *
 * @module
 */
import { Effect, Logger, LogLevel, Schema, Stream } from "effect"
import { connect, replicated } from "../mod.ts"
import * as Daemon from "../src/daemon/mod.ts"

const quick = Deno.args.includes("--quick")
const UPDATES = quick ? 2_000 : 20_000
const IN_FLIGHT = Number(Deno.env.get("IN_FLIGHT") ?? "64")

const updatesPerSecond = (members: number) =>
  Effect.scoped(Effect.gen(function* () {
    const daemon = yield* Daemon.make({ port: 0, unixSocket: false })
    const conns = yield* Effect.forEach(
      Array.from({ length: members }, (_, i) => `m${i}`),
      (name) => connect({ daemon: daemon.spreadName, name }),
    )
    const group = `counter${members}`
    const replicas = yield* Effect.forEach(conns, (c) =>
      replicated(c, {
        group,
        value: Schema.Number,
        operation: Schema.Number,
        initial: 0,
        apply: (n, by) => n + by,
      }))
    const per = Math.floor(UPDATES / members)
    const total = per * members
    const start = performance.now()
    yield* Effect.forEach(
      replicas,
      (r) =>
        Effect.forEach(Array.from({ length: per }), () => r.update(1), {
          concurrency: IN_FLIGHT,
          discard: true,
        }),
      { concurrency: "unbounded", discard: true },
    )
    yield* Effect.forEach(
      replicas,
      (r) => r.changes.pipe(Stream.filter((n) => n >= total), Stream.take(1), Stream.runDrain),
      { concurrency: "unbounded", discard: true },
    )
    const seconds = (performance.now() - start) / 1000
    console.log(
      `${members} members: ${total} updates applied by every member in ${seconds.toFixed(2)} s = ${
        Math.round(total / seconds)
      } updates/s (${Math.round(total * members / seconds)} applications/s)`,
    )
  }))

const transfer = Effect.scoped(Effect.gen(function* () {
  const daemon = yield* Daemon.make({ port: 0, unixSocket: false })
  const holder = yield* connect({ daemon: daemon.spreadName, name: "holder" })
  const options = {
    group: "big",
    value: Schema.String,
    operation: Schema.String,
    initial: "",
    apply: (_: string, next: string) => next,
    transferTimeout: "60 seconds",
  } as const
  const held = yield* replicated(holder, options)
  const MiB = "x".repeat(1024 * 1024)
  yield* held.update(MiB)
  const times: Array<number> = []
  for (let i = 0; i < 5; i++) {
    yield* Effect.scoped(Effect.gen(function* () {
      const conn = yield* connect({ daemon: daemon.spreadName, name: `joiner${i}` })
      const start = performance.now()
      const r = yield* replicated(conn, options)
      times.push(performance.now() - start)
      const v = yield* r.get
      if (v.length !== MiB.length) yield* Effect.dieMessage(`the joiner holds ${v.length} characters, not 1 MiB`)
    }))
  }
  times.sort((a, b) => a - b)
  console.log(
    `state transfer of a 1 MiB value: median ${times[2].toFixed(1)} ms (min ${times[0].toFixed(1)}, max ${
      times[4].toFixed(1)
    }) over 5 joins`,
  )
}))

if (import.meta.main) {
  await Effect.runPromise(
    Effect.gen(function* () {
      yield* updatesPerSecond(3)
      yield* updatesPerSecond(10)
      yield* transfer
    }).pipe(Effect.provide(Logger.minimumLogLevel(LogLevel.Warning)), Effect.orDie),
  )
}
