/**
 * Property-style round trips over random messages (seeded, reproducible):
 * encode, then decode, gives back the same fields.
 */
import { describe, expect, it } from "@effect/vitest"
import {
  decodeServerMessage,
  encodeCommand,
  encodeMembership,
  encodeMulticast,
  encodeRejectFor,
  encodeSelfLeave,
  encodeTransitional,
  Frame,
  FrameDecoder,
  type GroupId,
  isProtocolError,
  MAX_MESSAGE_PAYLOAD,
  type MulticastSpec,
  ServiceBits,
  type ServiceLevel,
  serviceLevelBits,
  toLittleEndian,
  validateClientFrame,
  validateGroupName,
  validateMulticast,
} from "../../src/protocol/mod.ts"
import { Prng } from "../_helpers/prng.ts"

const SERVICES: ReadonlyArray<ServiceLevel> = ["Unreliable", "Reliable", "Fifo", "Causal", "Agreed", "Safe"]

const decodeOne = (bytes: Uint8Array, direction: "toDaemon" | "toClient"): Frame => {
  const d = new FrameDecoder(direction)
  d.push(bytes)
  const f = d.next()
  if (!(f instanceof Frame)) throw new Error(`not a frame: ${String(f)}`)
  expect(d.buffered).toBe(0)
  return f
}

const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("")

// An ordinary group name (1..31 bytes in 0x24..0x7e; 0x23 never occurs there).
const randomPlainGroup = (rng: Prng): string => rng.chars(rng.int(1, 31))

// An ordinary group, or now and then a private group "#priv#daemon".
const randomGroup = (rng: Prng): string =>
  rng.chance(0.15) ? `#${rng.chars(rng.int(1, 10))}#${rng.chars(rng.int(1, 19))}` : randomPlainGroup(rng)

const randomSpec = (rng: Prng, i: number): MulticastSpec & { messType: number; littleEndian: boolean } => {
  const privateName = rng.chars(rng.int(1, 10))
  const daemon = rng.chars(rng.int(1, 19))
  const n = rng.chance(0.05) ? 100 : rng.int(1, 8)
  const groups = Array.from({ length: n }, () => randomGroup(rng))
  const max = MAX_MESSAGE_PAYLOAD - 32 * n
  // sizes: 0, small, medium, and (every 25th) at or just under the limit
  const size = i % 25 === 0 ? max - rng.int(0, 1) : rng.pick([0, 1, rng.int(2, 64), rng.int(65, 4096)])
  return {
    privateGroup: `#${privateName}#${daemon}`,
    service: rng.pick(SERVICES),
    selfDiscard: rng.chance(0.3),
    groups,
    messType: rng.pick([-32768, -1, 0, 1, 32767, rng.int(-32768, 32767)]),
    data: rng.bytes(size),
    littleEndian: rng.chance(0.5),
  }
}

describe("multicast round trips", () => {
  it("encodeMulticast -> FrameDecoder('toDaemon') gives back every field, in both byte orders", () => {
    const rng = new Prng(42)
    const seen = { le: 0, be: 0, limit: 0, empty: 0, g100: 0 }
    for (let i = 0; i < 400; i++) {
      const spec = randomSpec(rng, i)
      expect(validateMulticast(spec)).toBeUndefined()
      const bytes = encodeMulticast(spec)
      expect(bytes.length).toBe(48 + 32 * spec.groups.length + spec.data.length)
      const f = decodeOne(bytes, "toDaemon")
      expect({
        type: f.type,
        littleEndian: f.littleEndian,
        hintLittleEndian: f.hintLittleEndian,
        sender: f.sender,
        groups: f.groups,
        messType: f.messType,
        dataLen: f.dataLen,
        data: hex(f.data),
      }).toEqual({
        type: serviceLevelBits[spec.service] | (spec.selfDiscard ? ServiceBits.SELF_DISCARD : 0),
        littleEndian: spec.littleEndian,
        hintLittleEndian: spec.littleEndian,
        sender: spec.privateGroup,
        groups: spec.groups,
        messType: spec.messType,
        dataLen: spec.data.length,
        data: hex(spec.data),
      })
      const [, session, daemon] = spec.privateGroup.split("#")
      expect(validateClientFrame(f, session, daemon)).toEqual({
        _tag: "Multicast",
        service: spec.service,
        selfDiscard: spec.selfDiscard,
      })
      seen[spec.littleEndian ? "le" : "be"]++
      if (spec.data.length + 32 * spec.groups.length === MAX_MESSAGE_PAYLOAD) seen.limit++
      if (spec.data.length === 0) seen.empty++
      if (spec.groups.length === 100) seen.g100++
    }
    expect(Math.min(seen.le, seen.be, seen.limit, seen.empty, seen.g100)).toBeGreaterThan(0)
  })

  it("encodeMulticast -> toLittleEndian -> decodeServerMessage gives a Regular message with the sender's hint order", () => {
    const rng = new Prng(4242)
    for (let i = 0; i < 200; i++) {
      const spec = randomSpec(rng, i)
      const sent = decodeOne(encodeMulticast(spec), "toDaemon")
      const delivered = decodeOne(toLittleEndian(sent), "toClient")
      expect(delivered.littleEndian).toBe(true)
      expect(hex(delivered.bytes.subarray(40, 44))).toBe(hex(sent.bytes.subarray(40, 44)))
      const m = decodeServerMessage(delivered)
      if (isProtocolError(m) || m._tag !== "Regular") return expect.fail(`not regular: ${JSON.stringify(m)}`)
      expect({
        sender: m.sender,
        groups: m.groups,
        service: m.service,
        messType: m.messType,
        endianMismatch: m.endianMismatch,
        data: hex(m.data),
        selfDiscard: (m.type & ServiceBits.SELF_DISCARD) !== 0,
      }).toEqual({
        sender: spec.privateGroup,
        groups: spec.groups,
        service: spec.service,
        messType: spec.messType,
        endianMismatch: !spec.littleEndian,
        data: hex(spec.data),
        selfDiscard: spec.selfDiscard,
      })
    }
  })

  it("encodeMulticast carries mess_type 65535 as -1 (16 bits, sign-extended on receipt)", () => {
    const f = decodeOne(
      encodeMulticast({
        privateGroup: "#a#b",
        service: "Agreed",
        groups: ["g"],
        messType: 65535,
        data: new Uint8Array(),
      }),
      "toDaemon",
    )
    expect(f.messType).toBe(-1)
    expect(f.hint).toBe(0x80ffff80)
  })

  it("validateMulticast refuses exactly the random sizes above 143152", () => {
    const rng = new Prng(5)
    for (let i = 0; i < 300; i++) {
      const n = rng.int(1, 100)
      const size = MAX_MESSAGE_PAYLOAD - 32 * n + rng.int(-3, 3)
      const r = validateMulticast({
        privateGroup: "#a#b",
        service: "Fifo",
        groups: Array.from({ length: n }, (_, k) => `g${k}`),
        data: new Uint8Array(Math.max(0, size)),
      })
      expect(r === undefined, `${n} groups, ${size} bytes`).toBe(size + 32 * n <= MAX_MESSAGE_PAYLOAD)
    }
  })
})

describe("command and daemon message round trips", () => {
  it("encodeCommand -> FrameDecoder -> validateClientFrame gives the command back", () => {
    const rng = new Prng(8)
    for (let i = 0; i < 200; i++) {
      const cmd = rng.pick(["Join", "Leave", "Kill"] as const)
      const session = rng.chars(rng.int(1, 10))
      const daemon = rng.chars(rng.int(1, 19))
      const pg = `#${session}#${daemon}`
      const group = cmd === "Kill" ? pg : randomPlainGroup(rng)
      expect(cmd === "Kill" || validateGroupName(group) === undefined).toBe(true)
      const le = rng.chance(0.5)
      const f = decodeOne(encodeCommand(cmd, pg, group, le), "toDaemon")
      expect([f.littleEndian, f.sender, f.groups, f.dataLen, f.messType]).toEqual([le, pg, [group], 0, 0])
      expect(validateClientFrame(f, session, daemon)).toEqual({ _tag: cmd })
    }
  })

  it("encodeMembership -> decodeServerMessage gives back group, cause, id, members and changed member", () => {
    const rng = new Prng(9)
    for (let i = 0; i < 200; i++) {
      const cause = rng.pick(["Join", "Leave", "Disconnect"] as const)
      const members = Array.from({ length: rng.int(0, 40) }, () => `#${rng.chars(rng.int(1, 10))}#h`)
      const changed = `#${rng.chars(rng.int(1, 10))}#h`
      const groupId: GroupId = {
        procId: rng.int(-0x80000000, 0x7fffffff),
        time: rng.int(-0x80000000, 0x7fffffff),
        index: rng.int(-0x80000000, 0x7fffffff),
      }
      const group = randomGroup(rng)
      const m = decodeServerMessage(decodeOne(encodeMembership(group, cause, members, groupId, changed), "toClient"))
      expect(m).toEqual({
        _tag: "Membership",
        group,
        cause,
        groupId,
        members,
        vsSets: [[changed]],
        localVsSet: 0,
        changed,
      })
    }
  })

  it("encodeSelfLeave and encodeTransitional round-trip through decodeServerMessage", () => {
    const rng = new Prng(10)
    for (let i = 0; i < 100; i++) {
      const group = randomGroup(rng)
      const groupId = { procId: rng.int(0, 0x7fffffff), time: rng.int(0, 0x7fffffff), index: rng.int(1, 1000) }
      expect(decodeServerMessage(decodeOne(encodeSelfLeave(group), "toClient"))).toEqual({ _tag: "SelfLeave", group })
      expect(decodeServerMessage(decodeOne(encodeTransitional(group, groupId), "toClient"))).toEqual({
        _tag: "Transitional",
        group,
        groupId,
      })
    }
  })

  it("encodeRejectFor -> decodeServerMessage gives the original type, groups plus sender, mess_type and data", () => {
    const rng = new Prng(11)
    for (let i = 0; i < 200; i++) {
      const spec = randomSpec(rng, i + 1)
      const sent = decodeOne(encodeMulticast(spec), "toDaemon")
      const m = decodeServerMessage(decodeOne(encodeRejectFor(sent, spec.privateGroup), "toClient"))
      if (isProtocolError(m) || m._tag !== "Reject") return expect.fail(`not a reject: ${JSON.stringify(m)}`)
      const groups = spec.groups.length === 100
        ? [...spec.groups.slice(0, 99), spec.privateGroup]
        : [...spec.groups, spec.privateGroup]
      expect({ oldType: m.oldType, sender: m.sender, groups: m.groups, messType: m.messType, data: hex(m.data) })
        .toEqual({
          oldType: sent.type,
          sender: spec.privateGroup,
          groups,
          messType: spec.messType,
          data: hex(spec.data),
        })
    }
  })

  it("encodeRejectFor turns JOIN and LEAVE into CAUSED_BY_JOIN and CAUSED_BY_LEAVE", () => {
    for (
      const [cmd, old] of [["Join", ServiceBits.CAUSED_BY_JOIN], ["Leave", ServiceBits.CAUSED_BY_LEAVE]] as const
    ) {
      const f = decodeOne(encodeCommand(cmd, "#a#b", "deny"), "toDaemon")
      const m = decodeServerMessage(decodeOne(encodeRejectFor(f, "#a#b"), "toClient"))
      expect(!isProtocolError(m) && m._tag === "Reject" && [m.oldType, m.groups]).toEqual([old, ["deny", "#a#b"]])
    }
  })
})
