/**
 * Golden vectors: every stream of every real trace, decoded by our codec
 * following the protocol rules, must match the independent decoder's
 * transcript field by field, in order.
 */
import { describe, expect, it } from "@effect/vitest"
import {
  decodeServerMessage,
  encodeMembership,
  FrameDecoder,
  isProtocolError,
  peekHeader,
  ServiceBits,
} from "../../src/protocol/mod.ts"
import { streamKey } from "../_helpers/decoded.ts"
import {
  decodeTrace,
  type ExpectedError,
  normActualItems,
  normPrintedItems,
  printedTrace,
  traceChunks,
  wildcard,
} from "../_helpers/golden.ts"
import { traceNames } from "../_helpers/traces.ts"

/**
 * Where our codec must stop a stream with a typed error instead of producing
 * what the transcript shows: the frames a real daemon kills the session for
 * at the header check (the transcript's decoder is more lenient).
 */
const EXPECTED_ERRORS: Record<string, Record<string, ExpectedError>> = {
  "13-oversize-killed": {
    // 143921 bytes + 1 group = 143953 > 143152
    "1/c2d": { index: 3, reason: "Oversize", field: "data_len + 32 * num_groups", value: 143953 },
  },
  "14-boundary-crash": {
    // 143121 bytes + 1 group = 143153, one byte over the true maximum
    "1/c2d": { index: 3, reason: "Oversize", field: "data_len + 32 * num_groups", value: 143153 },
  },
  "23-raw-malformed-messages": {
    "6/c2d": { index: 2, reason: "Oversize", field: "num_groups", value: 101 },
    "7/c2d": { index: 2, reason: "Negative", field: "num_groups", value: -1 },
    "9/c2d": { index: 2, reason: "Negative", field: "data_len", value: -5 },
    // header only, num_groups 0, data_len 143953: refused without waiting for the body
    "10/c2d": { index: 2, reason: "Oversize", field: "data_len + 32 * num_groups", value: 143953 },
  },
}

const names = traceNames()

describe("golden traces", () => {
  it("traceNames finds all 28 scenarios", () => {
    expect(names.length).toBe(28)
    expect(names[0]).toBe("01-connect-basic")
    expect(names[27]).toBe("28-service-bit-edge-cases")
  })

  for (const name of names) {
    it(`FrameDecoder, handshake parsers and decodeServerMessage reproduce the transcript of ${name}`, () => {
      const printed = printedTrace(name)
      const chunks = traceChunks(name)
      const actual = decodeTrace(name)
      const seen = new Set<string>()
      let frames = 0
      for (const c of actual) {
        for (const dir of ["c2d", "d2c"] as const) {
          const key = streamKey(c.conn, dir)
          seen.add(key)
          let p = printed.get(key) ?? []
          if (chunks.get(key)?.cut === true) {
            // Trace 21: decoding stops at the first chunk cut short in the log.
            expect(p.some((i) => i.kind === "truncatedChunk")).toBe(true)
            p = p.filter((i) => i.kind !== "truncatedChunk")
          }
          const items = dir === "c2d" ? c.c2d : c.d2c
          frames += items.filter((i) => i.kind === "frame").length
          const want = normPrintedItems(p, dir, EXPECTED_ERRORS[name]?.[key])
          const got = normActualItems(items, p, c.clientVersion)
          expect(got, `${name} ${key}`).toEqual(want)
        }
      }
      // Every stream the transcript mentions was decoded.
      for (const key of printed.keys()) expect(seen.has(key), `${name} ${key}`).toBe(true)
      const printedMsgs = [...printed.values()].flat().filter((i) => i.kind === "msg").length
      const erroredMsgs = Object.keys(EXPECTED_ERRORS[name] ?? {}).filter((k) => {
        const e = EXPECTED_ERRORS[name][k]
        return printed.get(k)?.[e.index]?.kind === "msg"
      }).length
      expect(frames).toBe(printedMsgs - erroredMsgs)
    })
  }

  it("FrameDecoder reports the 48 trailing bytes of 19-spflooder conn2 d2c as Truncated", () => {
    const conn2 = decodeTrace("19-spflooder").find((c) => c.conn === 2)
    const last = conn2?.d2c.at(-1)
    expect(last?.kind).toBe("end")
    if (last?.kind !== "end") return
    expect(last.error?.reason).toBe("Truncated")
    expect(last.error?.value).toBe(48)
  })

  it("FrameDecoder yields nothing from the logged head of 21-slow-reader's first truncated chunk", () => {
    const c = traceChunks("21-slow-reader").get("1/d2c")
    expect(c?.cut).toBe(true)
    const head = c?.firstTruncated
    expect(head?.length).toBe(160)
    if (head === undefined) return
    const h = peekHeader(head, 0)
    expect(h.type).toBe(ServiceBits.REG_MEMB_MESS | ServiceBits.CAUSED_BY_JOIN)
    expect(h.numGroups).toBe(2)
    expect(h.dataLen).toBe(56)
    const dec = new FrameDecoder("toClient")
    dec.push(head)
    expect(dec.next()).toBeUndefined()
    const end = dec.end()
    expect(isProtocolError(end) && end.reason === "Truncated" && end.value === 160).toBe(true)
  })

  it("decodeTrace stops 13-oversize-killed's kill frame at its header", () => {
    const conn1 = decodeTrace("13-oversize-killed").find((c) => c.conn === 1)
    const err = conn1?.c2d.at(-1)
    expect(err?.kind).toBe("error")
  })

  it("wildcard lets a run with another group_id time and proc_id match trace 06's membership messages", () => {
    const printed = (printedTrace("06-join-leave-membership").get("1/d2c") ?? []).filter((i) => i.kind === "msg")
    const other = decodeTrace("06-join-leave-membership")[0].d2c.flatMap((i) => {
      if (i.kind !== "frame") return []
      const m = decodeServerMessage(i.frame)
      if (isProtocolError(m) || m._tag !== "Membership" || m.cause === "Network") return [i]
      // the same message from a daemon started at another time, with another proc id
      const bytes = encodeMembership(m.group, m.cause, m.members, { ...m.groupId, time: 1, procId: 7 }, m.changed ?? "")
      const d = new FrameDecoder("toClient")
      d.push(bytes)
      const f = d.next()
      return f === undefined || isProtocolError(f)
        ? []
        : [{ kind: "frame" as const, frame: f, message: decodeServerMessage(f) }]
    })
    expect(other.length).toBe(printed.length)
    const got = normActualItems(other, printed, undefined)
    const want = normPrintedItems(printed, "d2c", undefined)
    expect(got).not.toEqual(want)
    expect(wildcard(got, { groupIdTime: true })).not.toEqual(wildcard(want, { groupIdTime: true }))
    const w = { groupIdTime: true, procId: true }
    expect(wildcard(got, w)).toEqual(wildcard(want, w))
  })
})
