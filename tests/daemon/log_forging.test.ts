/**
 * Logs no client can forge: every client-chosen byte string that reaches a
 * daemon log line (private names, auth method names, the name field of a
 * frame, group names) goes through `quoted`, so each event is one line of
 * printable ASCII whatever the client sent.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Logger, LogLevel } from "effect"
import { encodeCommand, encodeMulticast, quoted } from "../../src/protocol/mod.ts"
import { RawClient } from "../_helpers/raw_client.ts"
import { eventually, startDaemon, tcp } from "./_fixtures.ts"

const T = 20_000

// Byte strings (one byte per code unit), as names arrive off the wire.
const bytes = (s: string): Array<number> => Array.from(s, (c) => c.charCodeAt(0))
const NEWLINE = "\nlevel=E" // a forged record
const ESCAPE = "\x1b[2J\x1b]0;" // clear screen, set title
const NOT_UTF8 = "\xff\xfe\xc3(\x80" // invalid UTF-8, and a C1 control
const HOSTILE = [NEWLINE, ESCAPE, NOT_UTF8] as const

const connectBytes = (name: string): Uint8Array => Uint8Array.from([5, 0, 1, 1, name.length, ...bytes(name)])
const authChoice = (method: string): Uint8Array => {
  const b = new Uint8Array(90)
  b.set(bytes(method))
  return b
}

// What Effect's default logger prints: `timestamp=… level=… fiber=#n message=…`.
const WELL_FORMED = /^timestamp=\S+ level=(DEBUG|INFO|WARN|ERROR) fiber=#\d+ message=("[\x20-\x7e]*"|[\x21-\x7e]+)$/

describe("quoted", () => {
  it("quoted escapes control bytes, non-ASCII units, quotes and backslashes", () => {
    expect(quoted('a\nb\r\t\x1b\x7f\x80\xff\u2028"\\z')).toBe(
      '"a\\nb\\r\\t\\x1b\\x7f\\x80\\xff\\u2028\\"\\\\z"',
    )
  })

  it("quoted caps the length and says how much it left out", () => {
    expect(quoted("x".repeat(100), 10)).toBe(`"${"x".repeat(10)}"...(+90)`)
    expect(quoted("abc")).toBe('"abc"')
  })
})

describe("Daemon logs", () => {
  it.scopedLive(
    "Daemon logs one well-formed line per event for newlines, ESC and invalid UTF-8 in every client field",
    () =>
      Effect.gen(function* () {
        const printed: Array<string> = []
        const logger = Logger.replace(Logger.defaultLogger, Logger.map(Logger.stringLogger, (s) => printed.push(s)))
        const d = yield* startDaemon().pipe(
          Effect.provide(logger),
          Effect.provide(Logger.minimumLogLevel(LogLevel.All)),
        )
        // Counts from now (when called, before the client acts), waits for
        // `n` more lines, and answers where the event's last line must be.
        const expectLines = (n: number, what: string) => {
          const want = printed.length + n
          return Effect.as(eventually(() => printed.length >= want), { want, what })
        }
        const counted: Array<{ want: number; what: string }> = []
        for (const hostile of HOSTILE) {
          // The private name in the connect message: one REJECT_ILLEGAL_NAME line.
          const a = yield* RawClient.open(tcp(d))
          const w1 = expectLines(1, `private name ${quoted(hostile)}`)
          yield* a.write(connectBytes(hostile))
          counted.push(yield* w1)
          yield* a.close

          // The auth method name in the auth choice: one REJECT_AUTH line.
          const b = yield* RawClient.open(tcp(d))
          yield* b.write(connectBytes("auth"))
          yield* b.readBytes(6)
          const w2 = expectLines(1, `auth method ${quoted(hostile)}`)
          yield* b.write(authChoice(hostile))
          counted.push(yield* w2)
          yield* b.close

          // A group name joined and multicast to, then the name field of a
          // frame: "open", then one "killed" line quoting the field.
          const w3 = expectLines(2, `private_group_name = ${quoted(`#x${hostile}#localhost`)}`)
          const c = yield* RawClient.connect(tcp(d), { name: "victim" })
          yield* c.join(hostile)
          yield* c.multicast({ service: "Agreed", groups: [hostile], data: Uint8Array.of(10, 27) })
          yield* c.write(encodeMulticast({
            privateGroup: `#x${hostile}#localhost`,
            service: "Agreed",
            groups: ["g"],
            data: new Uint8Array(0),
          }))
          counted.push(yield* w3)
          yield* c.awaitEof()
          yield* c.close

          // A leave naming the hostile group by a session that never joined
          // it, then a KILL: "open" and "ended" lines only.
          const w4 = expectLines(2, "ended: disconnected (KILL)")
          const e = yield* RawClient.connect(tcp(d), { name: "other" })
          yield* e.write(encodeCommand("Leave", e.privateGroup, hostile))
          yield* e.kill()
          counted.push(yield* w4)
          yield* e.awaitEof()
          yield* e.close
        }
        const text = printed.join("\n")
        const lines = text.split("\n")
        // Exactly one line per event: nothing split a record in two.
        expect(lines.length).toBe(counted.at(-1)?.want)
        for (const line of lines) expect(line).toMatch(WELL_FORMED)
        for (const { want, what } of counted) {
          const line = lines[want - 1]
          expect(line).toContain(what.replaceAll('"', '\\"'))
        }
        // Nothing but printable ASCII and the newlines between records.
        expect([...text].filter((c) => c !== "\n" && (c < " " || c > "~"))).toEqual([])
      }),
    T,
  )
})
