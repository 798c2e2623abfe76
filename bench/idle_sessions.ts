/**
 * Idle sessions: starts a daemon in its own process (bench/_idle_daemon.ts), opens N
 * sessions to it with raw handshakes (each joins one of 100 groups), and
 * reports the daemon's resident memory per session 2 s after opening them
 * (what a burst of connections leaves behind) and 30 s after (once V8 has
 * given back the pages the burst grew), how long the connections took, and
 * a round trip through the daemon while they all sit idle. Then it closes them all and checks the daemon saw every one go.
 *
 * ```sh
 * deno run -A bench/idle_sessions.ts            # 10,000 sessions
 * deno run -A bench/idle_sessions.ts --n=2000
 * ```
 *
 * Each process needs a descriptor per session: `ulimit -n` must exceed N
 * (it is 20,000 on the development machine).
 *
 * @module
 */
import {
  encodeAuthChoice,
  encodeCommand,
  encodeConnect,
  encodeMulticast,
  FrameDecoder,
  isProtocolError,
  SPREAD_VERSION,
} from "../src/protocol/mod.ts"
import { daemonV8Flags } from "./_daemons.ts"

const N = Number(Deno.args.find((a) => a.startsWith("--n="))?.slice(4) ?? 10_000)
const PARALLEL = 200

const rssKiB = (pid: number): number => {
  const m = /VmRSS:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${pid}/status`))
  return m === null ? NaN : Number(m[1])
}

// The daemon in its own process (bench/_idle_daemon.ts), which reports its
// heap on request after a full GC.
const child = new Deno.Command(Deno.execPath(), {
  args: [
    "run",
    "--allow-net",
    `--v8-flags=${["--expose-gc", ...daemonV8Flags].join(",")}`,
    new URL("./_idle_daemon.ts", import.meta.url).pathname,
    JSON.stringify({ maxSessions: N + 10 }),
  ],
  stdin: "piped",
  stdout: "piped",
  stderr: "inherit",
}).spawn()
const pid = child.pid
const out = child.stdout.pipeThrough(new TextDecoderStream()).getReader()
const stdin = child.stdin.getWriter()
let pending = ""
const line = async (): Promise<string> => {
  for (;;) {
    const nl = pending.indexOf("\n")
    if (nl >= 0) {
      const l = pending.slice(0, nl)
      pending = pending.slice(nl + 1)
      return l
    }
    const { value, done } = await out.read()
    if (done) throw new Error("the daemon process exited")
    pending += value
  }
}
interface Heap {
  readonly rss: number
  readonly heapUsed: number
  readonly heapTotal: number
  readonly external: number
  readonly sessions: number
}
const heap = async (): Promise<Heap> => {
  await stdin.write(new TextEncoder().encode("\n"))
  return JSON.parse(await line())
}
const port = Number(/listening on (\d+)@/.exec(await line())?.[1])
await new Promise((r) => setTimeout(r, 300))
const heapBefore = await heap()
const before = rssKiB(pid)

const auth = encodeAuthChoice(["NULL"])
if (isProtocolError(auth)) throw auth

const readAtLeast = async (c: Deno.Conn, n: number): Promise<Uint8Array> => {
  const buf = new Uint8Array(256)
  let got = 0
  while (got < n) {
    const k = await c.read(buf.subarray(got))
    if (k === null) throw new Error("EOF during handshake")
    got += k
  }
  return buf.subarray(0, got)
}

const open = async (i: number): Promise<Deno.Conn> => {
  const c = await Deno.connect({ hostname: "127.0.0.1", port })
  const name = `i${i}`
  await c.write(encodeConnect({ version: SPREAD_VERSION, membership: false, priority: 0, name }))
  await readAtLeast(c, 6) // "NULL " auth list
  await c.write(auth)
  const pg = `#${name}#localhost`
  await readAtLeast(c, 5 + pg.length)
  await c.write(encodeCommand("Join", pg, `idle${i % 100}`))
  return c
}

const conns: Array<Deno.Conn> = []
const t0 = performance.now()
for (let i = 0; i < N; i += PARALLEL) {
  conns.push(...await Promise.all(Array.from({ length: Math.min(PARALLEL, N - i) }, (_, k) => open(i + k))))
}
const connectSeconds = (performance.now() - t0) / 1000
const FRESH = 2
await new Promise((r) => setTimeout(r, FRESH * 1000))
const heapFresh = await heap()
const fresh = rssKiB(pid)
if (heapFresh.sessions !== N) throw new Error(`the daemon has ${heapFresh.sessions} sessions, not ${N}`)
// V8 keeps the heap pages the connection burst grew until its memory
// reducer compacts an idle heap (some 10-20 s later, measured): the idle
// figure is taken 30 s after opening (`--settle=S` to change).
const SETTLE = Number(Deno.args.find((a) => a.startsWith("--settle="))?.slice(9) ?? 30)
await new Promise((r) => setTimeout(r, (SETTLE - FRESH) * 1000))
const during = rssKiB(pid)
const heapDuring = await heap()

// A round trip through the daemon while every session sits idle.
const probe = conns[0]
const probeGroup = "#i0#localhost"
const decoder = new FrameDecoder("toClient")
const buf = new Uint8Array(64 * 1024)
const rtts: Array<number> = []
for (let k = 0; k < 1000; k++) {
  const t = performance.now()
  await probe.write(
    encodeMulticast({ privateGroup: probeGroup, service: "Agreed", groups: [probeGroup], data: new Uint8Array(100) }),
  )
  for (;;) {
    const f = decoder.next()
    if (f !== undefined) {
      if (isProtocolError(f)) throw f
      break
    }
    const n = await probe.read(buf)
    if (n === null) throw new Error("probe closed")
    decoder.push(buf.slice(0, n))
  }
  rtts.push((performance.now() - t) * 1000)
}
rtts.sort((a, b) => a - b)

for (const c of conns) c.close()
await new Promise((r) => setTimeout(r, 1500))
const heapAfter = await heap()
const after = rssKiB(pid)
child.kill("SIGTERM")
await stdin.close().catch(() => undefined)
await out.cancel().catch(() => undefined)
await child.status

const perSession = ((during - before) * 1024) / N
const perSessionFresh = ((fresh - before) * 1024) / N
console.log(
  `idle sessions: ${N.toLocaleString("en-US")} sessions (each joined to one of 100 groups) opened in ${
    connectSeconds.toFixed(2)
  } s; daemon RSS ${(before / 1024).toFixed(0)} MiB empty, ${(during / 1024).toFixed(0)} MiB with them (${
    (perSession / 1024).toFixed(1)
  } KiB per session ${SETTLE} s after opening; ${(perSessionFresh / 1024).toFixed(1)} KiB ${FRESH} s after opening), ${
    (after / 1024).toFixed(0)
  } MiB after they closed; daemon V8 flags: ${daemonV8Flags.length === 0 ? "none" : daemonV8Flags.join(",")}`,
)
const per = (k: keyof Heap, at: Heap = heapDuring): string => ((at[k] - heapBefore[k]) / N / 1024).toFixed(1)
console.log(
  `per session ${SETTLE} s after opening, after a full GC: ${per("rss")} KiB resident, ${
    per("heapUsed")
  } KiB JavaScript heap in use (${per("heapTotal")} KiB reserved), ${per("external")} KiB external (array buffers); ${
    (heapAfter.heapUsed / 1024 / 1024).toFixed(0)
  } MiB heap after they closed`,
)
console.log(
  `per session ${FRESH} s after opening, after a full GC: ${per("rss", heapFresh)} KiB resident, ${
    per("heapUsed", heapFresh)
  } KiB JavaScript heap in use (${per("heapTotal", heapFresh)} KiB reserved), ${
    per("external", heapFresh)
  } KiB external (array buffers)`,
)
console.log(
  `round trip with ${N.toLocaleString("en-US")} idle sessions: p50 ${rtts[499].toFixed(0)} µs, p99 ${
    rtts[989].toFixed(0)
  } µs`,
)
