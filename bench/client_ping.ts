/**
 * Round-trip latency of the client: one connection, a member of its group,
 * multicasts one 100-byte message (AGREED) and waits for its own copy, N
 * times in a row. Reports percentiles of the round trip, measured with
 * `performance.now()` around `multicast` + `receive`, after a warm-up.
 *
 * ```sh
 * deno run -A bench/client_ping.ts                  # in-process and own-process daemons
 * deno run -A bench/client_ping.ts --in-process     # only the daemon in this process
 * deno run -A bench/client_ping.ts --count=20000
 * SPREAD_DAEMON=4804@127.0.0.1 deno run -A bench/client_ping.ts   # also a real daemon
 * ```
 *
 * @module
 */
import { Effect } from "effect"
import { connect } from "../mod.ts"
import { grouped, type Target, targets } from "./_daemons.ts"

const count = Number(Deno.args.find((a) => a.startsWith("--count="))?.slice("--count=".length) ?? 10_000)
const WARMUP = 3_000

const ping = (spreadName: string) =>
  Effect.scoped(Effect.gen(function* () {
    const conn = yield* connect({ daemon: spreadName, membership: false })
    yield* conn.join("ping")
    const message = { groups: "ping", data: new Uint8Array(100) }
    const rtt = new Float64Array(count)
    for (let i = 0; i < WARMUP + count; i++) {
      const t0 = performance.now()
      yield* conn.multicast(message)
      yield* conn.receive
      if (i >= WARMUP) rtt[i - WARMUP] = performance.now() - t0
    }
    return rtt.sort()
  }))

const us = (ms: number) => `${(ms * 1000).toFixed(0)} µs`

const runOne = async (target: Target) => {
  const rtt = await Effect.runPromise(ping(target.spreadName))
  const at = (p: number) => rtt[Math.min(rtt.length - 1, Math.floor(rtt.length * p))]
  console.log(
    `${target.label.padEnd(24)} ${grouped(count)} round trips: p50 ${us(at(0.5))}  p90 ${us(at(0.9))}  ` +
      `p99 ${us(at(0.99))}  p99.9 ${us(at(0.999))}  max ${us(rtt[rtt.length - 1])}`,
  )
}

console.log(
  `client ping: 100-byte AGREED message to self, multicast then receive, ${grouped(WARMUP)} warm-up round trips; ` +
    `${Deno.build.os}/${Deno.build.arch}, ${navigator.hardwareConcurrency} cores, Deno ${Deno.version.deno}`,
)
for (const start of targets(Deno.args)) {
  const target = await start()
  try {
    await runOne(target)
  } catch (e) {
    console.log(`${target.label.padEnd(24)} failed: ${e instanceof Error ? e.message : e}`)
  } finally {
    await target.stop()
  }
}
