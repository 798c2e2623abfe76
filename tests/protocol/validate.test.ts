/**
 * Daemon-side checks of client frames (validateClientFrame against traces 23
 * and 28) and the client-side name and multicast checks at their boundaries.
 */
import { describe, expect, it } from "@effect/vitest"
import {
  type ClientRequest,
  encodeCommand,
  encodeFrame,
  encodeMulticast,
  Frame,
  FrameDecoder,
  isProtocolError,
  MAX_MESSAGE_PAYLOAD,
  type MulticastSpec,
  parsePrivateGroup,
  privateGroupName,
  type ProtocolError,
  ServiceBits,
  type ServiceLevel,
  validateClientFrame,
  validateDaemonName,
  validateGroupName,
  validateMulticast,
  validatePrivateName,
} from "../../src/protocol/mod.ts"
import { type ActualConnection, type ActualItem, decodeTrace } from "../_helpers/golden.ts"
import { traceNames } from "../_helpers/traces.ts"

type Outcome = ClientRequest | { readonly reason: ProtocolError["reason"]; readonly field: string }

const outcome = (r: ClientRequest | ProtocolError): Outcome =>
  isProtocolError(r) ? { reason: r.reason, field: r.field } : r

// What the daemon side makes of every frame a client sent after the handshake:
// the request, or the error from the decoder or from validateClientFrame.
const outcomes = (c: ActualConnection, session: string, daemon: string): Array<Outcome> =>
  c.c2d.flatMap((i: ActualItem): Array<Outcome> => {
    if (i.kind === "frame") return [outcome(validateClientFrame(i.frame, session, daemon))]
    if (i.kind === "error") return [{ reason: i.error.reason, field: i.error.field }]
    return []
  })

const acceptedGroup = (c: ActualConnection): string | undefined => {
  for (const i of c.d2c) if (i.kind === "accept" && i.value._tag === "Accept") return i.value.privateGroup
  return undefined
}

const frameOf = (bytes: Uint8Array, direction: "toDaemon" | "toClient" = "toDaemon"): Frame => {
  const d = new FrameDecoder(direction)
  d.push(bytes)
  const f = d.next()
  if (!(f instanceof Frame)) throw new Error(`not a frame: ${String(f)}`)
  return f
}

const errorOf = (u: unknown): { reason: string; field: string } | undefined =>
  isProtocolError(u) ? { reason: u.reason, field: u.field } : undefined

const agreed = { _tag: "Multicast", service: "Agreed", selfDiscard: false } as const
const illegalService = { reason: "IllegalService", field: "type" } as const

describe("validateClientFrame on trace 23 (raw malformed messages)", () => {
  const conns = decodeTrace("23-raw-malformed-messages")
  const expected: Record<number, ReadonlyArray<Outcome>> = {
    1: [illegalService], // AGREED|SAFE
    2: [illegalService], // AGREED|JOIN
    3: [illegalService], // type 0
    4: [{ reason: "IllegalName", field: "private_group_name" }], // #other#localhost
    5: [{ reason: "IllegalName", field: "private_group_name" }], // #mal#elsewhere
    6: [{ reason: "Oversize", field: "num_groups" }], // 101 groups
    7: [{ reason: "Negative", field: "num_groups" }], // -1 groups
    8: [{ reason: "IllegalHint", field: "hint" }], // hint 0x80000081
    9: [{ reason: "Negative", field: "data_len" }], // data_len -5
    10: [{ reason: "Oversize", field: "data_len + 32 * num_groups" }], // 143953
    11: [{ _tag: "Join" }, agreed, agreed, { _tag: "Kill" }], // legal oddities
  }

  for (const [conn, want] of Object.entries(expected)) {
    it(`validateClientFrame and FrameDecoder give conn${conn} ${JSON.stringify(want)}`, () => {
      const c = conns.find((x) => x.conn === Number(conn))
      if (c === undefined) return expect.fail("missing connection")
      const session = Number(conn) === 11 ? "odd" : "mal"
      expect(acceptedGroup(c)).toBe(`#${session}#localhost`)
      expect(outcomes(c, session, "localhost")).toEqual(want)
    })
  }

  it("validateClientFrame reports the offending name and hint values", () => {
    const c4 = conns.find((x) => x.conn === 4)?.c2d.find((i) => i.kind === "frame")
    const c8 = conns.find((x) => x.conn === 8)?.c2d.find((i) => i.kind === "frame")
    if (c4?.kind !== "frame" || c8?.kind !== "frame") return expect.fail("missing frames")
    const e4 = validateClientFrame(c4.frame, "mal", "localhost")
    const e8 = validateClientFrame(c8.frame, "mal", "localhost")
    expect(isProtocolError(e4) && e4.value).toBe("#other#localhost")
    expect(isProtocolError(e8) && e8.value).toBe("0x80000081")
  })

  it("validateClientFrame refuses conn11's legal join when the session or daemon name differs", () => {
    const f = conns.find((x) => x.conn === 11)?.c2d.find((i) => i.kind === "frame")
    if (f?.kind !== "frame") return expect.fail("missing frame")
    expect(outcome(validateClientFrame(f.frame, "odd", "localhost"))).toEqual({ _tag: "Join" })
    expect(outcome(validateClientFrame(f.frame, "mal", "localhost")))
      .toEqual({ reason: "IllegalName", field: "private_group_name" })
    expect(outcome(validateClientFrame(f.frame, "odd", "elsewhere")))
      .toEqual({ reason: "IllegalName", field: "private_group_name" })
    expect(outcome(validateClientFrame(f.frame, "od", "localhost")))
      .toEqual({ reason: "IllegalName", field: "private_group_name" })
  })
})

describe("validateClientFrame on trace 28 (service-bit edge cases)", () => {
  const conns = decodeTrace("28-service-bit-edge-cases")

  it("validateClientFrame forwards DROP_RECV, CAUSED_BY_JOIN and REG_MEMB_MESS multicasts and refuses AGREED|SAFE", () => {
    const alice = conns.find((c) => c.conn === 1)
    if (alice === undefined) return expect.fail("missing connection")
    // As a real daemon does (section 6.6, T28): odd bits pass, two service bits kill.
    const agreedMcast = { _tag: "Multicast", service: "Agreed", selfDiscard: false }
    expect(outcomes(alice, "alice", "localhost")).toEqual([
      { _tag: "Join" },
      agreedMcast,
      agreedMcast,
      agreedMcast,
      illegalService,
    ])
  })

  it("validateClientFrame refuses GROUPS_MESS and REJECT_MESS on a multicast", () => {
    for (const bit of [0x00080000, 0x00400000]) {
      const f = frameOf(encodeFrame({ type: (0x10 | bit) >>> 0, name: "#alice#localhost", groups: ["g"] }))
      expect(
        validateClientFrame(
          frameOf(encodeFrame({ type: 0x10, name: "#alice#localhost", groups: ["g"] })),
          "alice",
          "localhost",
        ),
      )
        .toEqual({ _tag: "Multicast", service: "Agreed", selfDiscard: false })
      expect(errorOf(validateClientFrame(f, "alice", "localhost")), bit.toString(16))
        .toEqual({ reason: "IllegalService", field: "type" })
    }
  })

  it("validateClientFrame accepts bob's join and disconnect", () => {
    const bob = conns.find((c) => c.conn === 2)
    if (bob === undefined) return expect.fail("missing connection")
    expect(outcomes(bob, "bob", "localhost")).toEqual([{ _tag: "Join" }, { _tag: "Kill" }])
  })
})

describe("validateClientFrame on every other trace", () => {
  it("validateClientFrame accepts every frame of the well-behaved traces with the matching request", () => {
    const skip = new Set(["23-raw-malformed-messages", "28-service-bit-edge-cases"])
    let n = 0
    for (const full of traceNames()) {
      if (skip.has(full)) continue
      for (const c of decodeTrace(full)) {
        const pg = acceptedGroup(c)
        if (pg === undefined) continue
        const parsed = parsePrivateGroup(pg)
        if (parsed === undefined) return expect.fail(`bad private group ${pg}`)
        for (const i of c.c2d) {
          if (i.kind !== "frame") continue
          const r = validateClientFrame(i.frame, parsed.privateName, parsed.daemonName)
          if (isProtocolError(r)) return expect.fail(`${full} conn${c.conn}: ${r.message}`)
          const t = i.frame.type
          const tag = t & ServiceBits.JOIN_MESS
            ? "Join"
            : t & ServiceBits.LEAVE_MESS
            ? "Leave"
            : t & ServiceBits.KILL_MESS
            ? "Kill"
            : "Multicast"
          expect(r._tag).toBe(tag)
          if (r._tag === "Multicast") expect(r.selfDiscard).toBe((t & ServiceBits.SELF_DISCARD) !== 0)
          n++
        }
      }
    }
    expect(n).toBe(438)
  })
})

describe("validateClientFrame on synthetic headers", () => {
  const pg = "#me#host"
  const base = { type: ServiceBits.AGREED_MESS, name: pg, groups: ["g"] }

  it("validateClientFrame accepts every single service bit, with and without SELF_DISCARD", () => {
    const levels: Array<[number, ServiceLevel]> = [
      [ServiceBits.UNRELIABLE_MESS, "Unreliable"],
      [ServiceBits.RELIABLE_MESS, "Reliable"],
      [ServiceBits.FIFO_MESS, "Fifo"],
      [ServiceBits.CAUSAL_MESS, "Causal"],
      [ServiceBits.AGREED_MESS, "Agreed"],
      [ServiceBits.SAFE_MESS, "Safe"],
    ]
    for (const [bit, service] of levels) {
      for (const sd of [false, true]) {
        const f = frameOf(encodeFrame({ ...base, type: bit | (sd ? ServiceBits.SELF_DISCARD : 0) }))
        expect(validateClientFrame(f, "me", "host")).toEqual({ _tag: "Multicast", service, selfDiscard: sd })
      }
    }
  })

  it("validateClientFrame refuses two command bits, GROUPS_MESS and REJECT_MESS", () => {
    for (
      const type of [
        ServiceBits.JOIN_MESS | ServiceBits.LEAVE_MESS,
        ServiceBits.KILL_MESS | ServiceBits.LEAVE_MESS,
        ServiceBits.AGREED_MESS | ServiceBits.GROUPS_MESS,
        ServiceBits.AGREED_MESS | ServiceBits.REJECT_MESS,
      ]
    ) {
      expect(errorOf(validateClientFrame(frameOf(encodeFrame({ ...base, type })), "me", "host")))
        .toEqual(illegalService)
    }
    // SELF_DISCARD is in neither bit set the daemon counts, so a join may carry it.
    const join = frameOf(encodeFrame({ ...base, type: ServiceBits.JOIN_MESS | ServiceBits.SELF_DISCARD }))
    expect(validateClientFrame(join, "me", "host")).toEqual({ _tag: "Join" })
  })

  it("validateClientFrame refuses a join or leave without a group entry but accepts a bare KILL", () => {
    for (const type of [ServiceBits.JOIN_MESS, ServiceBits.LEAVE_MESS]) {
      expect(errorOf(validateClientFrame(frameOf(encodeFrame({ ...base, type, groups: [] })), "me", "host")))
        .toEqual({ reason: "Malformed", field: "num_groups" })
    }
    const kill = frameOf(encodeFrame({ ...base, type: ServiceBits.KILL_MESS, groups: [] }))
    expect(validateClientFrame(kill, "me", "host")).toEqual({ _tag: "Kill" })
  })

  it("validateClientFrame reads at most 31 bytes of the name field (byte 31 is forced to NUL)", () => {
    // "#abcdefghij#" + 19-byte daemon = 31 bytes: legal
    const daemon = "d".repeat(19)
    const ok = frameOf(encodeFrame({ ...base, name: `#abcdefghij#${daemon}` }))
    expect(validateClientFrame(ok, "abcdefghij", daemon)).toEqual(agreed)
    // A 32-byte name field with no NUL: the daemon sees only its first 31 bytes.
    const bytes = encodeFrame({ ...base, name: `#abcdefghij#${daemon}` })
    bytes[4 + 31] = 0x78 // "x" in the last byte, no NUL anywhere
    const f = frameOf(bytes)
    expect(f.sender.length).toBe(32)
    expect(validateClientFrame(f, "abcdefghij", daemon)).toEqual(agreed)
  })

  it("validateClientFrame refuses malformed private group names in the name field", () => {
    for (const name of ["me#host", "#me", "#me#", "##host", "#me#ho#st", "#me x#host", "#abcdefghijk#host"]) {
      const f = frameOf(encodeFrame({ ...base, name }))
      expect(errorOf(validateClientFrame(f, "me", "host")), name).toEqual({
        reason: "IllegalName",
        field: "private_group_name",
      })
    }
  })

  it("validateClientFrame accepts every hint inside 0x80FFFF80 and refuses any other bit", () => {
    for (const hint of [0x80ffff80, 0x00ffff00, 0x80000080, 0]) {
      const f = frameOf(encodeFrame({ ...base, hint }))
      expect(validateClientFrame(f, "me", "host"), hint.toString(16)).toEqual(agreed)
    }
    for (const bit of [0x01, 0x40, 0x01000000, 0x40000000]) {
      const f = frameOf(encodeFrame({ ...base, hint: (0x80000080 | bit) >>> 0 }))
      expect(errorOf(validateClientFrame(f, "me", "host")), bit.toString(16))
        .toEqual({ reason: "IllegalHint", field: "hint" })
    }
  })

  it("validateClientFrame judges a big-endian frame like its little-endian twin", () => {
    const le = frameOf(encodeMulticast({ privateGroup: pg, service: "Fifo", groups: ["g"], data: new Uint8Array(2) }))
    const be = frameOf(
      encodeMulticast({
        privateGroup: pg,
        service: "Fifo",
        groups: ["g"],
        data: new Uint8Array(2),
        littleEndian: false,
      }),
    )
    expect(be.littleEndian).toBe(false)
    expect(validateClientFrame(be, "me", "host")).toEqual(validateClientFrame(le, "me", "host"))
    const join = frameOf(encodeCommand("Join", pg, "g", false))
    expect(validateClientFrame(join, "me", "host")).toEqual({ _tag: "Join" })
  })
})

describe("name validation boundaries", () => {
  it("validateGroupName accepts 1 to 31 bytes and refuses 0 and 32", () => {
    expect(validateGroupName("a")).toBeUndefined()
    expect(validateGroupName("a".repeat(31))).toBeUndefined()
    expect(errorOf(validateGroupName(""))).toEqual({ reason: "IllegalName", field: "group" })
    expect(errorOf(validateGroupName("a".repeat(32)))).toEqual({ reason: "IllegalName", field: "group" })
  })

  it("validateGroupName accepts bytes 0x24..0x7e and refuses 0x23, 0x7f and others", () => {
    expect(validateGroupName("$")).toBeUndefined()
    expect(validateGroupName("~")).toBeUndefined()
    expect(validateGroupName("a$~z")).toBeUndefined()
    for (const bad of ["a#b", "a\x7f", "a b", "a!", "\x00", "a\x80", "\xff", "é", "a\u0124"]) {
      expect(validateGroupName(bad), JSON.stringify(bad)).toBeInstanceOf(Error)
    }
  })

  it("validateGroupName refuses a leading '#' unless allowPrivate and the name is #priv#daemon", () => {
    expect(validateGroupName("#bob#localhost")).toBeInstanceOf(Error)
    expect(validateGroupName("#bob#localhost", true)).toBeUndefined()
    expect(validateGroupName("#bob", true)).toBeInstanceOf(Error)
    expect(validateGroupName("#bob#", true)).toBeInstanceOf(Error)
    expect(validateGroupName("##localhost", true)).toBeInstanceOf(Error)
    expect(validateGroupName(`#${"p".repeat(10)}#${"d".repeat(19)}`, true)).toBeUndefined()
    expect(validateGroupName(`#${"p".repeat(11)}#${"d".repeat(18)}`, true)).toBeInstanceOf(Error)
    expect(validateGroupName(`#p#${"d".repeat(20)}`, true)).toBeInstanceOf(Error)
  })

  it("validatePrivateName accepts 0 to 10 bytes in 0x24..0x7e and refuses 11 bytes or 0x23/0x7f", () => {
    expect(validatePrivateName("")).toBeUndefined()
    expect(validatePrivateName("a".repeat(10))).toBeUndefined()
    expect(validatePrivateName("$~")).toBeUndefined()
    expect(errorOf(validatePrivateName("a".repeat(11)))).toEqual({ reason: "IllegalName", field: "privateName" })
    expect(errorOf(validatePrivateName("bad#name"))).toEqual({ reason: "IllegalName", field: "privateName" })
    expect(errorOf(validatePrivateName("bang!"))).toEqual({ reason: "IllegalName", field: "privateName" })
    expect(errorOf(validatePrivateName("a\x7f"))).toEqual({ reason: "IllegalName", field: "privateName" })
  })

  it("validateDaemonName accepts 1 to 19 bytes without '#'", () => {
    expect(validateDaemonName("localhost")).toBeUndefined()
    expect(validateDaemonName("d".repeat(19))).toBeUndefined()
    expect(validateDaemonName("")).toBeInstanceOf(Error)
    expect(validateDaemonName("d".repeat(20))).toBeInstanceOf(Error)
    expect(validateDaemonName("a#b")).toBeInstanceOf(Error)
    expect(validateDaemonName("a b")).toBeInstanceOf(Error)
  })

  it("parsePrivateGroup splits privateGroupName's output and refuses malformed names", () => {
    expect(parsePrivateGroup(privateGroupName("alice", "localhost"))).toEqual({
      privateName: "alice",
      daemonName: "localhost",
    })
    for (const bad of ["alice#localhost", "#alice", "#alice#", "##x", "#a#b#c", "#a b#c", ""]) {
      expect(parsePrivateGroup(bad), bad).toBeUndefined()
    }
  })
})

describe("validateMulticast boundaries", () => {
  const spec = (over: Partial<MulticastSpec>): MulticastSpec => ({
    privateGroup: "#a#d",
    service: "Agreed",
    groups: ["g"],
    data: new Uint8Array(0),
    ...over,
  })
  const err = (s: MulticastSpec) => errorOf(validateMulticast(s))

  it("validateMulticast accepts data + 32 * groups = 143152 and refuses 143153", () => {
    expect(validateMulticast(spec({ data: new Uint8Array(MAX_MESSAGE_PAYLOAD - 32) }))).toBeUndefined()
    expect(err(spec({ data: new Uint8Array(MAX_MESSAGE_PAYLOAD - 31) })))
      .toEqual({ reason: "Oversize", field: "data_len + 32 * num_groups" })
    const g100 = Array.from({ length: 100 }, (_, i) => `g${i}`)
    expect(validateMulticast(spec({ groups: g100, data: new Uint8Array(MAX_MESSAGE_PAYLOAD - 3200) })))
      .toBeUndefined()
    expect(err(spec({ groups: g100, data: new Uint8Array(MAX_MESSAGE_PAYLOAD - 3199) })))
      .toEqual({ reason: "Oversize", field: "data_len + 32 * num_groups" })
    const e = validateMulticast(spec({ data: new Uint8Array(143121) }))
    expect(isProtocolError(e) && e.value).toBe(143153)
  })

  it("validateMulticast accepts 1 and 100 groups and refuses 0 and 101", () => {
    const g = (n: number) => Array.from({ length: n }, (_, i) => `g${i}`)
    expect(validateMulticast(spec({ groups: g(1) }))).toBeUndefined()
    expect(validateMulticast(spec({ groups: g(100) }))).toBeUndefined()
    expect(err(spec({ groups: [] }))).toEqual({ reason: "Malformed", field: "groups" })
    expect(err(spec({ groups: g(101) }))).toEqual({ reason: "Oversize", field: "groups" })
  })

  it("validateMulticast accepts mess_type -32768..65535 and refuses values outside or fractional", () => {
    for (const messType of [-32768, -1, 0, 32767, 65535]) {
      expect(validateMulticast(spec({ messType })), String(messType)).toBeUndefined()
    }
    for (const messType of [-32769, 65536, 1.5, Number.NaN]) {
      expect(err(spec({ messType })), String(messType)).toEqual({ reason: "Malformed", field: "mess_type" })
    }
  })

  it("validateMulticast refuses a bad destination name and an unknown service", () => {
    expect(err(spec({ groups: ["ok", "has space"] }))).toEqual({ reason: "IllegalName", field: "group" })
    expect(err(spec({ groups: ["#nothash"] }))).toEqual({ reason: "IllegalName", field: "group" })
    expect(validateMulticast(spec({ groups: ["#bob#localhost", "g"] }))).toBeUndefined()
    expect(err(spec({ service: "Bogus" as ServiceLevel }))).toEqual({ reason: "IllegalService", field: "service" })
  })
})
