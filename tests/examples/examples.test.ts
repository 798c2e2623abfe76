import { describe, expect, it } from "@effect/vitest"
import { Effect, Logger, LogLevel } from "effect"
import { main as chat } from "../../examples/chat.ts"
import { main as reconnect } from "../../examples/reconnect.ts"
import { main as requestReply } from "../../examples/request_reply.ts"
import { main as workQueue } from "../../examples/work_queue.ts"

const TIMEOUT = 20_000
const run = <A>(self: Effect.Effect<A>) =>
  self.pipe(Effect.timeout("15 seconds"), Effect.provide(Logger.minimumLogLevel(LogLevel.None)))

describe("examples", () => {
  it.live(
    "chat.ts: every screen, and Alice's archive beside her screen, shows all three greetings in one order",
    () =>
      Effect.gen(function* () {
        const shown = yield* run(chat)
        const expected = ["alice", "bob", "carol"].map((n) => `#${n}#localhost: hello from ${n}`)
        for (const who of ["alice", "bob", "carol", "alice's archive"]) {
          expect([...(shown[who] ?? [])].sort()).toEqual(expected)
        }
        // One total order: every screen shows the greetings in the same order.
        expect(shown.bob).toEqual(shown.alice)
        expect(shown.carol).toEqual(shown.alice)
        expect(shown["alice's archive"]).toEqual(shown.alice)
      }),
    TIMEOUT,
  )

  it.live(
    "request_reply.ts: a quote, both replicas' quotes, an error reply and a timeout",
    () =>
      Effect.gen(function* () {
        expect(yield* run(requestReply)).toEqual([
          "5 tea cost 15",
          "2 coffee: east says 8, west says 8",
          "caviar: nobody sells caviar",
          `weather: No reply from group "weather" within 200ms`,
        ])
      }),
    TIMEOUT,
  )

  it.live(
    "work_queue.ts: each job is done exactly once, by a member of the view it arrived in",
    () =>
      Effect.gen(function* () {
        const { phase1, phase2 } = yield* run(workQueue)
        expect([...phase1.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: 15 }, (_, i) => i))
        expect([...phase2.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: 15 }, (_, i) => i + 15))
        for (const done of [phase1, phase2]) for (const workers of done.values()) expect(workers.length).toBe(1)
        const workersOf = (done: ReadonlyMap<number, ReadonlyArray<string>>) => new Set([...done.values()].flat())
        expect([...workersOf(phase1)].sort()).toEqual(["w1", "w2", "w3"])
        expect([...workersOf(phase2)].sort()).toEqual(["w1", "w2"])
      }),
    TIMEOUT,
  )

  it.live(
    "reconnect.ts: the subscription goes on across a daemon restart, with a gap mark between the old and the new",
    () =>
      Effect.gen(function* () {
        const shown = yield* run(reconnect)
        expect(shown.filter((l) => !l.startsWith("event:"))).toEqual([
          "news: all quiet",
          "-- gap: reconnected as #listener#localhost, rejoined news; news may be missing --",
          "news: the daemon is back",
        ])
        const events = shown.filter((l) => l.startsWith("event:"))
        expect(events).toHaveLength(2)
        expect(events[0]).toBe("event: disconnected (ConnectionClosed)")
        // The first attempt may come before the new daemon listens.
        expect(events[1]).toMatch(/^event: reconnected after \d+ attempt\(s\), rejoined news$/)
      }),
    TIMEOUT,
  )
})
