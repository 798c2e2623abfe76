/**
 * Many fibers sending on one connection: N fibers each `yield*
 * conn.multicast(m)` in a loop on one connection (self-delivery, 1 KB), the
 * copies read from `messages` in another fiber, against an embedded daemon
 * in this process. With more senders than the flow window lets through,
 * most sends wait in the admission's one waiter list; this measures what
 * that waiting costs next to one sender.
 *
 * ```sh
 * deno run -A bench/concurrent_senders.ts                 # 1 and 64 fibers, 64,000 messages, 6 rounds each
 * deno run -A bench/concurrent_senders.ts --fibers=16 --count=100000 --rounds=4
 * ```
 *
 * Prints each round's rate and the median per fiber count (the first
 * rounds warm up V8 and the daemon, so read the later ones).
 *
 * @module
 */
import { Effect, Fiber, Stream } from "effect"
import { connect, isRegular } from "../mod.ts"
import * as Daemon from "../src/daemon/mod.ts"

const arg = (name: string): string | undefined =>
  Deno.args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3)
const fiberCounts = arg("fibers")?.split(",").map(Number) ?? [1, 64]
const count = Number(arg("count") ?? 64_000)
const rounds = Number(arg("rounds") ?? 6)
const data = new Uint8Array(1000)

const round = (fibers: number) =>
  Effect.scoped(Effect.gen(function* () {
    const d = yield* Daemon.make({ port: 0, unixSocket: false })
    const c = yield* connect({ daemon: d.spreadName, name: "bench" })
    yield* c.join("g")
    const copies = yield* Effect.fork(c.messages.pipe(Stream.filter(isRegular), Stream.take(count), Stream.runDrain))
    const per = Math.ceil(count / fibers)
    const t0 = performance.now()
    yield* Effect.forEach(
      Array.from({ length: fibers }, (_, f) => Math.min(per, count - f * per)),
      (n) =>
        Effect.gen(function* () {
          for (let i = 0; i < n; i++) yield* c.multicast({ groups: "g", data })
        }),
      { concurrency: "unbounded", discard: true },
    )
    yield* Fiber.join(copies)
    return count / ((performance.now() - t0) / 1000)
  }))

console.log(`concurrent senders: ${count.toLocaleString("en")} × 1 KB self-delivery per round, ${rounds} rounds`)
for (const fibers of fiberCounts) {
  const rates: Array<number> = []
  for (let r = 0; r < rounds; r++) rates.push(await Effect.runPromise(round(fibers)))
  const sorted = [...rates].sort((a, b) => a - b)
  console.log(
    `${String(fibers).padStart(3)} fibers: median ${
      Math.round(sorted[Math.floor(sorted.length / 2)]).toLocaleString("en")
    } msgs/s ` +
      `(rounds ${rates.map((x) => Math.round(x / 1000) + "k").join(", ")})`,
  )
}
