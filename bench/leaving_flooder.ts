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
 * The flooder sends PACE messages per ms at most (default 0.5, 50 MB/s)
 * and pauses LINGER ms (default 200) between its last write and its close
 * (see below). The daemon runs in its own process (`src/cli/daemon.ts`); the two
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
import { Effect, Stream } from "effect"
import { connect, isMembership, isRegular } from "../mod.ts"
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
// The flooder's pace in messages per millisecond: no faster than the
// reader (another process on the same cores) keeps up with, so that the
// reader is never the one cut off as a slow reader. The flooder itself is:
// its own copies, unread, pass the daemon's 64 MiB per session at about
// message 670, and what it sends after that must still be delivered.
const PACE = arg("--pace", 0.5)

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

// The reader, in its own process (so it is never the slow one), is this
// library's client: joins, prints "ready", counts the flooder's messages
// until the flooder's disconnect (or 30 s), prints "<count> <gone>".
const reader = (group: string, flooder: string) =>
  Effect.scoped(Effect.gen(function* () {
    const c = yield* connect({ daemon: target.spreadName, membership: true, inboundCapacity: 4096 })
    yield* c.join(group)
    console.log("ready")
    let got = 0
    let gone = false
    const ended = yield* c.messages.pipe(
      Stream.takeUntil((m) => isMembership(m) && m.cause === "Disconnect" && m.changed === flooder),
      Stream.runForEach((m) =>
        Effect.sync(() => {
          if (isRegular(m) && m.sender === flooder) got++
          else if (isMembership(m) && m.cause === "Disconnect" && m.changed === flooder) gone = true
        })
      ),
      Effect.timeout("30 seconds"),
      Effect.either,
    )
    // The reader's own connection ended first: the daemon cut it off as a
    // slow reader (a loaded machine), so this run says nothing of the flooder.
    const readerCut = ended._tag === "Left" && !gone ? "readercut" : "ok"
    return `${got} ${gone} ${readerCut}`
  }))

if (Deno.args[0] === "--reader") {
  console.log(await Effect.runPromise(reader(Deno.args[1], Deno.args[2])))
  Deno.exit(0)
}

const run = async (i: number): Promise<{ got: number; gone: boolean; readerCut: boolean }> => {
  const group = `leave-${i}-${Date.now() % 100000}`
  const flooderName = `f${i}`
  const flooderGroup = `#${flooderName}#localhost`
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(import.meta.url).pathname, "--reader", group, flooderGroup],
    env: { SPREAD_DAEMON: target.spreadName },
    stdout: "piped",
    stderr: "inherit",
  }).spawn()
  const out = child.stdout.pipeThrough(new TextDecoderStream()).getReader()
  let text = ""
  while (!text.includes("ready\n")) {
    const { value, done } = await out.read()
    if (done) throw new Error(`the reader exited: ${text}`)
    text += value
  }
  await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
    const flooder = yield* RawClient.connect(address, { name: flooderName, membership: true })
    yield* joined(flooder, group)
    const one = encodeMulticast({
      privateGroup: flooder.privateGroup,
      service: "Reliable",
      groups: [group],
      data: new Uint8Array(SIZE).fill(0x66),
    })
    const t0 = Date.now()
    for (let k = 0; k < COUNT; k++) {
      yield* flooder.write(one)
      const ahead = k / PACE - (Date.now() - t0)
      if (ahead >= 5) yield* Effect.sleep(ahead)
    }
    // A process takes a moment to exit after its last write. Closing a
    // socket with unread data makes the kernel send a reset and drop what
    // it had not sent yet, at the flooder's side, whatever the daemon: the
    // pause lets the last writes leave (--linger 0 to see that loss too).
    yield* Effect.sleep(LINGER)
    // Away (the scope closes the socket) without reading its own copies.
  })))
  for (;;) {
    const { value, done } = await out.read()
    if (done) break
    text += value
  }
  await child.status
  const m = /(\d+) (true|false) (\w+)/.exec(text.slice(text.indexOf("ready\n")))
  return m === null
    ? { got: -1, gone: false, readerCut: false }
    : { got: Number(m[1]), gone: m[2] === "true", readerCut: m[3] === "readercut" }
}

console.log(
  `leaving flooder: ${RUNS} runs of ${COUNT} × ${SIZE} B, linger ${LINGER} ms, daemon ${target.label} at ${target.spreadName}`,
)
let bad = 0
let inconclusive = 0
for (let i = 0; i < RUNS; i++) {
  const r = await run(i)
  const ok = r.got === COUNT && r.gone
  if (r.readerCut) {
    inconclusive++
    console.log(`run ${i + 1}: the reader was cut off as a slow reader after ${r.got} (machine too busy; --pace lower)`)
    continue
  }
  if (!ok) bad++
  console.log(
    `run ${i + 1}: ${r.got}/${COUNT} delivered before the disconnect${r.gone ? "" : " (no disconnect seen)"}${
      ok ? "" : "  <-- LOST"
    }`,
  )
}
await target.stop()
console.log(
  `${RUNS - bad - inconclusive} of ${RUNS} runs delivered everything` +
    (inconclusive === 0 ? "" : ` (${inconclusive} inconclusive: the reader was cut off)`),
)
Deno.exit(bad === 0 ? 0 : 1)
