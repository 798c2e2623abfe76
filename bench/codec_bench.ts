/**
 * Micro-benchmarks of the protocol codec.
 *
 * Run: `deno bench bench/codec_bench.ts`. Stream benches decode a fixed number
 * of messages per iteration (said in the name): divide the time per iteration
 * by that number for the cost per message.
 *
 * @module
 */
import {
  decodeServerMessage,
  encodeInto,
  encodeMulticast,
  Frame,
  FrameDecoder,
  groupEntry,
  hintOf,
  isProtocolError,
  ServiceBits,
} from "../src/protocol/mod.ts"
import { concatBytes } from "../src/protocol/bytes.ts"

const CHUNK = 64 * 1024

const message = (size: number, i = 0): Uint8Array =>
  encodeMulticast({
    privateGroup: "#alice#localhost",
    service: "Agreed",
    groups: ["svc"],
    messType: i & 0x7fff,
    data: new Uint8Array(size).fill(0x61),
  })

const concat = (parts: ReadonlyArray<Uint8Array>): Uint8Array => concatBytes(parts)

// A pre-encoded stream of `count` messages of `size` bytes, cut into 64 KiB reads.
const stream = (size: number, count: number): ReadonlyArray<Uint8Array> => {
  const all = concat(Array.from({ length: count }, (_, i) => message(size, i)))
  const chunks: Array<Uint8Array> = []
  for (let o = 0; o < all.length; o += CHUNK) chunks.push(all.subarray(o, o + CHUNK))
  return chunks
}

const decodeStream = (chunks: ReadonlyArray<Uint8Array>, expected: number, classify: boolean): void => {
  const d = new FrameDecoder("toClient")
  let n = 0
  for (const c of chunks) {
    d.push(c)
    for (;;) {
      const f = d.next()
      if (f === undefined) break
      if (isProtocolError(f)) throw f
      if (classify && isProtocolError(decodeServerMessage(f))) throw new Error("bad message")
      n++
    }
  }
  if (n !== expected) throw new Error(`decoded ${n} of ${expected}`)
}

const data100 = new Uint8Array(100).fill(0x61)

Deno.bench("encodeMulticast, 100 B to 1 group (1 msg/iter)", { group: "header" }, () => {
  encodeMulticast({ privateGroup: "#alice#localhost", service: "Agreed", groups: ["svc"], messType: 5, data: data100 })
})

// What the client's send path does per message: encode in place into a reused buffer (no allocation).
const intoBuf = new Uint8Array(64 * 1024)
const nameField = groupEntry("#alice#localhost")
const frame100 = { type: ServiceBits.AGREED_MESS, hint: hintOf(5), groups: [groupEntry("svc")], data: data100 }
Deno.bench("encodeInto, 100 B to 1 group, in place (1 msg/iter)", { group: "header" }, () => {
  encodeInto(intoBuf, 0, nameField, frame100)
})

const one = message(100)
Deno.bench("FrameDecoder + decodeServerMessage, one 100 B frame (1 msg/iter)", { group: "header" }, () => {
  const d = new FrameDecoder("toClient")
  d.push(one)
  const f = d.next()
  if (!(f instanceof Frame)) throw new Error("no frame")
  const m = decodeServerMessage(f)
  if (isProtocolError(m) || m._tag !== "Regular") throw new Error("bad message")
})

const s100 = stream(100, 1000)
const s1k = stream(1000, 1000)
const s10k = stream(10000, 100)

Deno.bench("FrameDecoder stream of 100 B msgs, 64 KiB reads (1000 msgs/iter)", { group: "stream" }, () => {
  decodeStream(s100, 1000, false)
})

Deno.bench("FrameDecoder stream of 1 KB msgs, 64 KiB reads (1000 msgs/iter)", { group: "stream" }, () => {
  decodeStream(s1k, 1000, false)
})

Deno.bench("FrameDecoder stream of 10 KB msgs, 64 KiB reads (100 msgs/iter)", { group: "stream" }, () => {
  decodeStream(s10k, 100, false)
})

Deno.bench(
  "FrameDecoder + decodeServerMessage stream of 100 B msgs, 64 KiB reads (1000 msgs/iter)",
  { group: "stream" },
  () => {
    decodeStream(s100, 1000, true)
  },
)
