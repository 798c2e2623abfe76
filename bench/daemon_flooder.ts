/**
 * End-to-end throughput of the embedded daemon with Spread's `spflooder`
 * workload: one sender, a member of the group it floods, gets its own
 * messages back and keeps at most a window of them outstanding. Plus one
 * sender fanning out to 10 receivers (the window then bounds the slowest
 * receiver).
 *
 * The clients are minimal raw-protocol clients: each message is encoded
 * once, sends are batched into one write of as many copies as the window
 * allows, and receivers count frames with the codec's FrameDecoder. So what
 * is measured is the daemon plus the least a client can cost.
 *
 * Runs every case against
 *   - an in-process daemon (`Daemon.make({ port: 0 })`, sharing this
 *     process's one JavaScript thread with the clients);
 *   - a daemon in a separate process (`deno run src/cli/daemon.ts`), so
 *     daemon and clients use two cores;
 *   - and, when SPREAD_DAEMON is set (e.g. `4804@127.0.0.1`), that daemon.
 *
 * ```sh
 * deno run -A bench/daemon_flooder.ts            # every case
 * deno run -A bench/daemon_flooder.ts --quick    # a tenth of the messages
 * deno run -A bench/daemon_flooder.ts --only="1 KB self" --in-process   # one case, one daemon
 * ```
 *
 * @module
 */
import { Effect, Exit, Logger, LogLevel, Scope } from "effect"
import * as Daemon from "../src/daemon/mod.ts"
import { ownProcess } from "./_daemons.ts"
import {
  encodeAuthChoice,
  encodeCommand,
  encodeConnect,
  encodeMulticast,
  FrameDecoder,
  isProtocolError,
  ServiceBits,
} from "../src/protocol/mod.ts"

const WINDOW = 300
const GROUP = "flooder"
const quick = Deno.args.includes("--quick")
const only = Deno.args.find((a) => a.startsWith("--only="))?.slice("--only=".length)
const inProcessOnly = Deno.args.includes("--in-process")

interface Case {
  readonly label: string
  readonly size: number
  readonly count: number
  readonly receivers: number
}

const CASES: ReadonlyArray<Case> = [
  { label: "100 B self", size: 100, count: 100_000, receivers: 0 },
  { label: "1 KB self", size: 1000, count: 100_000, receivers: 0 },
  { label: "10 KB self", size: 10_000, count: 20_000, receivers: 0 },
  { label: "1 KB to 10", size: 1000, count: 20_000, receivers: 10 },
].filter((c) => only === undefined || c.label === only)
  .map((c) => (quick ? { ...c, count: c.count / 10 } : c))

/** A minimal client: handshake, join, write, and a counting reader. */
class Client {
  readonly decoder = new FrameDecoder("toClient")
  privateGroup = ""
  /** Regular (data) frames received. */
  count = 0
  /** Membership frames received. */
  memberships = 0
  #progress: ((ended: boolean) => void) | undefined
  #reading: Promise<void> | undefined
  #ended = false

  private constructor(readonly conn: Deno.Conn) {}

  static async open(hostname: string, port: number, name: string): Promise<Client> {
    const conn = await Deno.connect({ hostname, port })
    conn.setNoDelay(true)
    const c = new Client(conn)
    await c.#handshake(name)
    return c
  }

  async #readExactly(n: number): Promise<Uint8Array> {
    const out = new Uint8Array(n)
    let got = 0
    while (got < n) {
      const r = await this.conn.read(out.subarray(got))
      if (r === null) throw new Error("EOF during the handshake")
      got += r
    }
    return out
  }

  async #handshake(name: string): Promise<void> {
    await this.write(encodeConnect({ version: { major: 5, minor: 0, patch: 1 }, membership: true, priority: 0, name }))
    const len = (await this.#readExactly(1))[0]
    if (len > 127) throw new Error(`rejected: ${len - 256}`)
    await this.#readExactly(len)
    const choice = encodeAuthChoice(["NULL"])
    if (isProtocolError(choice)) throw choice
    await this.write(choice)
    const head = await this.#readExactly(5)
    if (head[0] !== 1) throw new Error(`rejected: ${head[0] - 256}`)
    this.privateGroup = String.fromCharCode(...(await this.#readExactly(head[4])))
  }

  async write(bytes: Uint8Array): Promise<void> {
    let off = 0
    while (off < bytes.length) off += await this.conn.write(bytes.subarray(off))
  }

  /** Starts counting what arrives, until EOF. */
  startReading(): void {
    this.#reading ??= (async () => {
      for (;;) {
        const buf = new Uint8Array(256 * 1024)
        let n: number | null
        try {
          n = await this.conn.read(buf)
        } catch {
          n = null
        }
        if (n === null) break
        this.decoder.push(buf.subarray(0, n))
        let bad = false
        for (;;) {
          const f = this.decoder.next()
          if (f === undefined) break
          if (isProtocolError(f)) {
            console.error(`${this.privateGroup}: ${f.message}`)
            bad = true
            break
          }
          if ((f.type & ServiceBits.REGULAR_MESS) !== 0) this.count++
          else this.memberships++
        }
        if (bad) break
        const p = this.#progress
        this.#progress = undefined
        p?.(false)
      }
      this.#ended = true
      const p = this.#progress
      this.#progress = undefined
      p?.(true)
    })()
  }

  /** Resolves at the next chunk read; rejects once the connection has ended. */
  progress(): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.#ended) return reject(new Error(`${this.privateGroup}: the daemon closed the connection`))
      const prev = this.#progress
      this.#progress = (ended) => {
        prev?.(ended)
        if (ended) reject(new Error(`${this.privateGroup}: the daemon closed the connection`))
        else resolve()
      }
    })
  }

  async close(): Promise<void> {
    try {
      this.conn.close()
    } catch {
      // already closed
    }
    await this.#reading?.catch(() => undefined)
  }
}

interface Result {
  readonly seconds: number
  readonly messages: number
  readonly deliveries: number
  readonly bytes: number
}

let runId = 0

/** One case against the daemon at hostname:port. */
const runCase = async (hostname: string, port: number, c: Case): Promise<Result> => {
  const id = ++runId
  const clients: Array<Client> = []
  try {
    const sender = await Client.open(hostname, port, `s${id}`)
    clients.push(sender)
    const receivers: Array<Client> = []
    for (let i = 0; i < c.receivers; i++) receivers.push(await Client.open(hostname, port, `r${id}x${i}`))
    clients.push(...receivers)
    return await flood(sender, receivers, c)
  } finally {
    for (const r of clients) await r.close()
  }
}

const flood = async (sender: Client, receivers: ReadonlyArray<Client>, c: Case): Promise<Result> => {
  const counted = c.receivers === 0 ? [sender] : receivers
  for (const r of counted) {
    r.startReading()
    await r.write(encodeCommand("Join", r.privateGroup, GROUP))
  }
  // Every member has seen every join.
  for (let i = 0; i < counted.length; i++) {
    const r = counted[i]
    while (r.memberships < counted.length - i) await r.progress()
  }
  const frame = encodeMulticast({
    privateGroup: sender.privateGroup,
    service: "Fifo",
    groups: [GROUP],
    data: new Uint8Array(c.size).fill(0x61),
  })
  const batch = new Uint8Array(frame.length * WINDOW)
  for (let i = 0; i < WINDOW; i++) batch.set(frame, i * frame.length)
  const slowest = (): Client => counted.reduce((a, b) => (b.count < a.count ? b : a))
  const start = performance.now()
  let sent = 0
  while (sent < c.count) {
    const s = slowest()
    const room = WINDOW - (sent - s.count)
    if (room <= 0) {
      await s.progress()
      continue
    }
    const k = Math.min(room, c.count - sent)
    await sender.write(batch.subarray(0, k * frame.length))
    sent += k
  }
  for (;;) {
    const s = slowest()
    if (s.count >= c.count) break
    await s.progress()
  }
  const seconds = (performance.now() - start) / 1000
  const deliveries = c.count * counted.length
  return { seconds, messages: c.count, deliveries, bytes: deliveries * c.size }
}

const fmt = (n: number, digits = 0): string =>
  n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits })

const report = (where: string, c: Case, r: Result): void => {
  const fanout = c.receivers > 0 ? ` (${fmt(r.deliveries / r.seconds)} deliveries/s)` : ""
  console.log(
    `${where.padEnd(22)} ${c.label.padEnd(11)} ${fmt(r.messages).padStart(7)} msgs ${
      fmt(r.seconds, 2).padStart(6)
    } s ` +
      `${fmt(r.messages / r.seconds).padStart(8)} msgs/s ${
        fmt(r.bytes / r.seconds / 1e6, 1).padStart(6)
      } MB/s${fanout}`,
  )
}

const runAll = async (where: string, hostname: string, port: number): Promise<void> => {
  for (const c of CASES) {
    try {
      report(where, c, await runCase(hostname, port, c))
    } catch (e) {
      console.log(`${where.padEnd(22)} ${c.label.padEnd(11)} failed: ${e instanceof Error ? e.message : String(e)}`)
    }
  }
}

const inProcess = async (): Promise<void> => {
  const scope = Effect.runSync(Scope.make())
  const daemon = await Effect.runPromise(
    Daemon.make({ port: 0 }).pipe(Scope.extend(scope), Logger.withMinimumLogLevel(LogLevel.Error)),
  )
  try {
    await runAll("in-process", daemon.host, daemon.port)
  } finally {
    await Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

const separateProcess = async (): Promise<void> => {
  const daemon = await ownProcess()
  const port = Number(daemon.spreadName.split("@")[0])
  try {
    await runAll("own process", "127.0.0.1", port)
  } finally {
    await daemon.stop()
  }
}

const external = async (spec: string): Promise<void> => {
  const m = /^(\d+)@(.+)$/.exec(spec)
  if (m === null) {
    console.log(`SPREAD_DAEMON="${spec}" is not port@host; skipped`)
    return
  }
  await runAll(`SPREAD ${spec}`, m[2], Number(m[1]))
}

console.log(
  `spflooder workload: FIFO to one group, window ${WINDOW} outstanding messages, ` +
    `timed from the first send to the last delivery; ${Deno.build.os}/${Deno.build.arch}, ` +
    `${navigator.hardwareConcurrency} cores, Deno ${Deno.version.deno}`,
)
await inProcess()
if (!inProcessOnly) {
  await separateProcess()
  const spread = Deno.env.get("SPREAD_DAEMON")
  if (spread !== undefined && spread.length > 0) await external(spread)
}
