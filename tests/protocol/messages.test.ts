/**
 * decodeServerMessage and decodeMembershipBody on hostile and unusual input:
 * always a typed result or a ProtocolError, never an exception.
 */
import { describe, expect, it } from "@effect/vitest"
import {
  decodeMembershipBody,
  decodeServerMessage,
  encodeFrame,
  encodeMembership,
  encodeTransitional,
  equalGroupIds,
  Frame,
  FrameDecoder,
  isProtocolError,
  ServiceBits,
  writeU32,
} from "../../src/protocol/mod.ts"
import { Prng } from "../_helpers/prng.ts"
import { concatBytes } from "../../src/protocol/bytes.ts"

const MEMB = ServiceBits.REG_MEMB_MESS

const frameOf = (bytes: Uint8Array): Frame => {
  const d = new FrameDecoder("toClient")
  d.push(bytes)
  const f = d.next()
  if (!(f instanceof Frame)) throw new Error(`not a frame: ${String(f)}`)
  return f
}

const name32 = (s: string): Uint8Array => {
  const b = new Uint8Array(32)
  for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i)
  return b
}

/** A membership body from 32-bit words (little-endian unless told) and names. */
const body = (parts: ReadonlyArray<number | string>, le = true): Uint8Array => {
  const chunks = parts.map((p) => {
    if (typeof p === "string") return name32(p)
    const b = new Uint8Array(4)
    writeU32(b, 0, p, le)
    return b
  })
  return concatBytes(chunks)
}

const gid = [482711334, 1795361573, 7]

const errorOf = (u: unknown): { reason: string; field: string } | undefined =>
  isProtocolError(u) ? { reason: u.reason, field: u.field } : undefined

describe("decodeMembershipBody", () => {
  it("decodeMembershipBody reads a lightweight body", () => {
    expect(decodeMembershipBody(body([...gid, 1, 0, 1, "#bob#localhost"]), true)).toEqual({
      groupId: { procId: 482711334, time: 1795361573, index: 7 },
      vsSets: [["#bob#localhost"]],
      localVsSet: 0,
      localVsSetOffset: 0,
    })
  })

  it("decodeMembershipBody finds the local set by its offset (trace 27 layout: 2 sets, offset 36)", () => {
    const b = body([...gid, 2, 36, 1, "#bob#d2", 1, "#alice#d1"])
    expect(b.length).toBe(92)
    const r = decodeMembershipBody(b, true)
    expect(isProtocolError(r) ? r : [r.vsSets, r.localVsSet]).toEqual([[["#bob#d2"], ["#alice#d1"]], 1])
  })

  it("decodeMembershipBody reads a big-endian body", () => {
    const r = decodeMembershipBody(body([...gid, 2, 0, 2, "#a#x", "#b#x", 0], false), false)
    expect(isProtocolError(r) ? r : [r.groupId.index, r.vsSets, r.localVsSet]).toEqual([7, [["#a#x", "#b#x"], []], 0])
  })

  it("decodeMembershipBody accepts zero vs sets", () => {
    const r = decodeMembershipBody(body([...gid, 0, 0]), true)
    expect(isProtocolError(r) ? r : [r.vsSets, r.localVsSet]).toEqual([[], -1])
  })

  it("decodeMembershipBody refuses a body shorter than 20 bytes", () => {
    for (let n = 0; n < 20; n++) {
      expect(errorOf(decodeMembershipBody(new Uint8Array(n), true))).toEqual({
        reason: "Truncated",
        field: "membership body",
      })
    }
  })

  it("decodeMembershipBody refuses a huge num_vs_sets without looping over it", () => {
    for (const n of [0xffffffff, 0x80000000, 10]) {
      expect(errorOf(decodeMembershipBody(body([...gid, n, 0, 1, "#a#b"]), true)), n.toString(16))
        .toEqual({ reason: "Oversize", field: "num_vs_sets" })
    }
  })

  it("decodeMembershipBody refuses a vs set count larger than the body", () => {
    for (const n of [2, 0xffffffff, 0x80000000]) {
      expect(errorOf(decodeMembershipBody(body([...gid, 1, 0, n, "#a#b"]), true)), n.toString(16))
        .toEqual({ reason: "Oversize", field: "vs_set count" })
    }
  })

  it("decodeMembershipBody refuses sets that run past the body", () => {
    // 2 sets announced, the body holds one set and a partial count
    expect(errorOf(decodeMembershipBody(body([...gid, 2, 0, 1, "#a#b"]), true)))
      .toEqual({ reason: "Truncated", field: "vs_set count" })
  })

  it("decodeMembershipBody refuses an offset that does not point at a set", () => {
    for (const off of [4, 35, 37, 72, 0xffffffff]) {
      expect(errorOf(decodeMembershipBody(body([...gid, 2, off, 1, "#b#d2", 1, "#a#d1"]), true)), String(off))
        .toEqual({ reason: "Malformed", field: "local_vs_set_offset" })
    }
  })
})

describe("decodeServerMessage", () => {
  it("decodeServerMessage reports a membership with a bad body as a ProtocolError", () => {
    const f = frameOf(
      encodeFrame({
        type: MEMB | ServiceBits.CAUSED_BY_JOIN,
        name: "grp",
        groups: ["#a#b"],
        data: body([...gid, 0xffffffff, 0]),
      }),
    )
    expect(errorOf(decodeServerMessage(f))).toEqual({ reason: "Oversize", field: "num_vs_sets" })
    const short = frameOf(encodeFrame({ type: MEMB | ServiceBits.CAUSED_BY_JOIN, name: "grp", groups: [] }))
    expect(errorOf(decodeServerMessage(short))).toEqual({ reason: "Truncated", field: "membership body" })
  })

  it("decodeServerMessage refuses a membership with no or two CAUSED_BY bits", () => {
    for (const t of [MEMB, MEMB | ServiceBits.CAUSED_BY_JOIN | ServiceBits.CAUSED_BY_LEAVE]) {
      const f = frameOf(encodeFrame({ type: t, name: "grp", groups: [], data: body([...gid, 0, 0]) }))
      expect(errorOf(decodeServerMessage(f))).toEqual({ reason: "Malformed", field: "type" })
    }
  })

  it("decodeServerMessage refuses a data message with two service bits and a type a daemon never sends", () => {
    const two = frameOf(
      encodeFrame({ type: ServiceBits.AGREED_MESS | ServiceBits.SAFE_MESS, name: "#a#b", groups: ["g"] }),
    )
    expect(errorOf(decodeServerMessage(two))).toEqual({ reason: "IllegalService", field: "type" })
    for (const t of [0, ServiceBits.JOIN_MESS, ServiceBits.CAUSED_BY_JOIN]) {
      const f = frameOf(encodeFrame({ type: t, name: "x", groups: [] }))
      expect(errorOf(decodeServerMessage(f)), t.toString(16)).toEqual({ reason: "Malformed", field: "type" })
    }
  })

  it("decodeServerMessage checks REJECT before self-leave: a rejected leave is a Reject", () => {
    const f = frameOf(
      encodeFrame({
        type: ServiceBits.REJECT_MESS,
        name: "#bob#localhost",
        groups: ["noleave1", "#bob#localhost"],
        oldType: ServiceBits.CAUSED_BY_LEAVE,
      }),
    )
    const m = decodeServerMessage(f)
    expect(!isProtocolError(m) && m._tag).toBe("Reject")
    expect(!isProtocolError(m) && m._tag === "Reject" && m.oldType).toBe(ServiceBits.CAUSED_BY_LEAVE)
  })

  it("decodeServerMessage gives no changed member for a network membership and no group id for a short transitional", () => {
    const net = frameOf(
      encodeFrame({
        type: MEMB | ServiceBits.CAUSED_BY_NETWORK,
        name: "net",
        groups: ["#a#d1"],
        data: body([...gid, 1, 0, 1, "#a#d1"]),
      }),
    )
    const m = decodeServerMessage(net)
    expect(!isProtocolError(m) && m._tag === "Membership" && [m.cause, m.changed]).toEqual(["Network", undefined])
    const t = frameOf(
      encodeFrame({ type: ServiceBits.TRANSITION_MESS, name: "net", groups: [], data: new Uint8Array(11) }),
    )
    expect(decodeServerMessage(t)).toEqual({ _tag: "Transitional", group: "net", groupId: undefined })
  })

  it("decodeServerMessage decodes encodeTransitional and compares group ids with equalGroupIds", () => {
    const g = { procId: 1552775919, time: 1795363115, index: 2 }
    const m = decodeServerMessage(frameOf(encodeTransitional("net", g)))
    if (isProtocolError(m) || m._tag !== "Transitional" || m.groupId === undefined) return expect.fail("bad")
    expect(equalGroupIds(m.groupId, g)).toBe(true)
    expect(equalGroupIds(m.groupId, { ...g, index: 3 })).toBe(false)
    expect(equalGroupIds(m.groupId, { ...g, time: 0 })).toBe(false)
    expect(equalGroupIds(m.groupId, { ...g, procId: 0 })).toBe(false)
  })

  it("decodeServerMessage reads a big-endian membership (type, counts and body all big-endian)", () => {
    const bytes = encodeFrame({
      type: MEMB | ServiceBits.CAUSED_BY_LEAVE,
      name: "grp",
      groups: ["#a#x"],
      data: body([...gid, 1, 0, 1, "#b#x"], false),
      littleEndian: false,
    })
    const m = decodeServerMessage(frameOf(bytes))
    expect(m).toEqual({
      _tag: "Membership",
      group: "grp",
      cause: "Leave",
      groupId: { procId: 482711334, time: 1795361573, index: 7 },
      members: ["#a#x"],
      vsSets: [["#b#x"]],
      localVsSet: 0,
      changed: "#b#x",
    })
  })

  it("decodeServerMessage never throws on random membership bodies", () => {
    const rng = new Prng(99)
    let errors = 0
    for (let i = 0; i < 5000; i++) {
      const n = rng.int(0, 160)
      const data = rng.bytes(n)
      if (n >= 20 && rng.chance(0.8)) {
        writeU32(data, 12, rng.pick([0, 1, 2, 3, rng.int(0, 0x7fffffff), 0xffffffff]), true)
        writeU32(data, 16, rng.pick([0, 36, 4, rng.int(0, 200), 0xffffffff]), true)
        if (n >= 24) writeU32(data, 20, rng.pick([0, 1, 2, 0xffffffff]), true)
      }
      const cause = rng.pick([ServiceBits.CAUSED_BY_JOIN, ServiceBits.CAUSED_BY_NETWORK])
      const f = frameOf(encodeFrame({ type: MEMB | cause, name: "g", groups: [], data }))
      const m = decodeServerMessage(f)
      if (isProtocolError(m)) errors++
      else expect(m._tag).toBe("Membership")
    }
    expect(errors).toBeGreaterThan(0)
  })

  it("encodeMembership writes the changed member into the single vs set, cut to 31 bytes", () => {
    const g = { procId: 1, time: 2, index: 3 }
    const long = "x".repeat(40)
    const m = decodeServerMessage(frameOf(encodeMembership("grp", "Disconnect", ["#a#b"], g, long)))
    expect(!isProtocolError(m) && m._tag === "Membership" && m.changed).toBe("x".repeat(31))
  })
})
