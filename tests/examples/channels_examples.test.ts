import { describe, expect, it } from "@effect/vitest"
import { Effect, Logger, LogLevel } from "effect"
import { main as chat } from "../../examples/chat_channels.ts"
import { main as requestReply } from "../../examples/request_reply_channels.ts"

const run = <A>(self: Effect.Effect<A>) =>
  self.pipe(Effect.timeout("15 seconds"), Effect.provide(Logger.minimumLogLevel(LogLevel.None)))

describe("channel examples", () => {
  it.live(
    "chat_channels.ts: every screen shows the three typed greetings in one order and skipped the malformed line",
    () =>
      Effect.gen(function* () {
        const shown = yield* run(chat)
        const expected = ["alice", "bob", "carol"].map((n) => `${n}: hello from ${n}`)
        for (const who of ["alice", "bob", "carol"]) {
          expect([...shown[who].shown].sort()).toEqual(expected)
          expect(shown[who].skipped).toBe(1)
        }
        expect(shown.bob.shown).toEqual(shown.alice.shown)
        expect(shown.carol.shown).toEqual(shown.alice.shown)
      }),
    20_000,
  )

  it.live(
    "request_reply_channels.ts: a typed quote, a declared error by its tag, a refused request, a timeout",
    () =>
      Effect.gen(function* () {
        expect(yield* run(requestReply)).toEqual([
          "5 tea cost 15 EUR",
          "caviar: nobody sells caviar",
          "-1 tea: refused before sending (Encode)",
          `weather: No reply from group "weather" within 200ms`,
        ])
      }),
    20_000,
  )
})
