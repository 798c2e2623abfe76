/**
 * `replicated` against a real Spread 4/5 daemon. Runs when SPREAD_DAEMON
 * names one (e.g. `SPREAD_DAEMON=4804@127.0.0.1`); skipped, visibly,
 * otherwise.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Fiber, Schema, Stream } from "effect"
import { connect, replicated } from "../../src/client/mod.ts"

const DAEMON = Deno.env.get("SPREAD_DAEMON")
const TIMEOUT = 60_000
// The daemon may be shared: every run uses its own group.
const group = `replica-${Math.random().toString(36).slice(2, 8)}`

const Log = Schema.Array(Schema.String)
const options = {
  group,
  value: Log,
  operation: Schema.String,
  initial: [] as ReadonlyArray<string>,
  apply: (log: ReadonlyArray<string>, line: string) => [...log, line],
  transferTimeout: "10 seconds",
} as const

const until = (changes: Stream.Stream<ReadonlyArray<string>, unknown>, n: number) =>
  changes.pipe(
    Stream.filter((v) => v.length >= n),
    Stream.take(1),
    Stream.runCollect,
    Effect.map((c) => Chunk.unsafeHead(c)),
    Effect.timeout("20 seconds"),
  )

describe.skipIf(DAEMON === undefined)(
  DAEMON === undefined
    ? "replicated interop (skipped: set SPREAD_DAEMON=port@host)"
    : `replicated interop with the daemon at ${DAEMON}`,
  () => {
    const daemon = DAEMON ?? ""
    it.scopedLive(
      "replicated: three members and a late joiner under load hold the same log, each line once (real Spread)",
      () =>
        Effect.gen(function* () {
          const conns = yield* Effect.forEach([0, 1, 2, 3], () => connect({ daemon }))
          const writers = yield* Effect.forEach(conns.slice(0, 3), (c) => replicated(c, options))
          const N = 200
          const load = yield* Effect.forEach(writers, (r, i) =>
            Effect.fork(Effect.forEach(
              Array.from({ length: N }, (_, k) => k),
              (k) => r.update(`${i}:${k}`),
              { discard: true },
            )))
          yield* until(writers[0].changes, 50)
          const joiner = yield* replicated(conns[3], options)
          yield* Effect.forEach(load, Fiber.join, { discard: true })
          const logs = yield* Effect.forEach([...writers, joiner], (r) => until(r.changes, 3 * N))
          for (const l of logs) expect(l).toEqual(logs[0])
          expect(new Set(logs[0]).size).toBe(3 * N)
          expect(logs[0].length).toBe(3 * N)
        }),
      TIMEOUT,
    )
  },
)
