/**
 * Throughput of the client with Spread's `spflooder` workload: one
 * connection joins a group, multicasts N messages of one size to it (FIFO)
 * and receives its own copies back, with the client's flow window (adaptive,
 * 500 permits) keeping it from being cut off. Timed from the first send to
 * the last copy received; reports messages and megabytes (1e6 bytes) of
 * payload per second.
 *
 * Sends go through `multicastMany` in batches of 100; receipt through the
 * `messages` stream, one chunk at a time.
 *
 * ```sh
 * deno run -A bench/client_flooder.ts                  # in-process and own-process daemons
 * deno run -A bench/client_flooder.ts --in-process     # only the daemon in this process
 * deno run -A bench/client_flooder.ts --quick          # a tenth of the messages
 * SPREAD_DAEMON=4804@127.0.0.1 deno run -A bench/client_flooder.ts   # also a real daemon
 * ```
 *
 * @module
 */
import { Effect, Fiber, Stream } from "effect"
import { connect } from "../mod.ts"
import { grouped, type Target, targets } from "./_daemons.ts"

const quick = Deno.args.includes("--quick")
const BATCH = 100
const CASES: ReadonlyArray<{ readonly label: string; readonly size: number; readonly count: number }> = [
  { label: "100 B", size: 100, count: 200_000 },
  { label: "1 KB", size: 1000, count: 100_000 },
  { label: "10 KB", size: 10_000, count: 20_000 },
].map((c) => (quick ? { ...c, count: c.count / 10 } : c))

const flood = (spreadName: string, size: number, count: number) =>
  Effect.scoped(Effect.gen(function* () {
    const conn = yield* connect({ daemon: spreadName, membership: false })
    yield* conn.join("flooder")
    const data = new Uint8Array(size).fill(0x61)
    const batch = Array.from({ length: BATCH }, () => ({ groups: "flooder", data, service: "Fifo" as const }))
    // Warm up the code paths once.
    const warm = yield* Effect.fork(conn.messages.pipe(Stream.take(2 * BATCH), Stream.runDrain))
    yield* conn.multicastMany(batch)
    yield* conn.multicastMany(batch)
    yield* Fiber.join(warm)

    const t0 = performance.now()
    const receiver = yield* Effect.fork(
      Stream.runFoldWhile(conn.messages, 0, (n) => n < count, (n, m) => (m._tag === "Regular" ? n + 1 : n)),
    )
    for (let sent = 0; sent < count; sent += BATCH) yield* conn.multicastMany(batch)
    yield* Fiber.join(receiver)
    const seconds = (performance.now() - t0) / 1000
    const stats = yield* conn.stats
    return {
      seconds,
      windowPeak: stats.windowPeak,
      state: (yield* conn.state)._tag,
      perRead: stats.received / stats.reads,
      perWrite: stats.sent / stats.writes,
    }
  }))

const runAll = async (target: Target) => {
  for (const c of CASES) {
    try {
      const r = await Effect.runPromise(flood(target.spreadName, c.size, c.count))
      const rate = c.count / r.seconds
      console.log(
        `${target.label.padEnd(24)} ${c.label.padEnd(6)} ${grouped(c.count).padStart(8)} msgs ` +
          `${r.seconds.toFixed(2).padStart(6)} s ${grouped(rate).padStart(9)} msgs/s ` +
          `${(rate * c.size / 1e6).toFixed(1).padStart(7)} MB/s   (window peak ${r.windowPeak}, ${
            r.perRead.toFixed(1)
          } msgs/read, ${r.perWrite.toFixed(1)} msgs/write, ${r.state})`,
      )
    } catch (e) {
      console.log(`${target.label.padEnd(24)} ${c.label.padEnd(6)} failed: ${e instanceof Error ? e.message : e}`)
    }
  }
}

console.log(
  `client spflooder workload: FIFO to one group, self-delivered, multicastMany x${BATCH}, adaptive window 500; ` +
    `${Deno.build.os}/${Deno.build.arch}, ${navigator.hardwareConcurrency} cores, Deno ${Deno.version.deno}`,
)
for (const start of targets(Deno.args)) {
  const target = await start()
  try {
    await runAll(target)
  } finally {
    await target.stop()
  }
}
