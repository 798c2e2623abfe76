/**
 * Idle sessions: starts the daemon command in its own process, opens N
 * sessions to it with raw handshakes (each joins one of 100 groups), and
 * reports the daemon's resident memory per session, how long the
 * connections took, and a round trip through the daemon while they all sit
 * idle. Then it closes them all and checks the daemon saw every one go.
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
import { ownProcess } from "./_daemons.ts"

const N = Number(Deno.args.find((a) => a.startsWith("--n="))?.slice(4) ?? 10_000)
const PARALLEL = 200

const rssKiB = (pid: number): number => {
  const m = /VmRSS:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${pid}/status`))
  return m === null ? NaN : Number(m[1])
}

const daemon = await ownProcess(["--max-sessions", String(N + 10), "--log-level", "warning"])
const pid = daemon.pid ?? NaN
const port = Number(daemon.spreadName.split("@")[0])
await new Promise((r) => setTimeout(r, 300))
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
await new Promise((r) => setTimeout(r, 1000))
const during = rssKiB(pid)

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
const after = rssKiB(pid)
await daemon.stop()

const perSession = ((during - before) * 1024) / N
console.log(
  `idle sessions: ${N.toLocaleString("en-US")} sessions (each joined to one of 100 groups) opened in ${
    connectSeconds.toFixed(2)
  } s; daemon RSS ${(before / 1024).toFixed(0)} MiB empty, ${(during / 1024).toFixed(0)} MiB with them (${
    (perSession / 1024).toFixed(1)
  } KiB per session), ${(after / 1024).toFixed(0)} MiB after they closed`,
)
console.log(
  `round trip with ${N.toLocaleString("en-US")} idle sessions: p50 ${rtts[499].toFixed(0)} µs, p99 ${
    rtts[989].toFixed(0)
  } µs`,
)
