/**
 * A daemon in its own process for tests: `deno run -A daemon_main.ts
 * '<DaemonConfig as JSON>'`. Prints `listening on <port>@<host>` on stdout,
 * then logs everything (Debug and up) to stdout, one line per record, until
 * killed. No Unix socket unless the config asks (the process is killed, so
 * it could not remove the file).
 */
import { Console, Effect, Logger, LogLevel } from "effect"
import * as Daemon from "../../src/daemon/mod.ts"

const config: Daemon.DaemonConfig = JSON.parse(Deno.args[0] ?? "{}")

Effect.runFork(
  Effect.scoped(Effect.gen(function* () {
    const d = yield* Daemon.make({ port: 0, name: "localhost", unixSocket: false, ...config })
    yield* Console.log(`listening on ${d.port}@${d.host}`)
    return yield* Effect.never
  })).pipe(Logger.withMinimumLogLevel(LogLevel.Debug)),
)
