/**
 * The client side of every real trace a single daemon can answer, replayed
 * against our daemon: every answer must match the real daemon's, field by
 * field (see replay.ts for what is wildcarded).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { type ConnOutcome, replay } from "./replay.ts"
import { quiet, startDaemon, tcp } from "./_fixtures.ts"

const ORDINARY = [
  "01-connect-basic",
  "02-connect-variants",
  "03-connect-random-name",
  "04-reject-not-unique",
  "05-reject-illegal-name",
  "06-join-leave-membership",
  "07-non-membership-session",
  "08-service-types",
  "09-multigroup",
  "10-self-discard",
  "11-mess-type",
  "12-large-message",
  "15-disconnect",
  "16-abrupt-close",
  "17-buffer-too-short",
  "18-spuser",
  "19-spflooder",
]

const HOSTILE = [
  "22-raw-handshake-variants",
  "23-raw-malformed-messages",
  "24-raw-big-endian-client",
  "28-service-bit-edge-cases",
]

const check = (trace: string, outcomes: ReadonlyArray<ConnOutcome>): void => {
  expect(outcomes.length).toBeGreaterThan(0)
  for (const o of outcomes) {
    const label = `${trace} conn${o.conn}`
    if (o.prefixOnly) {
      expect(o.actual.length, label).toBeGreaterThanOrEqual(o.expected.length)
      expect(o.actual.slice(0, o.expected.length), label).toEqual(o.expected)
    } else {
      expect(o.actual, label).toEqual(o.expected)
    }
    if (o.expectEof) expect(o.gotEof, `${label} closed by the daemon`).toBe(true)
    if (o.generated !== undefined) {
      const m = /^#(r\d+-\d+)#localhost$/.exec(o.generated)
      expect(m?.[1].length ?? 99, `${label} generated name ${o.generated}`).toBeLessThanOrEqual(9)
    }
  }
}

describe("Daemon against the real traces", () => {
  for (const trace of [...ORDINARY, ...HOSTILE]) {
    it.scopedLive(`Daemon answers the client side of ${trace} as the real daemon did`, () =>
      Effect.gen(function* () {
        const d = yield* startDaemon()
        const outcomes = yield* replay(trace, { address: () => tcp(d) })
        check(trace, outcomes)
      }).pipe(quiet))
  }

  it.scopedLive("Daemon answers the client side of 20-unix-socket over its Unix socket", () =>
    Effect.gen(function* () {
      const path = `/tmp/spreadfx-test-${Deno.pid}-${Math.floor(Math.random() * 1e9)}`
      const d = yield* startDaemon({ unixSocket: path })
      expect(d.unixPath).toBe(path)
      const outcomes = yield* replay("20-unix-socket", { address: () => ({ _tag: "Unix", path }) })
      check("20-unix-socket", outcomes)
    }).pipe(quiet))
})
