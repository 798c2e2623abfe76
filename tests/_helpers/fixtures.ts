/**
 * Fixtures every test area shares: an embedded daemon on a free port, a
 * config provider standing in for the environment, a logger that records
 * what is logged, and waits on real time.
 */
import { ConfigProvider, Effect, HashMap, Layer, Logger, LogLevel, type Scope } from "effect"
import * as Daemon from "../../src/daemon/mod.ts"

/** A daemon on 127.0.0.1 and a free port, named "localhost" unless told. */
export const startDaemon = (config: Daemon.DaemonConfig = {}): Effect.Effect<Daemon.Daemon, never, Scope.Scope> =>
  Daemon.make({ port: 0, name: "localhost", ...config }).pipe(Effect.orDie)

/** A config provider over `entries`, read as the environment would be (`SPREAD_DAEMON`, …). */
export const envConfig = (entries: Record<string, string>): Layer.Layer<never> =>
  Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(entries)), { pathDelim: "_" }))

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

/** Log lines at Warning or above. */
export const warnings = (lines: ReadonlyArray<LogLine>): Array<string> =>
  lines.filter((l) => LogLevel.greaterThanEqual(l.level, LogLevel.Warning)).map((l) => l.message)

/** Keeps log output out of the test report (tests that check logs capture them). */
export const quiet = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.provide(self, Logger.minimumLogLevel(LogLevel.None))

/** Sleeps `ms` of real time (tests on real sockets run on the live clock). */
export const sleep = (ms: number): Effect.Effect<void> => Effect.promise(() => new Promise((r) => setTimeout(r, ms)))

/** Retries `check` every 10 ms of real time until it holds or `timeoutMs` passes; answers the last result. */
export const eventually = (check: () => boolean, timeoutMs = 2000): Effect.Effect<boolean> =>
  Effect.promise(async () => {
    const deadline = Date.now() + timeoutMs
    while (!check()) {
      if (Date.now() > deadline) return false
      await new Promise((r) => setTimeout(r, 10))
    }
    return true
  })
