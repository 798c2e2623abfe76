/**
 * Memory over reconnects: a client (this process) with `reconnect`, one
 * subscription it reads and a `messages` buffer nobody reads (what the
 * issue's subscribe-only connection had), against a daemon in its own process that is killed with
 * SIGKILL and started again on the same port 40 times. After each
 * reconnect a peer sends one message to each group, then the client's heap
 * and external memory are read after a forced GC. Flat figures mean a
 * reconnect leaves nothing behind (the reconnect marks in `messages` are
 * coalesced into one: see `Discontinuity`).
 *
 * ```sh
 * deno run -A --v8-flags=--expose-gc bench/reconnect_memory.ts [reconnects] [--no-peer]
 * deno run -A --v8-flags=--expose-gc,--jitless bench/reconnect_memory.ts [reconnects] [--no-peer]
 * ```
 *
 * With the JIT on, the heap also holds the machine code and bytecode V8
 * compiles as the program warms up (a few KiB a reconnect for the first
 * hundred or so, then less: V8's to keep or flush): `objects` is the heap
 * without V8's code and trusted spaces, what the program keeps; or run with
 * `--jitless`. 100 reconnects, `--jitless`: 7.2 KiB a reconnect before
 * the fibers of a new session were started from the connection's own
 * runtime (each generation inherited the last one's FiberRef stacks, with
 * a span and its stack trace in each entry), 0.1 KiB after.
 *
 * @module
 */
import v8 from "node:v8"
import { ownProcess } from "./_daemons.ts"
import { Effect, Exit, Queue, Schedule, Scope, Stream } from "effect"
import { connect, isDiscontinuity } from "../mod.ts"

const RECONNECTS = Number(Deno.args.find((a) => /^\d+$/.test(a)) ?? 40)
/** `--no-peer`: no message after each reconnect (what the reconnects alone cost). */
const PEER = !Deno.args.includes("--no-peer")
const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) {
  console.error("run with --v8-flags=--expose-gc")
  Deno.exit(2)
}
/** A daemon process on `port` (0: any); answers its port and how to kill it (SIGKILL, as a crash). */
const spawn = async (port: number) => {
  const d = await ownProcess([], port)
  return {
    port: Number(d.spreadName.split("@")[0]),
    kill: async () => {
      if (d.pid !== undefined) Deno.kill(d.pid, "SIGKILL")
      await d.stop()
    },
  }
}

// V8's code and trusted spaces hold the machine code and bytecode it
// compiles as the program warms up; the other spaces hold the program's
// objects.
const CODE_SPACES = new Set(["code_space", "code_large_object_space", "trusted_space", "trusted_large_object_space"])
const measure = () => {
  for (let i = 0; i < 3; i++) gc()
  const m = Deno.memoryUsage()
  const objects = v8.getHeapSpaceStatistics().filter((s) => !CODE_SPACES.has(s.space_name))
    .reduce((sum, s) => sum + s.space_used_size, 0)
  return { heap: m.heapUsed, objects, external: m.external }
}

const kb = (n: number) => `${(n / 1024).toFixed(0)} KiB`

let d = await spawn(0)
const port = d.port
const daemon = `${port}@127.0.0.1`
const scope = Effect.runSync(Scope.make())
const run = <A, E>(e: Effect.Effect<A, E, Scope.Scope>) => Effect.runPromise(Scope.extend(e, scope))

const a = await run(connect({
  daemon,
  name: "a",
  inboundCapacity: 8,
  metrics: false,
  reconnect: Schedule.spaced("20 millis").pipe(Schedule.intersect(Schedule.recurs(1000))),
}))
let reconnects = 0
await run(Effect.forkScoped(Stream.runForEach(a.events, (e) =>
  Effect.sync(() => {
    if (e._tag === "Reconnected") reconnects++
  }))))
const sub = await run(Queue.unbounded<string>())
await run(
  Effect.forkScoped(
    Stream.runForEach(
      a.subscribe("sub"),
      (m) => m._tag === "Regular" ? Queue.offer(sub, new TextDecoder().decode(m.data)) : Effect.void,
    ),
  ),
)

const rows: Array<{ n: number; heap: number; objects: number; external: number }> = []
for (let n = 1; n <= RECONNECTS; n++) {
  await d.kill()
  d = await spawn(port)
  while (reconnects < n) await new Promise((r) => setTimeout(r, 5))
  // A message from a peer that comes and goes reaches the subscription;
  // `messages` keeps the reconnect mark, unread.
  if (PEER) {
    await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
      const b = yield* connect({ daemon, metrics: false })
      while (true) {
        yield* b.multicast({ groups: ["sub"], data: `m${n}` })
        const got = yield* Queue.take(sub).pipe(Effect.timeout("200 millis"), Effect.option)
        if (got._tag === "Some" && got.value === `m${n}`) break
      }
    })))
  }
  rows.push({ n, ...measure() })
}

const stats = await run(a.stats)
const marks = await run(Effect.map(a.receiveChunk(64), (c) => [...c].filter(isDiscontinuity)))
console.log(`reconnect_memory: ${RECONNECTS} SIGKILLs of a daemon process, one client reconnecting each time`)
console.log("reconnect   heapUsed    objects   external")
for (const r of rows) {
  if (r.n === 1 || r.n % 5 === 0) {
    console.log(
      `${String(r.n).padStart(9)}  ${kb(r.heap).padStart(9)}  ${kb(r.objects).padStart(9)}  ${
        kb(r.external).padStart(9)
      }`,
    )
  }
}
const from = rows[Math.min(9, rows.length - 1)]
const to = rows[rows.length - 1]
const span = Math.max(1, to.n - from.n)
const perReconnect = (k: "heap" | "objects" | "external") =>
  `${kb(to[k] - from[k])} (${((to[k] - from[k]) / span / 1024).toFixed(2)} KiB per reconnect)`
console.log(
  `growth from reconnect ${from.n} to ${to.n}: heap ${perReconnect("heap")}, of which objects ${
    perReconnect("objects")
  } (the rest is code V8 compiled); external ${perReconnect("external")}`,
)
console.log(
  `state ${
    (await run(a.state))._tag
  }; reconnects ${stats.reconnects}; unread in messages ${stats.inbound}; marks there ${marks.length} (reconnects counted in them: ${
    marks.reduce((s, m) => s + m.reconnects, 0)
  })`,
)
await Effect.runPromise(Scope.close(scope, Exit.void))
await d.kill()
