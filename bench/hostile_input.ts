/**
 * Hostile input against the daemon in its own process: H connections send
 * mutated frames (bit flips, truncations, wild lengths, garbage names,
 * half-sent headers) as fast as the daemon takes them, reconnecting
 * whenever the daemon closes one, while a bystander sends numbered messages
 * to a group another bystander belongs to. At the end it checks that the
 * daemon is still up and that the bystander received every message in
 * order: the daemon may close hostile sessions, never crash, never lose a
 * bystander's message.
 *
 * ```sh
 * deno run -A bench/hostile_input.ts              # 20 s, 8 hostile connections
 * deno run -A bench/hostile_input.ts --seconds=60 --hostile=16
 * ```
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
import { grouped, ownProcess } from "./_daemons.ts"

const arg = (name: string, d: number): number =>
  Number(Deno.args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? d)
const SECONDS = arg("seconds", 20)
const HOSTILE = arg("hostile", 8)

// A small deterministic generator (xorshift32), so a run can be repeated.
let seed = arg("seed", 0x9e3779b9) >>> 0
const rand = (n: number): number => {
  seed ^= seed << 13
  seed >>>= 0
  seed ^= seed >>> 17
  seed ^= seed << 5
  seed >>>= 0
  return seed % n
}

const daemon = await ownProcess(["--log-level", "error", "--partial-frame-timeout", "500"])
const port = Number(daemon.spreadName.split("@")[0])
const auth = encodeAuthChoice(["NULL"])
if (isProtocolError(auth)) throw auth

const readSome = async (c: Deno.Conn, buf: Uint8Array, n: number): Promise<number> => {
  let got = 0
  while (got < n) {
    const k = await c.read(buf.subarray(got))
    if (k === null) return -1
    got += k
  }
  return got
}

// Opens a session; answers its private group, or undefined if refused.
const session = async (c: Deno.Conn, name: string, membership: boolean): Promise<string | undefined> => {
  const buf = new Uint8Array(256)
  await c.write(encodeConnect({ version: SPREAD_VERSION, membership, priority: 0, name }))
  // The auth list: a length byte (negative: a reject), then the names.
  let got = await readSome(c, buf, 1)
  if (got < 0 || buf[0] > 127) return undefined
  if (got < 1 + buf[0] && await readSome(c, buf.subarray(got), 1 + buf[0] - got) < 0) return undefined
  await c.write(auth)
  // The accept: 1, three version bytes, the private group's length, the group.
  got = await readSome(c, buf, 5)
  if (got < 0 || buf[0] !== 1) return undefined
  const len = buf[4]
  if (got < 5 + len && await readSome(c, buf.subarray(got), 5 + len - got) < 0) return undefined
  return new TextDecoder().decode(buf.subarray(5, 5 + len))
}

const mutate = (pg: string): Uint8Array => {
  const kind = rand(8)
  const base = kind < 4
    ? encodeMulticast({
      privateGroup: pg,
      service: "Agreed",
      groups: Array.from({ length: 1 + rand(3) }, () => `g${rand(5)}`),
      data: new Uint8Array(rand(300)),
    })
    : encodeCommand(kind === 4 ? "Join" : "Leave", pg, `g${rand(5)}\n\x1b[31m`)
  const b = base.slice()
  switch (rand(6)) {
    case 0: // flip some bits
      for (let i = 0; i < 1 + rand(4); i++) b[rand(b.length)] ^= 1 << rand(8)
      return b
    case 1: // truncate (a half-sent frame)
      return b.subarray(0, rand(b.length))
    case 2: // a wild length field
      new DataView(b.buffer).setInt32(44 + rand(2) * 0, rand(2) === 0 ? -1 - rand(1000) : rand(0x7fffffff), true)
      return b
    case 3: // garbage
      return crypto.getRandomValues(new Uint8Array(1 + rand(200)))
    default: // valid, to keep the session busy
      return b
  }
}

let sent = 0
let sessions = 0
const deadline = Date.now() + SECONDS * 1000
const hostile = async (k: number): Promise<void> => {
  while (Date.now() < deadline) {
    let c: Deno.Conn | undefined
    try {
      c = await Deno.connect({ hostname: "127.0.0.1", port })
      const pg = await session(c, `h${k}`, rand(2) === 0)
      if (pg === undefined) continue
      sessions++
      // Drain whatever the daemon sends so it never blocks on us.
      const sink = (async () => {
        const buf = new Uint8Array(64 * 1024)
        try {
          while ((await c.read(buf)) !== null);
        } catch {
          // closed
        }
      })()
      while (Date.now() < deadline) {
        await c.write(mutate(pg))
        sent++
      }
      c.close()
      await sink
    } catch {
      // the daemon closed it: reconnect
    } finally {
      try {
        c?.close()
      } catch {
        // already closed
      }
    }
  }
}

// The bystanders: one sends numbered messages to "calm", one receives them.
const tx = await Deno.connect({ hostname: "127.0.0.1", port })
const rx = await Deno.connect({ hostname: "127.0.0.1", port })
const txGroup = await session(tx, "tx", false)
const rxGroup = await session(rx, "rx", false)
if (txGroup === undefined || rxGroup === undefined) throw new Error("the bystanders were refused")
await rx.write(encodeCommand("Join", rxGroup, "calm"))
await new Promise((r) => setTimeout(r, 200))
let received = 0
let outOfOrder = 0
const receiving = (async () => {
  const d = new FrameDecoder("toClient")
  const buf = new Uint8Array(64 * 1024)
  for (;;) {
    const n = await rx.read(buf)
    if (n === null) return
    d.push(buf.slice(0, n))
    for (let f = d.next(); f !== undefined; f = d.next()) {
      if (isProtocolError(f)) throw f
      if (f.data.length !== 4) continue
      if (new DataView(f.data.buffer, f.data.byteOffset).getUint32(0) !== received) outOfOrder++
      received++
    }
  }
})()
let bystanderSent = 0
const sending = (async () => {
  while (Date.now() < deadline) {
    const data = new Uint8Array(4)
    new DataView(data.buffer).setUint32(0, bystanderSent)
    await tx.write(encodeMulticast({ privateGroup: txGroup, service: "Agreed", groups: ["calm"], data }))
    bystanderSent++
    await new Promise((r) => setTimeout(r, 1))
  }
})()
await Promise.all([...Array.from({ length: HOSTILE }, (_, k) => hostile(k)), sending])
for (let i = 0; i < 100 && received < bystanderSent; i++) await new Promise((r) => setTimeout(r, 20))
// Still up: a fresh session gets in.
const probe = await Deno.connect({ hostname: "127.0.0.1", port })
const up = (await session(probe, "probe", false)) !== undefined
probe.close()
tx.close()
rx.close()
await receiving.catch(() => undefined)
await daemon.stop()
console.log(
  `hostile input: ${grouped(sent)} mutated frames from ${HOSTILE} connections (${
    grouped(sessions)
  } sessions) in ${SECONDS} s; daemon ${up ? "up" : "DOWN"}; bystander received ${grouped(received)} of ${
    grouped(bystanderSent)
  } messages, ${outOfOrder} out of order`,
)
if (!up || received !== bystanderSent || outOfOrder !== 0) Deno.exit(1)
