import { describe, expect, it } from "@effect/vitest"
import { Effect, Logger, LogLevel } from "effect"
import { main, OPENING } from "../../examples/replicated_inventory.ts"
import { startDaemon } from "../_helpers/fixtures.ts"

const TIMEOUT = 60_000
const EXAMPLE = new URL("../../examples/replicated_inventory.ts", import.meta.url).pathname

const soldOut = { stock: { ...OPENING.stock, tea: 0 }, sold: 50, refused: 40 }

describe("examples/replicated_inventory.ts", () => {
  it.live(
    "replicated_inventory.ts: three counters selling 90 teas of 50 agree: 50 sold, 40 refused, none oversold",
    () =>
      Effect.gen(function* () {
        const all = yield* main.pipe(
          Effect.timeout("20 seconds"),
          Effect.provide(Logger.minimumLogLevel(LogLevel.None)),
        )
        expect(all).toEqual([soldOut, soldOut, soldOut])
      }),
    TIMEOUT,
  )

  it.scopedLive(
    "replicated_inventory.ts: three counter processes on one daemon end with the same inventory",
    () =>
      Effect.gen(function* () {
        const daemon = yield* startDaemon({ unixSocket: false })
        const run = (name: string) =>
          Effect.promise(async () => {
            const out = await new Deno.Command(Deno.execPath(), {
              args: [
                "run",
                "-A",
                EXAMPLE,
                "--daemon",
                daemon.spreadName,
                "--name",
                name,
                "--sales",
                "30",
                "--counters",
                "3",
              ],
              stdout: "piped",
              stderr: "piped",
            }).output()
            const text = new TextDecoder().decode(out.stdout).trim()
            if (!out.success) return { name, error: new TextDecoder().decode(out.stderr) }
            return { name, inventory: JSON.parse(text.split("\n").at(-1) ?? "null") }
          })
        const results = yield* Effect.all([run("p1"), run("p2"), run("p3")], { concurrency: "unbounded" }).pipe(
          Effect.timeout("45 seconds"),
        )
        for (const r of results) expect(r).toEqual({ name: r.name, inventory: soldOut })
      }),
    TIMEOUT,
  )
})
