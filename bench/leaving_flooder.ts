/**
 * Nothing a client sent is lost when it goes away without reading: a
 * flooder multicasts COUNT × 100 KB messages to a group it belongs to
 * (membership on, so the daemon writes its own copies and the membership
 * messages back to it), then closes its socket without reading any of
 * them. Its unread receive queue makes the kernel answer with a reset, so
 * the daemon's writes to it fail while what it sent may still be in the
 * daemon's receive queue. A second member reads everything and counts the
 * flooder's messages that arrive before the flooder's CAUSED_BY_DISCONNECT.
 *
 * The flooder pauses LINGER ms (default 200) between its last write and
 * its close (see below). The daemon runs in its own process (`src/cli/daemon.ts`); the two
 * clients are raw sockets in this one. Every run must deliver COUNT of
 * COUNT; the program exits with status 1 if one does not.
 *
 * ```sh
 * deno run -A bench/leaving_flooder.ts              # 10 runs of 1000 × 100 KB
 * deno run -A bench/leaving_flooder.ts --runs 3 --count 300
 * SPREAD_DAEMON=4803@127.0.0.1 deno run -A bench/leaving_flooder.ts   # against that daemon instead
 * ```
 *
 * @module
 */
import { Effect, Exit, Fiber, Scope } from "effect"
import { decodeServerMessage, encodeMulticast } from "../src/protocol/mod.ts"
import { parseSpreadName } from "../src/protocol/address.ts"
import { RawClient } from "../tests/_helpers/raw_client.ts"
import { ownProcess, type Target } from "./_daemons.ts"

const arg = (name: string, fallback: number): number => {
  const i = Deno.args.indexOf(name)
  return i >= 0 ? Number(Deno.args[i + 1]) : fallback
}
const RUNS = arg("--runs", 10)
const COUNT = arg("--count", 1000)
const LINGER = arg("--linger", 200)
const SIZE = 100_000

const spread = Deno.env.get("SPREAD_DAEMON")
const target: Target = spread !== undefined && spread.length > 0
  ? { label: `SPREAD ${spread}`, spreadName: spread, stop: () => Promise.resolve() }
  : await ownProcess()
const address = parseSpreadName(target.spreadName)
if (address === undefined) throw new Error(`bad daemon address ${target.spreadName}`)

const joined = (c: RawClient, group: string) =>
  Effect.gen(function* () {
    yield* c.join(group)
    for (;;) {
      const m = decodeServerMessage(yield* c.frame(5000))
      if (m._tag === "Membership" && m.group === group && m.changed === c.privateGroup) return
    }
  })

const run = (i: number) =>
  Effect.scoped(Effect.gen(function* () {
    const group = `leave-${i}-${Date.now() % 100000}`
    const reader = yield* RawClient.connect(address, { name: `r${i}`, membership: true })
    yield* joined(reader, group)
    const scope = yield* Scope.make()
    const flooder = yield* RawClient.connect(address, { name: `f${i}`, membership: true }).pipe(
      Scope.extend(scope),
    )
    yield* joined(flooder, group)
    const one = encodeMulticast({
      privateGroup: flooder.privateGroup,
      service: "Reliable",
      groups: [group],
      data: new Uint8Array(SIZE).fill(0x66),
    })
    // Read concurrently from the start: the reader must never be the slow one.
    let got = 0
    let gone = false
    const reading = yield* Effect.fork(Effect.gen(function* () {
      while (!gone) {
        const r = yield* reader.next(10_000)
        if (r._tag !== "Frame") return
        const m = decodeServerMessage(r.frame)
        if (m._tag === "Regular" && m.sender === flooder.privateGroup) got++
        else if (m._tag === "Membership" && m.cause === "Disconnect" && m.changed === flooder.privateGroup) gone = true
      }
    }))
    for (let k = 0; k < COUNT; k++) yield* flooder.write(one)
    // A process takes a moment to exit after its last write. Closing a
    // socket with unread data makes the kernel send a reset and drop what
    // it had not sent yet, at the flooder's side, whatever the daemon: the
    // pause lets the last writes leave (--linger 0 to see that loss too).
    yield* Effect.sleep(LINGER)
    // Away without reading its own copies.
    yield* Scope.close(scope, Exit.void)
    const started = Date.now()
    while (!gone && Date.now() - started < 30_000) yield* Effect.sleep(20)
    yield* Fiber.interrupt(reading)
    return { got, gone }
  }))

console.log(
  `leaving flooder: ${RUNS} runs of ${COUNT} × ${SIZE} B, linger ${LINGER} ms, daemon ${target.label} at ${target.spreadName}`,
)
let bad = 0
for (let i = 0; i < RUNS; i++) {
  const r = await Effect.runPromise(run(i))
  const ok = r.got === COUNT && r.gone
  if (!ok) bad++
  console.log(
    `run ${i + 1}: ${r.got}/${COUNT} delivered before the disconnect${r.gone ? "" : " (no disconnect seen)"}${
      ok ? "" : "  <-- LOST"
    }`,
  )
}
await target.stop()
console.log(`${RUNS - bad} of ${RUNS} runs delivered everything`)
Deno.exit(bad === 0 ? 0 : 1)
