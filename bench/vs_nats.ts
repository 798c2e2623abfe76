/**
 * spreadfx against NATS, side by side in one run, the way a user writes
 * each: the project's daemon (`src/cli/daemon.ts`) and `nats-server` each in
 * their own process, the clients in this process, on the same Deno.
 *
 * spreadfx runs twice per workload: over TCP (as NATS does), and over the
 * daemon's Unix socket — what `connect()` uses by default for a local
 * daemon (`"4803"` is `/tmp/4803`, Spread's convention). Each gets its own
 * ratio line.
 *
 * Workloads, interleaved (each spreadfx figure is followed at once by the
 * NATS figure of the same workload, so both see the same machine state):
 *
 * - self-delivery: one connection subscribes to a group/subject and sends
 *   N messages to it, receiving its own copies; timed from the first send
 *   to the last copy received.
 *   - spreadfx `multicast`: one `yield* conn.multicast(m)` per message, the
 *     copies read from `conn.messages` in another fiber; the default
 *     adaptive flow window (500 permits) paces the sender.
 *   - spreadfx `multicastMany`: the same in batches of 100.
 *   - NATS: `nc.publish(subject, data)` per message (synchronous), copies
 *     counted in a subscription callback, the sender pausing while 500
 *     messages are unreceived (the same window).
 * - fan-out 1→10: ten receiving connections and one sender (itself a
 *   member, so spreadfx's window paces it; NATS pauses while the slowest
 *   receiver is 500 behind); timed until every receiver has every message.
 *   Twice for spreadfx: with the default adaptive window (500 permits over
 *   11 members: 45 messages in flight) and with `fixedWindow(500)` (the
 *   same 500 in flight as NATS).
 *
 * With `SPFLOODER` (the path of Spread's C `spflooder`) and `SPREAD_DAEMON`
 * (a real Spread daemon, e.g. `4804@127.0.0.1`) set, the self-delivery
 * workloads also time `spflooder -m N -b SIZE` against that daemon — the C
 * client and daemon — and print spreadfx's ratio to it. Neither is built
 * or shipped here; build Spread 5.0.1 from its sources outside the
 * repository.
 *
 * `nats-server` comes from Debian: `apt-get install nats-server` (the bench
 * says so and skips NATS when it is missing). The NATS client is the dev
 * dependency `@nats-io/transport-node` (npm; there is no npm build of the
 * Deno transport).
 *
 * ```sh
 * deno task bench:nats               # every workload
 * deno task bench:nats --quick       # a tenth of the messages
 * deno task bench:nats --only=plain  # workloads whose label contains "plain"
 * deno task bench:nats --rounds=5    # five timed rounds per workload (3 by default)
 * ```
 *
 * Figures on a 2-core machine swing ±30% between runs, and as much between
 * two runs taken back to back. So each workload first runs one untimed
 * warm-up round of every contender (a fifth of the count: the clients share
 * this V8, and the daemon is long-lived, as in production), then `--rounds`
 * timed rounds, each running spreadfx over TCP, spreadfx over the Unix
 * socket and NATS back to back. Each line prints the median rate over the
 * rounds and their range; the ratio is the median of the per-round ratios
 * (each spreadfx round over the NATS round next to it), with their range.
 *
 * @module
 */
import { Effect, Fiber, Stream } from "effect"
import { connect as natsConnect, type NatsConnection } from "@nats-io/transport-node"
import { connect, type Connection, fixedWindow, type FlowWindow } from "../mod.ts"
import { grouped, ownProcess } from "./_daemons.ts"

const quick = Deno.args.includes("--quick")
const ROUNDS = Math.max(1, Number(Deno.args.find((a) => a.startsWith("--rounds="))?.slice("--rounds=".length) ?? 3))
const only = Deno.args.find((a) => a.startsWith("--only="))?.slice("--only=".length)
const WINDOW = 500
const BATCH = 100

type Mode = "plain" | "many" | "fanout"
interface Case {
  readonly label: string
  readonly mode: Mode
  readonly size: number
  readonly count: number
  /** spreadfx's flow window for the case; the default (adaptive 500) when absent. */
  readonly window?: FlowWindow
}

const CASES: ReadonlyArray<Case> = ([
  { label: "plain multicast   100 B", mode: "plain", size: 100, count: 200_000 },
  { label: "plain multicast   1 KB", mode: "plain", size: 1000, count: 200_000 },
  { label: "plain multicast   10 KB", mode: "plain", size: 10_000, count: 40_000 },
  { label: "multicastMany×100 100 B", mode: "many", size: 100, count: 200_000 },
  { label: "multicastMany×100 1 KB", mode: "many", size: 1000, count: 200_000 },
  { label: "multicastMany×100 10 KB", mode: "many", size: 10_000, count: 40_000 },
  { label: "fan-out 1→10      1 KB", mode: "fanout", size: 1000, count: 40_000 },
  // The default window lets 500 / 11 members = 45 messages be in flight;
  // NATS is paced at 500. The same 500 for spreadfx: fixedWindow(500).
  { label: "fan-out 1→10 fixed500 1 KB", mode: "fanout", size: 1000, count: 40_000, window: fixedWindow(500) },
] as const).filter((c) => only === undefined || c.label.includes(only) || c.mode === only)
  .map((c) => (quick ? { ...c, count: c.count / 10 } : c))

// ---------------------------------------------------------------- spreadfx

const UNIX_PATH = `/tmp/spreadfx-bench-${Deno.pid}`

const countRegular = (conn: Connection, count: number) =>
  Stream.runFoldWhile(conn.messages, 0, (n) => n < count, (n, m) => (m._tag === "Regular" ? n + 1 : n))

const spreadSelf = (daemon: string, c: Case) =>
  Effect.scoped(Effect.gen(function* () {
    const conn = yield* connect({ daemon, membership: false })
    yield* conn.join("bench")
    const data = new Uint8Array(c.size).fill(0x61)
    const message = { groups: "bench", data, service: "Fifo" as const }
    const batch = Array.from({ length: BATCH }, () => message)
    // Warm up the code paths.
    const warm = yield* Effect.fork(countRegular(conn, 2000))
    for (let i = 0; i < 2000; i++) yield* conn.multicast(message)
    yield* Fiber.join(warm)

    const t0 = performance.now()
    const receiver = yield* Effect.fork(countRegular(conn, c.count))
    if (c.mode === "plain") {
      for (let i = 0; i < c.count; i++) yield* conn.multicast(message)
    } else {
      for (let i = 0; i < c.count; i += BATCH) yield* conn.multicastMany(batch)
    }
    yield* Fiber.join(receiver)
    return (performance.now() - t0) / 1000
  }))

const spreadFanout = (daemon: string, c: Case) =>
  Effect.scoped(Effect.gen(function* () {
    const receivers: Array<Connection> = []
    for (let i = 0; i < 10; i++) {
      const r = yield* connect({ daemon, membership: false })
      yield* r.join("fanout")
      receivers.push(r)
    }
    const sender = yield* connect(c.window === undefined ? { daemon } : { daemon, window: c.window })
    yield* sender.join("fanout")
    // Wait until the sender's view has all eleven members (its window adapts to it).
    yield* sender.watch("fanout").pipe(
      Stream.takeUntil((v) => v._tag === "Some" && v.value.members.length === 11),
      Stream.runDrain,
    )
    const message = { groups: "fanout", data: new Uint8Array(c.size).fill(0x62), service: "Fifo" as const }
    const t0 = performance.now()
    const fibers = yield* Effect.forEach(receivers, (r) => Effect.fork(countRegular(r, c.count)))
    const own = yield* Effect.fork(countRegular(sender, c.count))
    for (let i = 0; i < c.count; i++) yield* sender.multicast(message)
    yield* Fiber.joinAll([...fibers, own])
    return (performance.now() - t0) / 1000
  }))

// ---------------------------------------------------------------- NATS

/** Counts messages on `subject` and lets a sender wait for the count to reach a mark. */
const counter = (nc: NatsConnection, subject: string) => {
  let n = 0
  let mark = Infinity
  let wake: (() => void) | undefined
  const sub = nc.subscribe(subject, {
    callback: () => {
      n++
      if (n >= mark && wake !== undefined) {
        const w = wake
        wake = undefined
        mark = Infinity
        w()
      }
    },
  })
  return {
    get count() {
      return n
    },
    /** Resolves once at least `target` messages arrived. */
    atLeast: (target: number): Promise<void> =>
      n >= target ? Promise.resolve() : new Promise<void>((resolve) => {
        mark = target
        wake = resolve
      }),
    stop: () => sub.unsubscribe(),
  }
}

const natsSelf = async (port: number, c: Case): Promise<number> => {
  const nc = await natsConnect({ servers: `127.0.0.1:${port}` })
  try {
    const data = new Uint8Array(c.size).fill(0x61)
    const warm = counter(nc, "warm")
    for (let i = 0; i < 2000; i++) {
      if (i - warm.count >= WINDOW) await warm.atLeast(i - WINDOW + 1)
      nc.publish("warm", data)
    }
    await warm.atLeast(2000)
    warm.stop()
    const own = counter(nc, "bench")
    await nc.flush()
    const t0 = performance.now()
    if (c.mode === "plain") {
      for (let i = 0; i < c.count; i++) {
        if (i - own.count >= WINDOW) await own.atLeast(i - WINDOW + 1)
        nc.publish("bench", data)
      }
    } else {
      // NATS has no batch call; a batch is BATCH publishes between waits.
      for (let i = 0; i < c.count; i += BATCH) {
        if (i + BATCH - own.count > WINDOW) await own.atLeast(i + BATCH - WINDOW)
        for (let k = 0; k < BATCH; k++) nc.publish("bench", data)
      }
    }
    await own.atLeast(c.count)
    const seconds = (performance.now() - t0) / 1000
    own.stop()
    return seconds
  } finally {
    await nc.close()
  }
}

const natsFanout = async (port: number, c: Case): Promise<number> => {
  const conns: Array<NatsConnection> = []
  try {
    const counters: Array<ReturnType<typeof counter>> = []
    for (let i = 0; i < 10; i++) {
      const nc = await natsConnect({ servers: `127.0.0.1:${port}` })
      conns.push(nc)
      counters.push(counter(nc, "fanout"))
      await nc.flush()
    }
    const nc = await natsConnect({ servers: `127.0.0.1:${port}` })
    conns.push(nc)
    const data = new Uint8Array(c.size).fill(0x62)
    const slowest = () => counters.reduce((m, k) => Math.min(m, k.count), Infinity)
    const t0 = performance.now()
    for (let i = 0; i < c.count; i++) {
      if (i - slowest() >= WINDOW) {
        await Promise.all(counters.map((k) => k.atLeast(i - WINDOW + 1)))
      }
      nc.publish("fanout", data)
    }
    await Promise.all(counters.map((k) => k.atLeast(c.count)))
    return (performance.now() - t0) / 1000
  } finally {
    for (const nc of conns) await nc.close()
  }
}

// ---------------------------------------------------------------- runner

const startNats = async (): Promise<{ port: number; stop: () => Promise<void> } | undefined> => {
  const port = 14222 + Math.floor(Math.random() * 1000)
  let child: Deno.ChildProcess
  try {
    child = new Deno.Command("nats-server", {
      args: ["-a", "127.0.0.1", "-p", String(port)],
      stdout: "null",
      stderr: "null",
    }).spawn()
  } catch {
    console.log("nats-server not found: install it with `apt-get install nats-server` to compare; NATS skipped")
    return undefined
  }
  for (let i = 0; i < 100; i++) {
    try {
      const probe = await Deno.connect({ hostname: "127.0.0.1", port })
      probe.close()
      break
    } catch {
      await new Promise((r) => setTimeout(r, 50))
    }
  }
  return {
    port,
    stop: async () => {
      child.kill("SIGTERM")
      await child.status
    },
  }
}

/**
 * Times Spread's C flooder (send and receive N messages of SIZE bytes)
 * against a real daemon; seconds, or undefined when it failed or did not
 * finish within a minute (a 5.0.1 daemon can stall a 10 KB flood).
 */
const spreadC = async (c: Case): Promise<number | undefined> => {
  const flooder = Deno.env.get("SPFLOODER")
  const daemon = Deno.env.get("SPREAD_DAEMON")
  if (flooder === undefined || daemon === undefined || c.mode === "fanout") return undefined
  const t0 = performance.now()
  const child = new Deno.Command(flooder, {
    args: ["-s", daemon, "-m", String(c.count), "-b", String(c.size)],
    stdout: "null",
    stderr: "null",
  }).spawn()
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000)
  const status = await child.status
  clearTimeout(timer)
  if (!status.success) {
    console.log(`${c.label.padEnd(25)} Spread C  did not finish (${status.signal ?? `exit ${status.code}`})`)
    return undefined
  }
  return (performance.now() - t0) / 1000
}

/** The median of `xs` (the mean of the middle two for an even count). */
const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2
}

const range = (xs: ReadonlyArray<number>, digits: number): string =>
  `${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)}`

/** Prints the median rate of the rounds, and their range. */
const line = (label: string, who: string, count: number, rates: ReadonlyArray<number>, size: number) => {
  const mid = median(rates)
  const spread = rates.length > 1 ? ` (rounds ${grouped(Math.min(...rates))}–${grouped(Math.max(...rates))})` : ""
  console.log(
    `${label.padEnd(27)} ${who.padEnd(9)} ${grouped(count).padStart(8)} msgs ` +
      `${grouped(mid).padStart(9)} msgs/s ${(mid * size / 1e6).toFixed(1).padStart(7)} MB/s${spread}`,
  )
}

console.log(
  `spreadfx vs NATS: daemon and nats-server each in their own process, clients here; ` +
    `${Deno.build.os}/${Deno.build.arch}, ${navigator.hardwareConcurrency} cores, Deno ${Deno.version.deno}; ` +
    `${ROUNDS} interleaved rounds per workload after a warm-up round`,
)
const daemon = await ownProcess(["--unix", UNIX_PATH])
const nats = await startNats()

try {
  for (const c of CASES) {
    const spread = (address: string, k: Case) =>
      Effect.runPromise(k.mode === "fanout" ? spreadFanout(address, k) : spreadSelf(address, k))
    const natsRun = (k: Case) => (k.mode === "fanout" ? natsFanout(nats!.port, k) : natsSelf(nats!.port, k))
    // Warm-up: one untimed round of each at a fifth of the count, so the
    // timed rounds see code already optimised (both clients run on the same
    // V8 here, and the daemon is a long-lived process, as in production).
    const warm = { ...c, count: Math.max(2000, Math.floor(c.count / 5)) }
    await spread(daemon.spreadName, warm)
    await spread(UNIX_PATH, warm)
    if (nats !== undefined) await natsRun(warm)
    const tcp: Array<number> = []
    const unix: Array<number> = []
    const theirs: Array<number> = []
    for (let r = 0; r < ROUNDS; r++) {
      tcp.push(c.count / await spread(daemon.spreadName, c))
      unix.push(c.count / await spread(UNIX_PATH, c))
      if (nats !== undefined) theirs.push(c.count / await natsRun(c))
    }
    line(c.label, "sfx tcp", c.count, tcp, c.size)
    line(c.label, "sfx unix", c.count, unix, c.size)
    const cTime = await spreadC(c)
    if (cTime !== undefined) {
      const cRate = c.count / cTime
      line(c.label, "Spread C", c.count, [cRate], c.size)
      console.log(
        `${c.label.padEnd(27)} ratio     spreadfx / Spread C = ${(median(tcp) / cRate).toFixed(2)}× over TCP`,
      )
    }
    if (nats === undefined) continue
    line(c.label, "NATS", c.count, theirs, c.size)
    // Per round: each spreadfx figure over the NATS figure of the same round.
    const overTcp = tcp.map((x, i) => x / theirs[i])
    const overUnix = unix.map((x, i) => x / theirs[i])
    console.log(
      `${c.label.padEnd(27)} ratio     spreadfx / NATS = ${median(overTcp).toFixed(2)}× over TCP ` +
        `(rounds ${range(overTcp, 2)}), ${median(overUnix).toFixed(2)}× over the Unix socket (${range(overUnix, 2)})`,
    )
  }
} finally {
  await daemon.stop()
  await nats?.stop()
}
