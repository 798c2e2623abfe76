/**
 * Slow-reader isolation: a session that does not read is cut off at its
 * limit, and nobody else loses anything (protocol reference 8.4). A cut-off
 * session writes nothing more but reads on until its client is quiet, so
 * what it sent is sequenced before its disconnect.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { decodeServerMessage, encodeMulticast, type MembershipMessage } from "../../src/protocol/mod.ts"
import { concat, RawClient } from "../_helpers/raw_client.ts"
import { captureLogs, eventually, joinNow, LogLevel, type LogLine, sleep, startDaemon, tcp } from "./_fixtures.ts"

const T = 10_000

interface Tally {
  data: number
  /** Membership messages, in order, with the data count when each arrived. */
  readonly notices: Array<{ readonly at: number; readonly m: MembershipMessage }>
  done: boolean
}

/** Counts what `c` receives until EOF or `stop()`. */
const tally = (c: RawClient, t: Tally, stop: () => boolean) =>
  Effect.gen(function* () {
    while (!stop()) {
      const r = yield* c.next(50)
      if (r._tag === "Eof") break
      if (r._tag === "Timeout") continue
      const m = decodeServerMessage(r.frame)
      if (m._tag === "Regular") t.data++
      else if (m._tag === "Membership") t.notices.push({ at: t.data, m })
    }
    t.done = true
  })

/**
 * Floods `group` from `writer` with `size`-byte messages, at most `window`
 * ahead of `reader`, until `enough(sent)`; answers the number sent.
 */
const flood = (
  writer: RawClient,
  group: string,
  size: number,
  reader: Tally,
  enough: (sent: number) => boolean,
) =>
  Effect.gen(function* () {
    const one = encodeMulticast({
      privateGroup: writer.privateGroup,
      service: "Agreed",
      groups: [group],
      data: new Uint8Array(size).fill(0x61),
    })
    const batch = concat(new Array<Uint8Array>(50).fill(one))
    let sent = 0
    while (!enough(sent)) {
      if (sent - reader.data >= 200) {
        yield* sleep(1)
        continue
      }
      yield* writer.write(batch)
      sent += 50
    }
    return sent
  })

describe("Daemon slow readers", () => {
  it.scopedLive(
    "Daemon cuts off a member that never reads at maxSessionMessages; the others get every message and its disconnect",
    () => {
      const lines: Array<LogLine> = []
      return Effect.gen(function* () {
        const d = yield* startDaemon({ maxSessionMessages: 100 })
        const sloth = yield* RawClient.connect(tcp(d), { name: "sloth" })
        const reader = yield* RawClient.connect(tcp(d), { name: "reader" })
        const writer = yield* RawClient.connect(tcp(d), { name: "writer" })
        yield* joinNow(sloth, "flood")
        yield* joinNow(reader, "flood")
        const t: Tally = { data: 0, notices: [], done: false }
        let sentTotal = -1
        const counting = yield* Effect.fork(
          tally(reader, t, () => sentTotal >= 0 && t.data >= sentTotal && t.notices.length > 0),
        )
        // 1000-byte messages until the sloth is cut off (the kernel buffers
        // take several MB first), then 500 more.
        let cutAt = -1
        const sent = yield* flood(writer, "flood", 1000, t, (n) => {
          if (cutAt < 0 && d.stats().cutOff > 0) cutAt = n
          return (cutAt >= 0 && n >= cutAt + 500) || n >= 60_000
        })
        sentTotal = sent
        yield* Fiber.join(counting)
        expect(cutAt).toBeGreaterThan(0)
        expect(t.data).toBe(sent)
        expect(d.stats().cutOff).toBe(1)
        // The reader got one CAUSED_BY_DISCONNECT for the sloth.
        const gone = t.notices.filter((n) => n.m.cause === "Disconnect")
        expect(gone.map((n) => [n.m.changed, n.m.members])).toEqual([["#sloth#localhost", ["#reader#localhost"]]])
        expect(d.members("flood")).toEqual(["#reader#localhost"])
        // The sloth's stream ends (after what the kernel had buffered).
        expect(yield* sloth.awaitEof(5000)).toBe(true)
        // One warning names the session and the reason.
        expect(yield* eventually(() => lines.some((l) => l.message.includes("#sloth#localhost")))).toBe(true)
        const warnings = lines.filter((l) => l.level === LogLevel.Warning)
        expect(warnings.length).toBe(1)
        expect(warnings[0].message).toMatch(/^Session #sloth#localhost cut off: .*slow reader/)
      }).pipe(Effect.provide(captureLogs(lines)))
    },
    T,
  )

  it.scopedLive("Daemon cuts off a member that never reads at maxSessionBytes", () =>
    Effect.gen(function* () {
      const d = yield* startDaemon({ maxSessionMessages: 1_000_000, maxSessionBytes: 256 * 1024 })
      const sloth = yield* RawClient.connect(tcp(d), { name: "sloth" })
      const reader = yield* RawClient.connect(tcp(d), { name: "reader" })
      const writer = yield* RawClient.connect(tcp(d), { name: "writer" })
      yield* joinNow(sloth, "flood")
      yield* joinNow(reader, "flood")
      const t: Tally = { data: 0, notices: [], done: false }
      let sentTotal = -1
      const counting = yield* Effect.fork(
        tally(reader, t, () => sentTotal >= 0 && t.data >= sentTotal && t.notices.length > 0),
      )
      let cutAt = -1
      sentTotal = yield* flood(writer, "flood", 4000, t, (n) => {
        if (cutAt < 0 && d.stats().cutOff > 0) cutAt = n
        return (cutAt >= 0 && n >= cutAt + 100) || n >= 30_000
      })
      yield* Fiber.join(counting)
      expect(cutAt).toBeGreaterThan(0)
      expect(t.data).toBe(sentTotal)
      expect(d.stats().outboxPeak).toBeLessThanOrEqual(Math.ceil(256 * 1024 / (4000 + 80)))
      expect(t.notices.filter((n) => n.m.cause === "Disconnect").map((n) => n.m.changed)).toEqual([
        "#sloth#localhost",
      ])
    }).pipe(Effect.provide(captureLogs([]))), T)

  it.scopedLive(
    "Daemon sequences what a cut-off member sends after its cut-off, before its disconnect",
    () =>
      Effect.gen(function* () {
        const d = yield* startDaemon({ maxSessionMessages: 20, maxSessionBytes: 64 * 1024 })
        const sloth = yield* RawClient.connect(tcp(d), { name: "sloth" })
        const reader = yield* RawClient.connect(tcp(d), { name: "reader" })
        yield* joinNow(sloth, "flood")
        yield* joinNow(reader, "flood")
        // The reader floods until the sloth (which reads nothing) is cut off.
        const one = encodeMulticast({
          privateGroup: reader.privateGroup,
          service: "Agreed",
          groups: ["flood"],
          data: new Uint8Array(4000),
        })
        let sent = 0
        const draining = yield* Effect.fork(Effect.gen(function* () {
          let got = 0
          const notices: Array<string> = []
          for (;;) {
            const r = yield* reader.next(3000)
            if (r._tag !== "Frame") return { got, notices, last: "" }
            const m = decodeServerMessage(r.frame)
            if (m._tag === "Regular" && m.sender === reader.privateGroup) got++
            else if (m._tag === "Regular") notices.push(`from ${m.sender}: ${new TextDecoder().decode(m.data)}`)
            else if (m._tag === "Membership" && m.cause === "Disconnect") {
              notices.push(`disconnect ${m.changed}`)
              return { got, notices, last: m.changed }
            }
          }
        }))
        while (d.stats().cutOff === 0 && sent < 20_000) {
          yield* reader.write(concat(new Array<Uint8Array>(10).fill(one)))
          sent += 10
          yield* sleep(1)
        }
        expect(d.stats().cutOff).toBe(1)
        // Cut off, the sloth still speaks: three messages, then it goes quiet.
        for (const word of ["one", "two", "three"]) {
          yield* sloth.multicast({ service: "Agreed", groups: ["flood"], data: new TextEncoder().encode(word) })
        }
        const r = yield* Fiber.join(draining)
        expect(r.notices).toEqual([
          "from #sloth#localhost: one",
          "from #sloth#localhost: two",
          "from #sloth#localhost: three",
          "disconnect #sloth#localhost",
        ])
        expect(r.got).toBe(sent)
        expect(d.members("flood")).toEqual(["#reader#localhost"])
      }).pipe(Effect.provide(captureLogs([]))),
    T,
  )

  it.scopedLive(
    "Daemon never cuts off a reader that keeps up, however many frames one burst queues",
    () =>
      Effect.gen(function* () {
        const d = yield* startDaemon({ maxSessionMessages: 10 })
        const a = yield* RawClient.connect(tcp(d), { name: "a" })
        const b = yield* RawClient.connect(tcp(d), { name: "b" })
        yield* joinNow(a, "burst")
        yield* joinNow(b, "burst")
        yield* a.frame() // b's join
        // 5000 small messages in one write: the daemon reads them in a few
        // large chunks and queues hundreds of frames per reader at once.
        const one = encodeMulticast({
          privateGroup: a.privateGroup,
          service: "Fifo",
          groups: ["burst"],
          data: new Uint8Array(20),
        })
        yield* a.write(concat(new Array<Uint8Array>(5000).fill(one)))
        const got = yield* Effect.all([a.frames(5000), b.frames(5000)], { concurrency: 2 })
        expect(got.map((fs) => fs.length)).toEqual([5000, 5000])
        expect(d.stats().cutOff).toBe(0)
        expect(d.stats().outboxPeak).toBeGreaterThan(10)
      }).pipe(Effect.provide(captureLogs([]))),
    T,
  )
})
