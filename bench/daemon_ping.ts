/**
 * Round-trip latency of the daemon alone: a minimal raw-protocol client (one
 * pre-encoded frame, one fixed read buffer, nothing allocated per round
 * trip) multicasts a 48-byte AGREED message to its own private group and
 * waits for its copy, N times in a row, against the daemon command in its
 * own process (two processes, two cores). So what is measured is the
 * daemon's share of the tail plus loopback TCP and process wake-ups.
 *
 * ```sh
 * deno run -A bench/daemon_ping.ts                 # 20,000 round trips after 5,000 warm-up
 * deno run -A bench/daemon_ping.ts --count=50000
 * SPREAD_DAEMON=4804@127.0.0.1 deno run -A bench/daemon_ping.ts   # also a real daemon
 * ```
 *
 * @module
 */
import {
  encodeAuthChoice,
  encodeConnect,
  encodeMulticast,
  isProtocolError,
  SPREAD_VERSION,
} from "../src/protocol/mod.ts"
import { grouped, ownProcess, type Target } from "./_daemons.ts"

const count = Number(Deno.args.find((a) => a.startsWith("--count="))?.slice("--count=".length) ?? 20_000)
const WARMUP = 5_000
const SIZE = 48

const readAtLeast = async (c: Deno.Conn, buf: Uint8Array, n: number): Promise<number> => {
  let got = 0
  while (got < n) {
    const k = await c.read(buf.subarray(got))
    if (k === null) throw new Error("the daemon closed the connection")
    got += k
  }
  return got
}

const ping = async (target: Target): Promise<Float64Array> => {
  const [port, host] = target.spreadName.split("@")
  const c = await Deno.connect({ hostname: host, port: Number(port) })
  c.setNoDelay(true)
  const buf = new Uint8Array(64 * 1024)
  try {
    const name = "pinger"
    await c.write(encodeConnect({ version: SPREAD_VERSION, membership: false, priority: 0, name }))
    // The auth list: its length byte, then the names (the daemon then waits).
    let got = await readAtLeast(c, buf, 1)
    await readAtLeast(c, buf.subarray(got), 1 + buf[0] - got)
    const auth = encodeAuthChoice(["NULL"])
    if (isProtocolError(auth)) throw auth
    await c.write(auth)
    // The accept: 1, the version (3 bytes), the private group's length, the group.
    got = await readAtLeast(c, buf, 5)
    if (buf[0] !== 1) throw new Error(`rejected: ${(buf[0] << 24) >> 24}`)
    const len = buf[4]
    if (got < 5 + len) await readAtLeast(c, buf.subarray(got), 5 + len - got)
    const privateGroup = new TextDecoder().decode(buf.subarray(5, 5 + len))
    const frame = encodeMulticast({
      privateGroup,
      service: "Agreed",
      groups: [privateGroup],
      data: new Uint8Array(SIZE),
    })
    const rtt = new Float64Array(count)
    for (let i = 0; i < WARMUP + count; i++) {
      const t0 = performance.now()
      await c.write(frame)
      await readAtLeast(c, buf, frame.length)
      if (i >= WARMUP) rtt[i - WARMUP] = performance.now() - t0
    }
    return rtt.sort()
  } finally {
    c.close()
  }
}

const us = (ms: number) => `${(ms * 1000).toFixed(0)} µs`

console.log(
  `daemon ping: ${SIZE}-byte AGREED message to the sender's private group, raw client, ${
    grouped(WARMUP)
  } warm-up round trips; ${Deno.build.os}/${Deno.build.arch}, ${navigator.hardwareConcurrency} cores, Deno ${Deno.version.deno}`,
)
const starts: Array<() => Promise<Target>> = [() => ownProcess(["--log-level", "warning"])]
const spread = Deno.env.get("SPREAD_DAEMON")
if (spread !== undefined && spread.length > 0) {
  starts.push(() => Promise.resolve({ label: `SPREAD ${spread}`, spreadName: spread, stop: () => Promise.resolve() }))
}
for (const start of starts) {
  const target = await start()
  try {
    const rtt = await ping(target)
    const at = (p: number) => rtt[Math.min(rtt.length - 1, Math.floor(rtt.length * p))]
    console.log(
      `${target.label.padEnd(24)} ${grouped(count)} round trips: p50 ${us(at(0.5))}  p90 ${us(at(0.9))}  ` +
        `p99 ${us(at(0.99))}  p99.9 ${us(at(0.999))}  max ${us(rtt[rtt.length - 1])}`,
    )
  } finally {
    await target.stop()
  }
}
