/**
 * The daemon process of bench/idle_sessions.ts: an embedded daemon (flags
 * as JSON in the first argument) that prints `listening on <port>@<host>`,
 * then answers each line on stdin with its `Deno.memoryUsage()` as JSON,
 * after a full garbage collection when run with `--v8-flags=--expose-gc`.
 *
 * @module
 */
import { Effect, Logger, LogLevel } from "effect"
import * as Daemon from "../src/daemon/mod.ts"

const config: Daemon.DaemonConfig = JSON.parse(Deno.args[0] ?? "{}")
const gc = (globalThis as { gc?: () => void }).gc

Effect.runFork(
  Effect.scoped(Effect.gen(function* () {
    const d = yield* Daemon.make({ port: 0, unixSocket: false, ...config })
    console.log(`listening on ${d.port}@${d.host}`)
    const lines = Deno.stdin.readable.pipeThrough(new TextDecoderStream())
    yield* Effect.promise(async () => {
      for await (const _ of lines) {
        gc?.()
        console.log(JSON.stringify({ ...Deno.memoryUsage(), sessions: d.stats().sessions }))
      }
    })
  })).pipe(Logger.withMinimumLogLevel(LogLevel.Warning)),
)
