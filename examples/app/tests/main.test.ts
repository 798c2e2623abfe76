/**
 * main.ts as a process: configured from its environment, it answers quotes
 * until SIGTERM or SIGINT, then disconnects and exits 0.
 */
import { expect, layer } from "@effect/vitest"
import { Effect, Schedule } from "effect"
import { layerDaemon, SpreadDaemon } from "@spreadfx/spreadfx/testing"

const MAIN = new URL("../main.ts", import.meta.url).pathname

/** Starts main.ts against `daemon`, waits for its ready line, sends `signal`, answers its exit code and output. */
const runUntilSignal = (daemon: string, signal: "SIGTERM" | "SIGINT") =>
  Effect.promise(async () => {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-net", "--allow-read", "--allow-write", "--allow-env", MAIN],
      env: { SPREAD_DAEMON: daemon, SPREAD_NAME: "replica", NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).spawn()
    let out = ""
    const decoder = new TextDecoder()
    const pump = (async () => {
      for await (const chunk of child.stdout) out += decoder.decode(chunk, { stream: true })
    })()
    const errors = new Response(child.stderr).text()
    const until = Date.now() + 10_000
    while (!out.includes("pricing replica ready") && Date.now() < until) await new Promise((r) => setTimeout(r, 20))
    const ready = out.includes("pricing replica ready")
    child.kill(ready ? signal : "SIGKILL")
    const status = await child.status
    await pump
    return { ready, code: status.code, out, err: await errors }
  })

layer(layerDaemon(), { excludeTestServices: true })("main.ts", (it) => {
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    it.effect(`${signal} ends the replica with exit 0 and its session closed`, () =>
      Effect.gen(function* () {
        const daemon = yield* SpreadDaemon
        const run = yield* runUntilSignal(daemon.spreadName, signal)
        expect(run.err).toBe("")
        expect(run.ready).toBe(true)
        expect(run.code).toBe(0)
        // The daemon saw the session end (the client disconnected as it stopped).
        const sessions = yield* Effect.sync(() => daemon.stats().sessions).pipe(
          Effect.repeat({ until: (n) => n === 0, schedule: Schedule.spaced("10 millis"), times: 200 }),
        )
        expect(sessions).toBe(0)
      }), 20_000)
  }
})
