/**
 * FrameDecoder: any chunking gives the same frames, never a partial one;
 * hostile headers are refused at once, and the decoder stays failed.
 */
import { describe, expect, it } from "@effect/vitest"
import {
  encodeCommand,
  encodeFrame,
  encodeMembership,
  encodeMulticast,
  encodeRejectFor,
  encodeSelfLeave,
  fixedSize,
  Frame,
  FrameDecoder,
  HEADER_SIZE,
  isProtocolError,
  MAX_MESSAGE_BODY_LEN,
  MAX_MESSAGE_PAYLOAD,
  type ProtocolError,
  ServiceBits,
  toClientLimits,
  writeU32,
} from "../../src/protocol/mod.ts"
import { concat, traceChunks } from "../_helpers/golden.ts"
import { Prng } from "../_helpers/prng.ts"

const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("")
const text = (s: string): Uint8Array => new TextEncoder().encode(s)

/** Drains a decoder: the frames (as hex) and the error that stopped it, if any. */
const drain = (d: FrameDecoder, out: Array<string>): ProtocolError | undefined => {
  for (;;) {
    const r = d.next()
    if (r === undefined) return undefined
    if (isProtocolError(r)) return r
    out.push(hex(r.bytes))
  }
}

const frameOf = (bytes: Uint8Array, direction: "toDaemon" | "toClient" = "toClient"): Frame => {
  const d = new FrameDecoder(direction)
  d.push(bytes)
  const f = d.next()
  if (!(f instanceof Frame)) throw new Error(`not a frame: ${String(f)}`)
  return f
}

// A mixed stream a client may receive: data in both byte orders, membership,
// self-leave, a reject with old_type, an empty-data frame.
const sample = (): Array<Uint8Array> => {
  const mc = encodeMulticast({
    privateGroup: "#alice#localhost",
    service: "Agreed",
    groups: ["svc", "#bob#localhost"],
    messType: -2,
    data: text("hello, world"),
  })
  const be = encodeMulticast({
    privateGroup: "#big#localhost",
    service: "Safe",
    groups: ["svc"],
    messType: 4660,
    data: new Uint8Array(300).fill(7),
    littleEndian: false,
  })
  const memb = encodeMembership("svc", "Join", ["#alice#localhost", "#bob#localhost"], {
    procId: 482711334,
    time: 1795361573,
    index: 2,
  }, "#bob#localhost")
  const rej = encodeRejectFor(frameOf(mc, "toDaemon"), "#alice#localhost")
  const empty = encodeMulticast({ privateGroup: "#a#b", service: "Fifo", groups: ["g"], data: new Uint8Array(0) })
  return [mc, be, memb, encodeSelfLeave("svc"), rej, empty]
}

describe("FrameDecoder chunking", () => {
  const frames = sample()
  const stream = concat(frames)
  const want = frames.map(hex)

  it("FrameDecoder returns every frame of a stream pushed in one chunk", () => {
    const d = new FrameDecoder("toClient")
    d.push(stream)
    const got: Array<string> = []
    expect(drain(d, got)).toBeUndefined()
    expect(got).toEqual(want)
    expect(d.buffered).toBe(0)
    expect(d.end()).toBeUndefined()
  })

  it("FrameDecoder reassembles frames fed one byte at a time, each exactly when its last byte arrives", () => {
    const d = new FrameDecoder("toClient")
    const got: Array<string> = []
    const ends = frames.map((_, i) => frames.slice(0, i + 1).reduce((n, f) => n + f.length, 0))
    const returnedAt: Array<number> = []
    for (let i = 0; i < stream.length; i++) {
      d.push(stream.subarray(i, i + 1))
      const before = got.length
      expect(drain(d, got)).toBeUndefined()
      for (let k = before; k < got.length; k++) returnedAt.push(i + 1)
    }
    expect(got).toEqual(want)
    expect(returnedAt).toEqual(ends)
    expect(d.end()).toBeUndefined()
  })

  it("FrameDecoder reassembles a frame split across reads at every split point of a 2-frame stream", () => {
    const two = concat([frames[0], frames[4]]) // regular + reject (52-byte fixed part)
    for (let k = 0; k <= two.length; k++) {
      const d = new FrameDecoder("toClient")
      const got: Array<string> = []
      d.push(two.slice(0, k))
      expect(drain(d, got)).toBeUndefined()
      expect(got.length).toBe(k >= frames[0].length ? (k === two.length ? 2 : 1) : 0)
      d.push(two.slice(k))
      expect(drain(d, got)).toBeUndefined()
      expect(got, `split at ${k}`).toEqual([hex(frames[0]), hex(frames[4])])
      expect(d.end()).toBeUndefined()
    }
  })

  it("FrameDecoder splits 2000 frames delivered in one chunk", () => {
    const many = Array.from({ length: 2000 }, (_, i) =>
      encodeMulticast({
        privateGroup: "#w#localhost",
        service: "Fifo",
        groups: ["flooder"],
        messType: i,
        data: new Uint8Array(i % 257).fill(i & 0xff),
      }))
    const d = new FrameDecoder("toDaemon")
    d.push(concat(many))
    const got: Array<string> = []
    expect(drain(d, got)).toBeUndefined()
    expect(got.length).toBe(2000)
    expect(got).toEqual(many.map(hex))
  })

  it("FrameDecoder gives the same frames for random chunkings of trace 19's 300-message stream", () => {
    const chunks = traceChunks("19-spflooder").get("1/d2c")
    if (chunks === undefined) return expect.fail("missing stream")
    const all = concat(chunks.chunks)
    // skip auth list (6) and accept (5 + 14): "#flr#localhost"
    const body = all.subarray(6 + 5 + 14)
    const ref = new FrameDecoder("toClient")
    ref.push(body)
    const want19: Array<string> = []
    expect(drain(ref, want19)).toBeUndefined()
    expect(want19.length).toBeGreaterThanOrEqual(300)
    const rng = new Prng(19)
    for (let round = 0; round < 20; round++) {
      const d = new FrameDecoder("toClient")
      const got: Array<string> = []
      for (let o = 0; o < body.length;) {
        const n = rng.int(1, round < 10 ? 64 : 4096)
        d.push(body.slice(o, o + n))
        o += n
        expect(drain(d, got)).toBeUndefined()
      }
      expect(got).toEqual(want19)
      expect(d.end()).toBeUndefined()
    }
  })

  it("FrameDecoder.end reports Truncated with the number of bytes of a cut frame", () => {
    for (const cut of [1, 10, HEADER_SIZE - 1, HEADER_SIZE, HEADER_SIZE + 1, frames[1].length - 1]) {
      const d = new FrameDecoder("toClient")
      d.push(concat([frames[0], frames[1].subarray(0, cut)]))
      const got: Array<string> = []
      expect(drain(d, got)).toBeUndefined()
      expect(got).toEqual([hex(frames[0])])
      expect(d.buffered).toBe(cut)
      const e = d.end()
      expect([e?.reason, e?.field, e?.value]).toEqual(["Truncated", "frame", cut])
      // the decoder stays failed after end()
      expect(d.next()).toBe(e)
    }
  })

  it("FrameDecoder.end is undefined for an empty stream", () => {
    expect(new FrameDecoder("toDaemon").end()).toBeUndefined()
  })

  it("FrameDecoder ignores empty chunks", () => {
    const d = new FrameDecoder("toClient")
    d.push(new Uint8Array(0))
    expect(d.buffered).toBe(0)
    expect(d.next()).toBeUndefined()
  })

  it("FrameDecoder frames that lie inside one chunk are views of it; frames across chunks are copies", () => {
    const d = new FrameDecoder("toClient")
    const chunk = concat([frames[0], frames[3]])
    d.push(chunk)
    const f = d.next()
    if (!(f instanceof Frame)) return expect.fail("no frame")
    expect(f.bytes.buffer).toBe(chunk.buffer)
    const d2 = new FrameDecoder("toClient")
    d2.push(frames[0].slice(0, 10))
    d2.push(frames[0].slice(10))
    const g = d2.next()
    if (!(g instanceof Frame)) return expect.fail("no frame")
    expect(hex(g.bytes)).toBe(hex(frames[0]))
  })
})

// A little-endian header with arbitrary counts (and nothing after it).
const header = (type: number, numGroups: number, dataLen: number, le = true): Uint8Array => {
  const b = new Uint8Array(HEADER_SIZE)
  writeU32(b, 0, (type | (le ? 0x80000080 : 0)) >>> 0, le)
  b.set(text("#a#b"), 4)
  writeU32(b, 36, numGroups, le)
  writeU32(b, 40, le ? 0x80000080 : 0, le)
  writeU32(b, 44, dataLen, le)
  return b
}

const firstError = (bytes: Uint8Array, direction: "toDaemon" | "toClient" = "toDaemon") => {
  const d = new FrameDecoder(direction)
  d.push(bytes)
  const r = d.next()
  if (isProtocolError(r)) return { reason: r.reason, field: r.field, value: r.value }
  return r === undefined ? undefined : { reason: "none: a frame", field: "", value: r.bytes.length }
}

describe("FrameDecoder hostile headers", () => {
  const AGREED = ServiceBits.AGREED_MESS

  it("FrameDecoder waits for all 48 header bytes and reports a cut header as Truncated", () => {
    const d = new FrameDecoder("toDaemon")
    d.push(header(AGREED, 1, 0).subarray(0, 47))
    expect(d.next()).toBeUndefined()
    expect(d.end()?.reason).toBe("Truncated")
  })

  it("FrameDecoder refuses an oversize header as soon as its 48 bytes are in, without buffering the body", () => {
    const d = new FrameDecoder("toDaemon")
    const h = header(AGREED, 1, MAX_MESSAGE_PAYLOAD) // 143152 + 32 > 143152
    for (let i = 0; i < HEADER_SIZE - 1; i++) {
      d.push(h.subarray(i, i + 1))
      expect(d.next()).toBeUndefined()
    }
    d.push(h.subarray(HEADER_SIZE - 1))
    const e = d.next()
    expect(isProtocolError(e) && [e.reason, e.field, e.value])
      .toEqual(["Oversize", "data_len + 32 * num_groups", MAX_MESSAGE_PAYLOAD + 32])
    expect(d.buffered).toBe(HEADER_SIZE)
    // whatever follows is not kept
    d.push(new Uint8Array(1 << 20))
    expect(d.buffered).toBe(HEADER_SIZE)
    expect(d.next()).toBe(e)
  })

  it("FrameDecoder refuses trace 13's 143953-byte frame from its header alone", () => {
    const chunks = traceChunks("13-oversize-killed").get("1/c2d")
    if (chunks === undefined) return expect.fail("missing stream")
    const all = concat(chunks.chunks)
    // connect (10) + auth choice (90) + join (80), then the oversize frame
    const start = 10 + 90 + 80
    const d = new FrameDecoder("toDaemon")
    d.push(all.subarray(0 + 100, start)) // the join
    expect(d.next()).toBeInstanceOf(Frame)
    d.push(all.subarray(start, start + HEADER_SIZE))
    const e = d.next()
    expect(isProtocolError(e) && [e.reason, e.value]).toEqual(["Oversize", 143953])
  })

  it("FrameDecoder accepts num_groups 100 and refuses 101 toward a daemon, 10001 toward a client", () => {
    const d = new FrameDecoder("toDaemon")
    d.push(header(AGREED, 100, 0))
    expect(d.next()).toBeUndefined() // waits for the 3200 bytes of groups
    expect(d.buffered).toBe(HEADER_SIZE)
    expect(firstError(header(AGREED, 101, 0))).toEqual({ reason: "Oversize", field: "num_groups", value: 101 })
    const c = new FrameDecoder("toClient")
    c.push(header(AGREED, toClientLimits.maxGroups, 0))
    expect(c.next()).toBeUndefined()
    expect(firstError(header(AGREED, toClientLimits.maxGroups + 1, 0), "toClient"))
      .toEqual({ reason: "Oversize", field: "num_groups", value: 10001 })
  })

  it("FrameDecoder bounds data_len by 144000 and data_len + 32 * num_groups by 143152 toward a daemon", () => {
    const ok = new FrameDecoder("toDaemon")
    ok.push(header(AGREED, 0, MAX_MESSAGE_PAYLOAD))
    expect(ok.next()).toBeUndefined()
    const ok100 = new FrameDecoder("toDaemon")
    ok100.push(header(AGREED, 100, MAX_MESSAGE_PAYLOAD - 3200))
    expect(ok100.next()).toBeUndefined()
    expect(firstError(header(AGREED, 0, MAX_MESSAGE_PAYLOAD + 1)))
      .toEqual({ reason: "Oversize", field: "data_len + 32 * num_groups", value: MAX_MESSAGE_PAYLOAD + 1 })
    expect(firstError(header(AGREED, 100, MAX_MESSAGE_PAYLOAD - 3199)))
      .toEqual({ reason: "Oversize", field: "data_len + 32 * num_groups", value: MAX_MESSAGE_PAYLOAD + 1 })
    expect(firstError(header(AGREED, 0, MAX_MESSAGE_BODY_LEN + 1)))
      .toEqual({ reason: "Oversize", field: "data_len", value: MAX_MESSAGE_BODY_LEN + 1 })
    expect(firstError(header(AGREED, 0, 0x7fffffff))).toEqual({
      reason: "Oversize",
      field: "data_len",
      value: 0x7fffffff,
    })
    expect(firstError(header(AGREED, 0, toClientLimits.maxDataLen + 1), "toClient")?.reason).toBe("Oversize")
  })

  it("FrameDecoder refuses negative num_groups and data_len in either byte order", () => {
    for (const le of [true, false]) {
      expect(firstError(header(AGREED, -1, 0, le))).toEqual({ reason: "Negative", field: "num_groups", value: -1 })
      expect(firstError(header(AGREED, 0x80000000, 0, le)))
        .toEqual({ reason: "Negative", field: "num_groups", value: -0x80000000 })
      expect(firstError(header(AGREED, 1, -5, le))).toEqual({ reason: "Negative", field: "data_len", value: -5 })
      expect(firstError(header(AGREED, 0, -1, le), "toClient"))
        .toEqual({ reason: "Negative", field: "data_len", value: -1 })
    }
  })

  it("FrameDecoder refuses a type whose two endian marker bits disagree", () => {
    const lowOnly = header(AGREED, 0, 0)
    lowOnly[3] = 0x00 // keep 0x80 in byte 0, clear it in byte 3
    expect(firstError(lowOnly)?.reason).toBe("Endian")
    expect(firstError(lowOnly)?.field).toBe("type")
    const highOnly = header(AGREED, 0, 0)
    highOnly[0] &= 0x7f
    expect(firstError(highOnly)?.reason).toBe("Endian")
  })

  it("FrameDecoder reads counts of a big-endian header (no marker bits) in big-endian", () => {
    const f = frameOf(concat([header(AGREED, 1, 3, false), new Uint8Array(32 + 3)]), "toDaemon")
    expect([f.littleEndian, f.type, f.numGroups, f.dataLen]).toEqual([false, AGREED, 1, 3])
  })

  it("FrameDecoder stays failed after an error, whatever arrives next", () => {
    const d = new FrameDecoder("toDaemon")
    d.push(header(AGREED, -1, 0))
    const e = d.next()
    expect(isProtocolError(e)).toBe(true)
    d.push(encodeCommand("Join", "#a#b", "g"))
    expect(d.next()).toBe(e)
    expect(d.next()).toBe(e)
    expect(d.end()).toBe(e)
  })

  it("FrameDecoder adds old_type to a reject's fixed part only toward a client", () => {
    expect(fixedSize(ServiceBits.REJECT_MESS, "toClient")).toBe(52)
    expect(fixedSize(ServiceBits.REJECT_MESS, "toDaemon")).toBe(48)
    expect(fixedSize(ServiceBits.AGREED_MESS, "toClient")).toBe(48)
    const bytes = encodeFrame({ type: ServiceBits.REJECT_MESS, name: "#a#b", groups: ["g"], oldType: 0x10 })
    expect(bytes.length).toBe(52 + 32)
    const toClient = frameOf(bytes, "toClient")
    expect([toClient.groupsOffset, toClient.oldType, toClient.groups]).toEqual([52, 0x10, ["g"]])
    // toward a daemon the same bytes are 4 bytes too long for one frame
    const d = new FrameDecoder("toDaemon")
    d.push(bytes)
    const f = d.next()
    if (!(f instanceof Frame)) return expect.fail("no frame")
    expect([f.groupsOffset, f.oldType, f.bytes.length]).toEqual([48, 0, 80])
    expect(d.buffered).toBe(4)
  })

  it("Frame reads a 32-byte name without NUL as 32 characters and no more", () => {
    const b = encodeFrame({ type: ServiceBits.AGREED_MESS, name: "", groups: ["", "next"], data: text("D") })
    b.fill(0x41, 4, 36) // name field: 32 x "A", no NUL
    b.fill(0x42, 48, 80) // first group: 32 x "B", no NUL
    const f = frameOf(b)
    expect(f.sender).toBe("A".repeat(32))
    expect(f.groups).toEqual(["B".repeat(32), "next"])
    expect(new TextDecoder().decode(f.data)).toBe("D")
  })

  it("FrameDecoder never throws on random bytes and never returns more than it was given", () => {
    const rng = new Prng(1234)
    for (let i = 0; i < 3000; i++) {
      const direction = rng.pick(["toDaemon", "toClient"] as const)
      const d = new FrameDecoder(direction)
      // Mostly plausible headers with small counts so frames complete, plus pure noise.
      const len = rng.int(0, 400)
      const b = rng.bytes(len)
      if (len >= HEADER_SIZE && rng.chance(0.7)) {
        const le = rng.chance(0.5)
        writeU32(b, 0, (rng.int(0, 0x7fffffff) & 0x7fffff7f) | (le ? 0x80000080 : 0), le)
        writeU32(b, 36, rng.int(-2, 4), le)
        writeU32(b, 44, rng.int(-2, 120), le)
      }
      let total = 0
      for (let o = 0; o < len;) {
        const n = rng.int(1, 64)
        d.push(b.slice(o, o + n))
        o += n
        for (;;) {
          const r = d.next()
          if (r === undefined || isProtocolError(r)) break
          total += r.bytes.length
          expect(r.bytes.length).toBe(fixedSize(r.type, direction) + 32 * r.numGroups + r.dataLen)
        }
      }
      expect(total).toBeLessThanOrEqual(len)
      d.end()
    }
  })
})
