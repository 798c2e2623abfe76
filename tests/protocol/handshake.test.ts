/**
 * Handshake parsers and encoders: boundaries, hostile lengths, partial input
 * and round trips.
 */
import { describe, expect, it } from "@effect/vitest"
import {
  encodeAccept,
  encodeAuthChoice,
  encodeAuthList,
  encodeConnect,
  encodeReject,
  hasPatchByte,
  isProtocolError,
  isVersionTooOld,
  parseAccept,
  parseAuthChoice,
  parseAuthList,
  parseConnect,
  RejectCodes,
  usesAuthExchange,
  type Version,
} from "../../src/protocol/mod.ts"
import { Prng } from "../_helpers/prng.ts"

const v501: Version = { major: 5, minor: 0, patch: 1 }
const v314: Version = { major: 3, minor: 14, patch: 0 }
const bytes = (...xs: Array<number | string>): Uint8Array =>
  Uint8Array.from(xs.flatMap((x) => typeof x === "number" ? [x] : Array.from(x, (c) => c.charCodeAt(0))))

const errorOf = (u: unknown): { reason: string; field: string; value: string | number } | undefined =>
  isProtocolError(u) ? { reason: u.reason, field: u.field, value: u.value } : undefined

describe("version predicates", () => {
  it("hasPatchByte is true from 3.15 on", () => {
    expect(hasPatchByte({ major: 3, minor: 14 })).toBe(false)
    expect(hasPatchByte({ major: 3, minor: 15 })).toBe(true)
    expect(hasPatchByte({ major: 4, minor: 0 })).toBe(true)
  })

  it("usesAuthExchange is true from 3.16.0 on", () => {
    expect(usesAuthExchange({ major: 3, minor: 15, patch: 99 })).toBe(false)
    expect(usesAuthExchange({ major: 3, minor: 16, patch: 0 })).toBe(true)
    expect(usesAuthExchange(v501)).toBe(true)
  })

  it("isVersionTooOld is true below 3.1.0", () => {
    expect(isVersionTooOld({ major: 3, minor: 0, patch: 99 })).toBe(true)
    expect(isVersionTooOld({ major: 3, minor: 1, patch: 0 })).toBe(false)
    expect(isVersionTooOld({ major: 2, minor: 99, patch: 0 })).toBe(true)
  })
})

describe("parseConnect", () => {
  it("parseConnect needs more bytes until the whole message is in", () => {
    const full = encodeConnect({ version: v501, membership: true, priority: 0, name: "alice" })
    for (let n = 0; n < full.length; n++) expect(parseConnect(full.subarray(0, n)), `${n}`).toBeUndefined()
    expect(parseConnect(full)).toEqual({
      value: { _tag: "Connect", message: { version: v501, membership: true, priority: 0, name: "alice" } },
      consumed: 10,
    })
  })

  it("parseConnect reads 2 version bytes for 3.14 and 3 for 3.15", () => {
    expect(parseConnect(bytes(3, 14, 1, 3, "old"))).toEqual({
      value: { _tag: "Connect", message: { version: v314, membership: true, priority: 0, name: "old" } },
      consumed: 7,
    })
    expect(parseConnect(bytes(3, 15, 2, 0x11, 1, "x"))).toEqual({
      value: {
        _tag: "Connect",
        message: { version: { major: 3, minor: 15, patch: 2 }, membership: true, priority: 1, name: "x" },
      },
      consumed: 6,
    })
  })

  it("parseConnect answers TooOld after the 2 version bytes of a 3.0 client", () => {
    expect(parseConnect(bytes(3, 0))).toEqual({
      value: { _tag: "TooOld", version: { major: 3, minor: 0, patch: 0 } },
      consumed: 2,
    })
  })

  it("parseConnect answers IllegalNameLength for lengths 11, 0x80 and 0xff without waiting for a name", () => {
    expect(parseConnect(bytes(5, 0, 1, 1, 11))).toEqual({
      value: { _tag: "IllegalNameLength", length: 11 },
      consumed: 5,
    })
    expect(parseConnect(bytes(5, 0, 1, 1, 0xff))).toEqual({
      value: { _tag: "IllegalNameLength", length: -1 },
      consumed: 5,
    })
    expect(parseConnect(bytes(5, 0, 1, 1, 0x80))).toEqual({
      value: { _tag: "IllegalNameLength", length: -128 },
      consumed: 5,
    })
  })

  it("parseConnect accepts lengths 0 and 10 and reads flags bits 0 and 4..7", () => {
    const zero = parseConnect(bytes(5, 0, 1, 0, 0))
    expect(zero).toEqual({
      value: { _tag: "Connect", message: { version: v501, membership: false, priority: 0, name: "" } },
      consumed: 5,
    })
    const ten = parseConnect(bytes(5, 0, 1, 0xf1, 10, "abcdefghij", "trailing"))
    expect(ten).toEqual({
      value: { _tag: "Connect", message: { version: v501, membership: true, priority: 15, name: "abcdefghij" } },
      consumed: 15,
    })
  })

  it("encodeConnect and parseConnect round-trip random connect messages", () => {
    const rng = new Prng(7)
    for (let i = 0; i < 300; i++) {
      const version = { major: rng.int(3, 9), minor: rng.int(0, 99), patch: rng.int(0, 99) }
      const pv = hasPatchByte(version) ? version : { ...version, patch: 0 }
      if (isVersionTooOld(pv)) continue
      const msg = {
        version: pv,
        membership: rng.chance(0.5),
        priority: rng.int(0, 15),
        name: rng.chars(rng.int(0, 10)),
      }
      const enc = encodeConnect(msg)
      expect(parseConnect(enc)).toEqual({ value: { _tag: "Connect", message: msg }, consumed: enc.length })
    }
  })
})

describe("parseAuthList", () => {
  it("parseAuthList reads the default list and a list of several methods", () => {
    expect(parseAuthList(bytes(5, "NULL "))).toEqual({ value: { _tag: "AuthList", methods: ["NULL"] }, consumed: 6 })
    expect(parseAuthList(bytes(8, "NULL IP "))).toEqual({
      value: { _tag: "AuthList", methods: ["NULL", "IP"] },
      consumed: 9,
    })
    expect(parseAuthList(bytes(0))).toEqual({ value: { _tag: "AuthList", methods: [] }, consumed: 1 })
  })

  it("parseAuthList needs more bytes until the announced length is in", () => {
    expect(parseAuthList(new Uint8Array(0))).toBeUndefined()
    expect(parseAuthList(bytes(5, "NULL"))).toBeUndefined()
  })

  it("parseAuthList accepts a 90-byte list and refuses 91", () => {
    const ok = new Uint8Array(91).fill(0x41)
    ok[0] = 90
    const r = parseAuthList(ok)
    expect(r !== undefined && !isProtocolError(r) && r.consumed).toBe(91)
    expect(errorOf(parseAuthList(bytes(91)))).toEqual({ reason: "Oversize", field: "authListLength", value: 91 })
    expect(errorOf(parseAuthList(bytes(127)))).toEqual({ reason: "Oversize", field: "authListLength", value: 127 })
  })

  it("parseAuthList reads a negative first byte as a reject code", () => {
    expect(parseAuthList(bytes(0xfa))).toEqual({
      value: { _tag: "Reject", code: -6, reason: "REJECT_NOT_UNIQUE" },
      consumed: 1,
    })
    expect(parseAuthList(bytes(0xf8))).toEqual({ value: { _tag: "Reject", code: -8, reason: "Unknown" }, consumed: 1 })
    expect(parseAuthList(bytes(0x80))).toEqual({
      value: { _tag: "Reject", code: -128, reason: "Unknown" },
      consumed: 1,
    })
  })

  it("encodeReject and parseAuthList round-trip every reject code", () => {
    for (const [name, code] of Object.entries(RejectCodes)) {
      expect(parseAuthList(encodeReject(code))).toEqual({ value: { _tag: "Reject", code, reason: name }, consumed: 1 })
    }
  })

  it("encodeAuthList and parseAuthList round-trip method lists", () => {
    for (const methods of [["NULL"], ["NULL", "IP"], []]) {
      const enc = encodeAuthList(methods)
      expect(parseAuthList(enc)).toEqual({ value: { _tag: "AuthList", methods }, consumed: enc.length })
    }
  })
})

describe("auth choice", () => {
  it("parseAuthChoice needs all 90 bytes", () => {
    expect(parseAuthChoice(new Uint8Array(89))).toBeUndefined()
    expect(parseAuthChoice(new Uint8Array(90))).toEqual({ value: [], consumed: 90 })
  })

  it("parseAuthChoice stops at the first empty slot and reads at most 30 bytes per slot", () => {
    const b = new Uint8Array(100).fill(0x41) // no NUL anywhere
    expect(parseAuthChoice(b)).toEqual({ value: ["A".repeat(30), "A".repeat(30), "A".repeat(30)], consumed: 90 })
    const gap = new Uint8Array(90)
    gap.set(bytes("IP"), 30) // slot 0 empty: nothing is read
    expect(parseAuthChoice(gap)).toEqual({ value: [], consumed: 90 })
  })

  it("encodeAuthChoice fills at most two slots and refuses empty or 30-byte names", () => {
    const two = encodeAuthChoice(["NULL", "IP"])
    expect(isProtocolError(two)).toBe(false)
    if (!isProtocolError(two)) expect(parseAuthChoice(two)).toEqual({ value: ["NULL", "IP"], consumed: 90 })
    expect(errorOf(encodeAuthChoice(["A", "B", "C"]))).toEqual({ reason: "Oversize", field: "authMethods", value: 3 })
    expect(errorOf(encodeAuthChoice([""]))).toEqual({ reason: "IllegalName", field: "authMethod", value: "" })
    expect(errorOf(encodeAuthChoice(["x".repeat(30)])))
      .toEqual({ reason: "IllegalName", field: "authMethod", value: "x".repeat(30) })
    const max = encodeAuthChoice(["x".repeat(29)])
    expect(isProtocolError(max)).toBe(false)
    if (!isProtocolError(max)) expect(max[29]).toBe(0)
  })
})

describe("parseAccept", () => {
  it("parseAccept reads the accept of a 5.0.1 and of a 3.14 client", () => {
    expect(parseAccept(bytes(1, 5, 0, 1, 16, "#alice#localhost"), v501)).toEqual({
      value: { _tag: "Accept", version: v501, privateGroup: "#alice#localhost" },
      consumed: 21,
    })
    expect(parseAccept(bytes(1, 5, 0, 17, "#old314#localhost"), v314)).toEqual({
      value: { _tag: "Accept", version: { major: 5, minor: 0, patch: 0 }, privateGroup: "#old314#localhost" },
      consumed: 21,
    })
  })

  it("parseAccept needs more bytes until the name is in", () => {
    const full = encodeAccept(v501, "#alice#localhost", v501)
    for (let n = 0; n < full.length; n++) expect(parseAccept(full.subarray(0, n), v501), `${n}`).toBeUndefined()
  })

  it("parseAccept reads any first byte other than 1 as a reject", () => {
    expect(parseAccept(bytes(0xf7), v501)).toEqual({
      value: { _tag: "Reject", code: -9, reason: "REJECT_AUTH" },
      consumed: 1,
    })
    expect(parseAccept(bytes(0xfd), v501)).toEqual({
      value: { _tag: "Reject", code: -3, reason: "REJECT_QUOTA" },
      consumed: 1,
    })
    expect(parseAccept(bytes(0), v501)).toEqual({ value: { _tag: "Reject", code: 0, reason: "Unknown" }, consumed: 1 })
  })

  it("parseAccept accepts a 31-byte name, refuses 32 and more, and a negative length, before the name arrives", () => {
    const ok = parseAccept(bytes(1, 5, 0, 1, 31, "x".repeat(31)), v501)
    expect(ok !== undefined && !isProtocolError(ok) && ok.consumed).toBe(36)
    expect(errorOf(parseAccept(bytes(1, 5, 0, 1, 32), v501)))
      .toEqual({ reason: "Oversize", field: "privateGroupLength", value: 32 })
    expect(errorOf(parseAccept(bytes(1, 5, 0, 1, 127), v501)))
      .toEqual({ reason: "Oversize", field: "privateGroupLength", value: 127 })
    expect(errorOf(parseAccept(bytes(1, 5, 0, 1, 0xff), v501)))
      .toEqual({ reason: "Negative", field: "privateGroupLength", value: -1 })
    expect(errorOf(parseAccept(bytes(1, 5, 0, 0x80), v314)))
      .toEqual({ reason: "Negative", field: "privateGroupLength", value: -128 })
  })

  it("parseAccept refuses a negative version byte", () => {
    expect(errorOf(parseAccept(bytes(1, 0x85, 0, 1, 0), v501)))
      .toEqual({ reason: "Malformed", field: "acceptVersion", value: "-123.0.1" })
    expect(errorOf(parseAccept(bytes(1, 5, 0, 0xff, 0), v501))?.reason).toBe("Malformed")
  })

  it("encodeAccept and parseAccept round-trip with and without the patch byte", () => {
    const rng = new Prng(11)
    for (let i = 0; i < 200; i++) {
      const daemon = { major: rng.int(3, 127), minor: rng.int(0, 127), patch: rng.int(0, 127) }
      const client = rng.pick([v501, v314, { major: 3, minor: 15, patch: 0 }])
      const pg = `#${rng.chars(rng.int(1, 10))}#${rng.chars(rng.int(1, 19))}`
      const enc = encodeAccept(daemon, pg, client)
      expect(enc.length).toBe((hasPatchByte(client) ? 5 : 4) + pg.length)
      expect(parseAccept(enc, client)).toEqual({
        value: { _tag: "Accept", version: hasPatchByte(client) ? daemon : { ...daemon, patch: 0 }, privateGroup: pg },
        consumed: enc.length,
      })
    }
  })
})
