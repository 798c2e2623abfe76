/**
 * Memory held for slow readers: 20 sessions that never read (their sockets
 * filled first, so their writers stall) and one sender whose 64 KiB writes
 * each carry one 100-byte frame for a reader and a 65 KB frame for a group
 * with no members. Queued frames must keep only their own bytes alive, not
 * the read chunks they arrived in; prints the daemon's resident memory.
 *
 * ```sh
 * deno run -A bench/slow_reader_memory.ts
 * ```
 *
 * @module
 */
import { encodeAuthChoice, encodeCommand, encodeConnect, encodeMulticast, SPREAD_VERSION } from "../src/protocol/mod.ts"
import { ownProcess } from "./_daemons.ts"
const d = await ownProcess()
const port = Number(d.spreadName.split("@")[0])
const rss = () => Number(/VmRSS:\s+(\d+)/.exec(Deno.readTextFileSync(`/proc/${d.pid}/status`))?.[1]) / 1024
const open = async (name: string) => {
  const c = await Deno.connect({ port })
  await c.write(encodeConnect({ version: SPREAD_VERSION, membership: false, priority: 0, name }))
  const b = new Uint8Array(256)
  await c.read(b)
  await c.write(encodeAuthChoice(["NULL"]) as Uint8Array)
  await c.read(b)
  return c
}
const writeAll = async (c: Deno.Conn, buf: Uint8Array) => {
  let o = 0
  while (o < buf.length) o += await c.write(buf.subarray(o))
}
const readers = []
for (let i = 0; i < 20; i++) {
  const c = await open(`r${i}`)
  await c.write(encodeCommand("Join", `#r${i}#localhost`, `g${i}`))
  readers.push(c)
}
const s = await open("snd")
await new Promise((r) => setTimeout(r, 200))
const mc = (g: string, n: number) =>
  encodeMulticast({ privateGroup: "#snd#localhost", service: "Agreed", groups: [g], data: new Uint8Array(n) })
// Fill every reader's socket buffers first, so their writers stall.
for (let i = 0; i < 20; i++) for (let k = 0; k < 50; k++) await writeAll(s, mc(`g${i}`, 100000))
await new Promise((r) => setTimeout(r, 500))
console.log(`RSS with stalled readers ${rss().toFixed(0)} MiB`)
const filler = mc("nobody", 65000)
for (let k = 0; k < 18000; k++) {
  const a = mc(`g${k % 20}`, 100)
  const buf = new Uint8Array(a.length + filler.length)
  buf.set(a)
  buf.set(filler, a.length)
  await writeAll(s, buf)
}
await new Promise((r) => setTimeout(r, 2000))
console.log(`RSS after 18000 small frames in 64 KiB writes: ${rss().toFixed(0)} MiB`)
await d.stop()
