/**
 * The connection handshake, byte for byte as a real Spread 5.0.1 daemon
 * answers it (protocol reference section 3).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import type { AuthContext, AuthMethod } from "../../src/daemon/mod.ts"
import { readCString } from "../../src/protocol/mod.ts"
import { RawClient, text } from "../_helpers/raw_client.ts"
import { eventually, quiet, sleep, startDaemon, tcp } from "./_fixtures.ts"

const T = 10_000
const hex = (b: Uint8Array | string): string =>
  typeof b === "string" ? b : Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("")
const connectBytes = (name: string, flags = 1, version: ReadonlyArray<number> = [5, 0, 1]): Uint8Array =>
  Uint8Array.from([...version, flags, name.length, ...text(name)])
const NULL_CHOICE = (() => {
  const b = new Uint8Array(90)
  b.set(text("NULL"))
  return b
})()

describe("Daemon handshake", () => {
  it.scopedLive(
    "Daemon answers a 5.0.1 client with the NULL auth list and an accept with the patch byte",
    () =>
      Effect.gen(function* () {
        const d = yield* startDaemon()
        const c = yield* RawClient.open(tcp(d))
        yield* c.write(connectBytes("alice"))
        expect(hex(yield* c.readBytes(6))).toBe("054e554c4c20") // 05 "NULL "
        yield* c.write(NULL_CHOICE)
        expect(hex(yield* c.readBytes(21))).toBe("0105000110" + hex(text("#alice#localhost")))
        expect(d.stats().sessions).toBe(1)
      }).pipe(quiet),
    T,
  )

  it.scopedLive(
    "Daemon accepts a 3.15 client without an auth exchange, with the patch byte",
    () =>
      Effect.gen(function* () {
        const d = yield* startDaemon()
        const c = yield* RawClient.open(tcp(d))
        yield* c.write(connectBytes("old315", 1, [3, 15, 0]))
        expect(hex(yield* c.readBytes(22))).toBe("0105000111" + hex(text("#old315#localhost")))
        c.startFrames()
        c.privateGroup = "#old315#localhost"
        yield* c.join("g")
        const m = yield* c.frame()
        expect(m.groups).toEqual(["#old315#localhost"])
      }).pipe(quiet),
    T,
  )

  it.scopedLive(
    "Daemon accepts a 3.14 client (two version bytes) with an accept without the patch byte",
    () =>
      Effect.gen(function* () {
        const d = yield* startDaemon()
        const c = yield* RawClient.open(tcp(d))
        yield* c.write(connectBytes("old314", 1, [3, 14]))
        expect(hex(yield* c.readBytes(21))).toBe("01050011" + hex(text("#old314#localhost")))
      }).pipe(quiet),
    T,
  )

  it.scopedLive("Daemon rejects clients below 3.1.0 with REJECT_VERSION and closes", () =>
    Effect.gen(function* () {
      const d = yield* startDaemon()
      for (const version of [[3, 0], [2, 9], [0, 0]]) {
        const c = yield* RawClient.open(tcp(d))
        yield* c.write(connectBytes("anci", 1, version))
        const r = yield* c.readUntilEof()
        expect({ version, bytes: hex(r.bytes), eof: r.eof }).toEqual({ version, bytes: "f9", eof: true })
      }
      expect(d.stats().connections).toBe(0)
    }).pipe(quiet), T)

  it.scopedLive(
    "Daemon rejects an illegal private name with REJECT_ILLEGAL_NAME in place of the auth list",
    () =>
      Effect.gen(function* () {
        const d = yield* startDaemon()
        const cases: ReadonlyArray<Uint8Array> = [
          connectBytes("bad#name"),
          connectBytes("bang!"),
          connectBytes("sp ace"),
          connectBytes("tilde\x7f"),
          connectBytes("abcdefghijk"), // 11 bytes
          Uint8Array.from([5, 0, 1, 1, 0xff]), // length -1
        ]
        for (const bytes of cases) {
          const c = yield* RawClient.open(tcp(d))
          yield* c.write(bytes)
          const r = yield* c.readUntilEof()
          expect({ sent: hex(bytes), got: hex(r.bytes), eof: r.eof }).toEqual({
            sent: hex(bytes),
            got: "fb",
            eof: true,
          })
        }
        // The longest legal name and the whole legal range are fine.
        const ok = yield* RawClient.open(tcp(d))
        expect((yield* ok.handshake({ name: "$~abcdefgh" }))._tag).toBe("Accepted")
      }).pipe(quiet),
    T,
  )

  it.scopedLive(
    "Daemon rejects a name in use with REJECT_NOT_UNIQUE, including one still authenticating",
    () =>
      Effect.gen(function* () {
        const d = yield* startDaemon()
        // `first` stops after the auth list: it holds the name, not yet accepted.
        const first = yield* RawClient.open(tcp(d))
        yield* first.write(connectBytes("dup"))
        expect(hex(yield* first.readBytes(6))).toBe("054e554c4c20")
        const second = yield* RawClient.open(tcp(d))
        yield* second.write(connectBytes("dup"))
        const r = yield* second.readUntilEof()
        expect({ got: hex(r.bytes), eof: r.eof }).toEqual({ got: "fa", eof: true })
        // Case matters.
        const other = yield* RawClient.open(tcp(d))
        expect((yield* other.handshake({ name: "DUP" }))._tag).toBe("Accepted")
        // `first` completes, then leaves; the name is free again.
        yield* first.write(NULL_CHOICE)
        expect(hex(yield* first.readBytes(19))).toBe("010500010e" + hex(text("#dup#localhost")))
        const third = yield* RawClient.open(tcp(d))
        expect((yield* third.handshake({ name: "dup" }))._tag).toBe("Rejected")
        yield* first.close
        yield* sleep(50)
        const fourth = yield* RawClient.open(tcp(d))
        expect(yield* fourth.handshake({ name: "dup" })).toEqual({
          _tag: "Accepted",
          privateGroup: "#dup#localhost",
          version: { major: 5, minor: 0, patch: 1 },
        })
      }).pipe(quiet),
    T,
  )

  it.scopedLive(
    "Daemon generates unique r<digits>-<digits> names of at most 9 characters for empty names",
    () =>
      Effect.gen(function* () {
        const d = yield* startDaemon()
        const names: Array<string> = []
        for (let i = 0; i < 20; i++) {
          const c = yield* RawClient.open(tcp(d))
          const r = yield* c.handshake({ name: "" })
          if (r._tag !== "Accepted") return yield* Effect.dieMessage(JSON.stringify(r))
          const m = /^#(r\d+-\d+)#localhost$/.exec(r.privateGroup)
          expect(m, r.privateGroup).not.toBeNull()
          expect(m?.[1].length ?? 99).toBeLessThanOrEqual(9)
          names.push(r.privateGroup)
        }
        expect(new Set(names).size).toBe(20)
      }).pipe(quiet),
    T,
  )

  it.scopedLive("Daemon names private groups #name#daemon after its configured name", () =>
    Effect.gen(function* () {
      const d = yield* startDaemon({ name: "node-7.example" })
      const a = yield* RawClient.connect(tcp(d), { name: "alice" })
      expect(a.privateGroup).toBe("#alice#node-7.example")
      yield* a.multicast({ service: "Agreed", groups: ["#alice#node-7.example"], data: text("me") })
      const f = yield* a.frame()
      expect([f.sender, f.groups]).toEqual(["#alice#node-7.example", ["#alice#node-7.example"]])
    }).pipe(quiet), T)

  it.scopedLive(
    "Daemon offers its configured auth methods and runs the one the client picks",
    () =>
      Effect.gen(function* () {
        const seen: Array<AuthContext> = []
        const token: AuthMethod = {
          name: "TOKEN",
          authenticate: (c) => Effect.sync(() => (seen.push(c), c.privateName.startsWith("ok"))),
        }
        const d = yield* startDaemon({
          authMethods: [{ name: "NULL", authenticate: () => Effect.succeed(true) }, token],
        })
        const list = yield* RawClient.open(tcp(d))
        yield* list.write(connectBytes("okay"))
        expect(hex(yield* list.readBytes(12))).toBe("0b" + hex(text("NULL TOKEN ")))
        const cases: ReadonlyArray<[string, ReadonlyArray<string>, string]> = [
          ["okay1", ["TOKEN"], "Accepted"],
          ["nope", ["TOKEN"], "Rejected"],
          ["nope2", ["NULL"], "Accepted"],
          ["foo", ["FOO"], "Rejected"],
          ["none", [], "Rejected"],
          ["both", ["NULL", "TOKEN"], "Rejected"],
          ["okboth", ["NULL", "TOKEN"], "Accepted"],
        ]
        for (const [name, authMethods, want] of cases) {
          const c = yield* RawClient.open(tcp(d))
          const r = yield* c.handshake({ name, authMethods })
          expect({ name, r: r._tag }).toEqual({ name, r: want })
          if (r._tag === "Rejected") {
            expect({ name, code: r.code, afterAuthList: r.afterAuthList }).toEqual({
              name,
              code: -9,
              afterAuthList: true,
            })
          }
        }
        expect(seen[0]).toMatchObject({ privateName: "okay1", transport: "tcp" })
        expect(seen[0].remote).toMatch(/^127\.0\.0\.1:\d+$/)
      }).pipe(quiet),
    T,
  )

  it.scopedLive("Daemon runs required auth methods whatever the client picks", () =>
    Effect.gen(function* () {
      const gate: AuthMethod = { name: "GATE", authenticate: (c) => Effect.succeed(c.privateName !== "evil") }
      const d = yield* startDaemon({
        authMethods: [{ name: "NULL", authenticate: () => Effect.succeed(true) }, gate],
        requiredAuthMethods: ["GATE"],
      })
      const good = yield* RawClient.open(tcp(d))
      expect((yield* good.handshake({ name: "good" }))._tag).toBe("Accepted")
      const evil = yield* RawClient.open(tcp(d))
      expect(yield* evil.handshake({ name: "evil" })).toEqual({ _tag: "Rejected", code: -9, afterAuthList: true })
    }).pipe(quiet), T)

  it.scopedLive(
    "Daemon sends REJECT_QUOTA as the only byte past maxSessions, before reading anything",
    () =>
      Effect.gen(function* () {
        const d = yield* startDaemon({ maxSessions: 2 })
        const a = yield* RawClient.connect(tcp(d), { name: "a" })
        yield* RawClient.connect(tcp(d), { name: "b" })
        const c = yield* RawClient.open(tcp(d))
        const r = yield* c.readUntilEof()
        expect({ got: hex(r.bytes), eof: r.eof }).toEqual({ got: "fd", eof: true })
        // A connection still shaking hands takes no place (maxHandshaking
        // bounds those): places go in the order handshakes finish, and one
        // that finishes with the places full gets REJECT_QUOTA after the
        // auth list, in place of the accept.
        yield* a.close
        expect(yield* eventually(() => d.stats().connections === 1)).toBe(true)
        const e = yield* RawClient.open(tcp(d))
        const f = yield* RawClient.open(tcp(d))
        expect(yield* eventually(() => d.stats().handshaking === 2)).toBe(true)
        expect((yield* e.handshake({ name: "e" }))._tag).toBe("Accepted")
        expect(yield* f.handshake({ name: "f" })).toEqual({ _tag: "Rejected", code: -3, afterAuthList: true })
        expect(d.stats().sessions).toBe(2)
      }).pipe(quiet),
    T,
  )

  it.scopedLive(
    "Daemon closes a client that sends nothing within the handshake timeout, silently",
    () =>
      Effect.gen(function* () {
        const d = yield* startDaemon({ handshakeTimeoutMs: 300 })
        const silent = yield* RawClient.open(tcp(d))
        const start = Date.now()
        const r = yield* silent.readUntilEof(3000)
        expect({ bytes: r.bytes.length, eof: r.eof }).toEqual({ bytes: 0, eof: true })
        expect(Date.now() - start).toBeGreaterThanOrEqual(250)
        // One that stalls after the auth list gets no accept either.
        const stall = yield* RawClient.open(tcp(d))
        yield* stall.write(connectBytes("stall"))
        const r2 = yield* stall.readUntilEof(3000)
        expect({ got: hex(r2.bytes), eof: r2.eof }).toEqual({ got: "054e554c4c20", eof: true })
        expect(d.stats().connections).toBe(0)
      }).pipe(quiet),
    T,
  )

  // That it waits 1000 ms for the connect message by default, as Spread,
  // is tested on TestClock in clock.test.ts.

  it.scopedLive(
    "Daemon refuses a connect message or auth choice split by a pause, with Spread's reject codes",
    () =>
      Effect.gen(function* () {
        const d = yield* startDaemon()
        const whole = connectBytes("splitx")
        const name = yield* RawClient.open(tcp(d))
        yield* name.write(whole.subarray(0, 8))
        const r1 = yield* name.readUntilEof()
        expect({ got: hex(r1.bytes), eof: r1.eof }).toEqual({ got: "fb", eof: true })
        const auth = yield* RawClient.open(tcp(d))
        yield* auth.write(connectBytes("authshort"))
        expect(hex(yield* auth.readBytes(6))).toBe("054e554c4c20")
        yield* auth.write(NULL_CHOICE.subarray(0, 30))
        const r2 = yield* auth.readUntilEof()
        expect({ got: hex(r2.bytes), eof: r2.eof }).toEqual({ got: "f7", eof: true })
        // Fewer bytes than the name length: a silent close, no reject.
        const head = yield* RawClient.open(tcp(d))
        yield* head.write(Uint8Array.of(5, 0, 1))
        const r3 = yield* head.readUntilEof()
        expect({ got: hex(r3.bytes), eof: r3.eof }).toEqual({ got: "", eof: true })
      }).pipe(quiet),
    T,
  )

  it.scopedLive(
    "Daemon accepts a connect message and auth choice that arrive in quick pieces",
    () =>
      Effect.gen(function* () {
        const d = yield* startDaemon()
        const c = yield* RawClient.open(tcp(d))
        const whole = connectBytes("pieces")
        yield* c.write(whole.subarray(0, 3))
        yield* sleep(5)
        yield* c.write(whole.subarray(3))
        expect(hex(yield* c.readBytes(6))).toBe("054e554c4c20")
        yield* c.write(NULL_CHOICE.subarray(0, 30))
        yield* sleep(5)
        yield* c.write(NULL_CHOICE.subarray(30))
        expect(hex(yield* c.readBytes(22))).toBe("0105000111" + hex(text("#pieces#localhost")))
      }).pipe(quiet),
    T,
  )

  it.scopedLive("Daemon starts reading messages that came right behind the auth choice", () =>
    Effect.gen(function* () {
      const d = yield* startDaemon()
      const c = yield* RawClient.open(tcp(d))
      yield* c.write(connectBytes("eager"))
      expect(hex(yield* c.readBytes(6))).toBe("054e554c4c20")
      // Auth choice, a join and a multicast in one write.
      const join = Uint8Array.from([
        0x80,
        0,
        1,
        0x80,
        ...padded("#eager#localhost"),
        1,
        0,
        0,
        0,
        0x80,
        0,
        0,
        0x80,
        0,
        0,
        0,
        0,
      ])
      const all = new Uint8Array(90 + join.length + 32)
      all.set(NULL_CHOICE)
      all.set(join, 90)
      all.set(padded("g"), 90 + join.length)
      yield* c.write(all)
      expect(hex(yield* c.readBytes(21))).toBe("0105000110" + hex(text("#eager#localhost")))
      c.startFrames()
      const m = yield* c.frame()
      expect([readCString(m.bytes, 4, 32), m.groups]).toEqual(["g", ["#eager#localhost"]])
    }).pipe(quiet), T)

  it.scopedLive(
    "Daemon gives a session without the membership flag no membership or self-leave message",
    () =>
      Effect.gen(function* () {
        const d = yield* startDaemon()
        const nomemb = yield* RawClient.connect(tcp(d), { name: "nomemb", membership: false })
        const alice = yield* RawClient.connect(tcp(d), { name: "alice" })
        yield* nomemb.join("g")
        yield* sleep(20)
        yield* alice.join("g")
        const joined = yield* alice.frame()
        expect(joined.groups).toEqual(["#alice#localhost", "#nomemb#localhost"])
        yield* alice.multicast({ service: "Agreed", groups: ["g"], data: text("data") })
        yield* nomemb.leave("g")
        yield* nomemb.multicast({ service: "Agreed", groups: ["#nomemb#localhost"], data: text("marker") })
        // nomemb: the data, then its own marker; nothing in between.
        const got = yield* nomemb.frames(2)
        expect(got.map((f) => [f.sender, new TextDecoder().decode(f.data)])).toEqual([
          ["#alice#localhost", "data"],
          ["#nomemb#localhost", "marker"],
        ])
        expect((yield* nomemb.next(200))._tag).toBe("Timeout")
        // alice saw the data and nomemb's leave.
        const [data, left] = yield* alice.frames(2)
        expect(new TextDecoder().decode(data.data)).toBe("data")
        expect([hex(left.bytes.subarray(0, 4)), left.groups]).toEqual(["80120080", ["#alice#localhost"]])
        // The connect flags byte 0x10 (priority 1, no membership) also means no membership.
        const prio = yield* RawClient.open(tcp(d))
        yield* prio.write(connectBytes("prio", 0x10))
        expect(hex(yield* prio.readBytes(6))).toBe("054e554c4c20")
        yield* prio.write(NULL_CHOICE)
        expect(hex(yield* prio.readBytes(20))).toBe("010500010f" + hex(text("#prio#localhost")))
        prio.startFrames()
        prio.privateGroup = "#prio#localhost"
        yield* prio.join("g")
        expect((yield* prio.next(200))._tag).toBe("Timeout")
        expect((yield* alice.frame()).groups).toEqual(["#alice#localhost", "#prio#localhost"])
      }).pipe(quiet),
    T,
  )
})

const padded = (s: string): Uint8Array => {
  const b = new Uint8Array(32)
  b.set(text(s))
  return b
}
