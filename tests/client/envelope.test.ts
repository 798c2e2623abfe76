import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import {
  crc32,
  decodeEnvelope,
  encodeEnvelope,
  ENVELOPE_MAGIC,
  type EnvelopeKind,
  parseEnvelope,
} from "../../src/client/features/envelope.ts"

const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join("")
const kinds: ReadonlyArray<EnvelopeKind> = ["Request", "Reply", "ErrorReply", "Fragment"]
const latin1Name = fc.string({ minLength: 0, maxLength: 31, unit: fc.constantFrom(..."abcdefgh#XYZ019$~") })

describe("envelope", () => {
  it("crc32 is the IEEE CRC-32 of zlib and java.util.zip.CRC32", () => {
    expect(crc32(new TextEncoder().encode("123456789"))).toBe(0xcbf43926)
    expect(crc32(new Uint8Array(0))).toBe(0)
  })

  it("encodeEnvelope writes the documented bytes", () => {
    const bytes = encodeEnvelope({
      kind: "Request",
      idHigh: 0x01020304,
      idLow: 0x05060708,
      replyTo: "#a#b",
      body: Uint8Array.of(0x68, 0x69),
    })
    expect(bytes).toBeDefined()
    if (bytes === undefined) return
    // magic, version 1, kind 1, H = 28, id, R = 4, flags 0, reserved 0, "#a#b", CRC-32, body "hi"
    const header = "ff534658" + "01" + "01" + "001c" + "0102030405060708" + "04" + "00" + "0000" + "23612362"
    expect(hex(bytes.subarray(0, 24))).toBe(header)
    expect(hex(bytes.subarray(24, 28))).toBe(crc32(bytes, 0, 24).toString(16).padStart(8, "0"))
    expect(hex(bytes.subarray(28))).toBe("6869")
    expect(decodeEnvelope(bytes)).toEqual({
      kind: "Request",
      correlationId: "0102030405060708",
      replyTo: "#a#b",
      body: Uint8Array.of(0x68, 0x69),
    })
  })

  it("an envelope decodes to what was encoded, whatever its fields and body", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...kinds),
        fc.nat({ max: 0xffffffff }),
        fc.nat({ max: 0xffffffff }),
        latin1Name,
        fc.uint8Array({ maxLength: 300 }),
        (kind, idHigh, idLow, replyTo, body) => {
          const bytes = encodeEnvelope({ kind, idHigh, idLow, replyTo, body })
          if (bytes === undefined) return false
          const p = parseEnvelope(bytes)
          const d = decodeEnvelope(bytes)
          return p !== undefined && d !== undefined && p.kind === kind && p.idHigh === idHigh &&
            p.idLow === idLow && d.replyTo === replyTo && hex(d.body) === hex(body)
        },
      ),
      { numRuns: 500 },
    )
  })

  it("a random payload is never taken for an envelope, even one that starts with the magic", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (payload) => decodeEnvelope(payload) === undefined),
      { numRuns: 2000 },
    )
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 20, maxLength: 200 }),
        fc.constantFrom(1, 2, 3, 16),
        (rest, kind) => {
          // Magic, version and a known kind, then random bytes: only the
          // checksum (and the other checks) keep it an ordinary message.
          const payload = new Uint8Array(6 + rest.length)
          payload.set(ENVELOPE_MAGIC, 0)
          payload[4] = 1
          payload[5] = kind
          payload.set(rest, 6)
          return decodeEnvelope(payload) === undefined
        },
      ),
      { numRuns: 2000 },
    )
  })

  it("UTF-8 text is never taken for an envelope", () => {
    const enc = new TextEncoder()
    fc.assert(fc.property(fc.string({ maxLength: 200 }), (s) => decodeEnvelope(enc.encode(s)) === undefined), {
      numRuns: 1000,
    })
  })

  it("any single flipped bit in the header makes it an ordinary message", () => {
    const bytes = encodeEnvelope({
      kind: "Reply",
      idHigh: 7,
      idLow: 9,
      replyTo: "#alice#localhost",
      body: new Uint8Array(8),
    })
    expect(bytes).toBeDefined()
    if (bytes === undefined) return
    const h = 24 + "#alice#localhost".length
    expect(decodeEnvelope(bytes)).toBeDefined()
    for (let i = 0; i < h; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const copy = bytes.slice()
        copy[i] ^= 1 << bit
        expect(decodeEnvelope(copy), `byte ${i} bit ${bit}`).toBeUndefined()
      }
    }
  })

  it("refuses a reply-to longer than 31 bytes or outside Latin-1", () => {
    expect(encodeEnvelope({ kind: "Request", idHigh: 0, idLow: 0, replyTo: "x".repeat(32), body: new Uint8Array() }))
      .toBeUndefined()
    expect(encodeEnvelope({ kind: "Request", idHigh: 0, idLow: 0, replyTo: "#ä€#d", body: new Uint8Array() }))
      .toBeUndefined()
  })
})
