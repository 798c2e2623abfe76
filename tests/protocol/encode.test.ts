/**
 * The one frame writer (`encodeInto`, `writeHeader`) and the one multicast
 * validator (`checkMulticast` with a limits profile).
 */
import { describe, expect, it } from "@effect/vitest"
import {
  checkMulticast,
  embeddedDaemonLimits,
  encodeCommand,
  encodeFrame,
  encodeInto,
  encodeMulticast,
  frameBound,
  frameLengthAt,
  groupEntry,
  hintOf,
  REAL_DAEMON_MAX_GROUPS,
  REAL_DAEMON_MAX_PAYLOAD,
  ServiceBits,
  serviceBitsOf,
  type ServiceLevel,
  spreadDaemonLimits,
} from "../../src/protocol/mod.ts"

const pg = "#alice#localhost"

describe("encodeInto", () => {
  it("encodeInto writes at an offset the bytes encodeMulticast makes, for bytes and for text", () => {
    for (const data of [new Uint8Array([1, 2, 3]), "héllo ✓", ""]) {
      const f = {
        type: ServiceBits.FIFO_MESS | ServiceBits.SELF_DISCARD,
        hint: hintOf(-7),
        groups: [groupEntry("a"), groupEntry("#bob#localhost")],
        data,
      }
      const buf = new Uint8Array(7 + frameBound(f)).fill(0xee)
      const n = encodeInto(buf, 7, groupEntry(pg), f)
      const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data
      const expected = encodeMulticast({
        privateGroup: pg,
        service: "Fifo",
        selfDiscard: true,
        groups: ["a", "#bob#localhost"],
        messType: -7,
        data: bytes,
      })
      expect(buf.subarray(7, 7 + n)).toEqual(expected)
      expect(buf.subarray(0, 7)).toEqual(new Uint8Array(7).fill(0xee))
      expect(frameLengthAt(buf, 7)).toBe(n)
    }
  })

  it("frameLengthAt reads a big-endian header as well", () => {
    const be = encodeFrame({
      type: ServiceBits.AGREED_MESS,
      name: pg,
      groups: ["g", "h"],
      data: new Uint8Array(5),
      littleEndian: false,
    })
    expect(frameLengthAt(be, 0)).toBe(be.length)
    expect(frameLengthAt(encodeCommand("Kill", pg, pg), 0)).toBe(48 + 32)
  })

  it("serviceBitsOf answers each level's bit, and 0 for a value that is no level", () => {
    expect(serviceBitsOf("Safe")).toBe(ServiceBits.SAFE_MESS)
    expect(serviceBitsOf("Unreliable")).toBe(ServiceBits.UNRELIABLE_MESS)
    expect(serviceBitsOf("toString" as ServiceLevel)).toBe(0)
  })
})

describe("checkMulticast", () => {
  const fields = (groups: number, dataLength: number) => ({
    groups: Array.from({ length: groups }, (_, i) => `g${i}`),
    service: "Agreed" as const,
    dataLength,
  })

  it("checkMulticast with spreadDaemonLimits refuses 44 groups and one byte past 143151; the embedded profile takes them", () => {
    expect(checkMulticast(fields(REAL_DAEMON_MAX_GROUPS, 0), spreadDaemonLimits)).toBeUndefined()
    const many = checkMulticast(fields(REAL_DAEMON_MAX_GROUPS + 1, 0), spreadDaemonLimits)
    expect(many?.reason).toBe("Oversize")
    expect(many?.message).toContain("44 groups")
    expect(many?.message).toContain("a real Spread 5.0.1 daemon delivers to at most 43")
    expect(checkMulticast(fields(REAL_DAEMON_MAX_GROUPS + 1, 0), embeddedDaemonLimits)).toBeUndefined()

    expect(checkMulticast(fields(1, REAL_DAEMON_MAX_PAYLOAD - 32), spreadDaemonLimits)).toBeUndefined()
    const big = checkMulticast(fields(1, REAL_DAEMON_MAX_PAYLOAD - 31), spreadDaemonLimits)
    expect(big?.field).toBe("data_len + 32 * num_groups")
    expect(checkMulticast(fields(1, REAL_DAEMON_MAX_PAYLOAD - 31), embeddedDaemonLimits)).toBeUndefined()
  })

  it("checkMulticast asks checkGroup about each destination, in order, and answers its refusal", () => {
    const seen: Array<string> = []
    const r = checkMulticast(fields(3, 0), spreadDaemonLimits, (g) => {
      seen.push(g)
      return g === "g1" ? checkMulticast(fields(0, 0), spreadDaemonLimits) : undefined
    })
    expect(seen).toEqual(["g0", "g1"])
    expect(r?.field).toBe("groups")
  })
})
