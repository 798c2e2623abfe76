/**
 * Shared fixtures of the daemon tests: a daemon on a free port, its
 * addresses, and a logger that records what the daemon logs.
 */
import { Effect, HashMap, Logger, LogLevel, type Scope } from "effect"
import * as Daemon from "../../src/daemon/mod.ts"
import { decodeServerMessage } from "../../src/protocol/mod.ts"
import type { RawClient } from "../_helpers/raw_client.ts"
import type { Address } from "../../src/transport/address.ts"

/** A daemon on 127.0.0.1 and a free port, named "localhost" unless told. */
export const startDaemon = (config: Daemon.DaemonConfig = {}): Effect.Effect<Daemon.Daemon, never, Scope.Scope> =>
  Daemon.make({ port: 0, name: "localhost", ...config }).pipe(Effect.orDie)

/** The daemon's TCP address. */
export const tcp = (d: Daemon.Daemon): Address => ({ _tag: "Tcp", hostname: d.host, port: d.port })

/** The daemon's Unix socket address (dies without one). */
export const unix = (d: Daemon.Daemon): Address => {
  if (d.unixPath === undefined) throw new Error("the daemon has no Unix socket")
  return { _tag: "Unix", path: d.unixPath }
}

/** One recorded log line. */
export interface LogLine {
  readonly level: LogLevel.LogLevel
  readonly message: string
  readonly annotations: Readonly<Record<string, unknown>>
}

/** A logger that appends every line to `lines` (and prints nothing). */
export const captureLogs = (lines: Array<LogLine>) =>
  Logger.replace(
    Logger.defaultLogger,
    Logger.make(({ annotations, logLevel, message }) => {
      lines.push({
        level: logLevel,
        message: Array.isArray(message) ? message.map(String).join(" ") : String(message),
        annotations: Object.fromEntries(HashMap.toEntries(annotations)),
      })
    }),
  )

/** Keeps the daemon's log lines out of the test output (tests that check logs capture them). */
export const quiet = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.provide(self, Logger.minimumLogLevel(LogLevel.None))

/** Sleeps `ms` of real time. */
export const sleep = (ms: number): Effect.Effect<void> => Effect.promise(() => new Promise((r) => setTimeout(r, ms)))

/** Retries `check` every 10 ms until it holds or `timeoutMs` passes; answers the last result. */
export const eventually = (check: () => boolean, timeoutMs = 2000): Effect.Effect<boolean> =>
  Effect.promise(async () => {
    const deadline = Date.now() + timeoutMs
    while (!check()) {
      if (Date.now() > deadline) return false
      await new Promise((r) => setTimeout(r, 10))
    }
    return true
  })

/** Joins and waits for the joiner's own membership message (so the join is sequenced). */
export const joinNow = (c: RawClient, group: string): Effect.Effect<void> =>
  Effect.gen(function* () {
    yield* c.join(group)
    for (;;) {
      const m = decodeServerMessage(yield* c.frame())
      if (m._tag === "Membership" && m.group === group && m.changed === c.privateGroup) return
    }
  })

export { LogLevel }
