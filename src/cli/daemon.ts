/**
 * `deno task daemon`: runs the embedded Spread daemon in the foreground.
 *
 * ```sh
 * deno run --allow-net --allow-read --allow-write --allow-env src/cli/daemon.ts --port 4803
 * ```
 *
 * Like Spread, it listens on TCP and on the Unix socket `/tmp/<port>`
 * (`--no-unix` turns that off, `--unix PATH` moves it). SIGINT and SIGTERM
 * interrupt the daemon: every session is closed, the sockets are released,
 * the Unix socket file is removed, and the process exits 0. Bad flags exit 2;
 * a daemon that cannot start (port in use) exits 1.
 *
 * @module
 */
import { Console, Effect, Logger, LogLevel } from "effect"
import * as Daemon from "../daemon/mod.ts"
import { runTool } from "./run.ts"

/**
 * The usage text printed by `--help` and after a bad flag.
 *
 * @since 0.1.0
 * @category cli
 */
export const usage = `Usage: deno task daemon [options]

Runs a Spread-compatible daemon in the foreground until SIGINT or SIGTERM.

Options:
  --port N                  TCP port (default 4803; 0 picks a free one)
  --host HOST               TCP interface (default 127.0.0.1)
  --unix [PATH]             Unix socket at PATH, or /tmp/<port> without PATH (the default)
  --no-unix                 no Unix socket
  --name NAME               daemon name in private groups #user#NAME (default localhost)
  --max-sessions N          sessions before REJECT_QUOTA (default 997)
  --max-group-members N     members of one group before a join is rejected (default 3122)
  --max-session-messages N  frames queued for one session before it is cut off (default 1000)
  --max-session-bytes N     bytes queued for one session before it is cut off (default 67108864)
  --log-level LEVEL         debug, info, warning or error (default info)
  -h, --help                print this text and exit`

/**
 * What the command line asks for.
 *
 * @since 0.1.0
 * @category cli
 */
export type CliCommand =
  | { readonly _tag: "Run"; readonly config: Daemon.DaemonConfig; readonly logLevel: LogLevel.LogLevel }
  | { readonly _tag: "Help" }
  | { readonly _tag: "Invalid"; readonly message: string }

const LEVELS: Readonly<Record<string, LogLevel.LogLevel>> = {
  debug: LogLevel.Debug,
  info: LogLevel.Info,
  warning: LogLevel.Warning,
  error: LogLevel.Error,
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] }

/**
 * Parses the command line (`Deno.args`). Pure: it neither prints nor exits.
 *
 * @since 0.1.0
 * @category cli
 */
export const parseArgs = (args: ReadonlyArray<string>): CliCommand => {
  const config: Mutable<Daemon.DaemonConfig> = { unixSocket: true }
  let logLevel: LogLevel.LogLevel = LogLevel.Info
  const invalid = (message: string): CliCommand => ({ _tag: "Invalid", message })
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]
    const eq = arg.startsWith("--") ? arg.indexOf("=") : -1
    const flag = eq < 0 ? arg : arg.slice(0, eq)
    const inline = eq < 0 ? undefined : arg.slice(eq + 1)
    const value = (): string | undefined => {
      if (inline !== undefined) return inline
      const next = args[i + 1]
      if (next === undefined || next.startsWith("--")) return undefined
      i++
      return next
    }
    const integer = (min: number, max: number): number | string => {
      const v = value()
      if (v === undefined) return `${flag} needs a value`
      if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) {
        return `${flag} takes an integer from ${min} to ${max}, not "${v}"`
      }
      return Number(v)
    }
    switch (flag) {
      case "-h":
      case "--help":
        return { _tag: "Help" }
      case "--port":
      case "--max-sessions":
      case "--max-group-members":
      case "--max-session-messages":
      case "--max-session-bytes": {
        const n = flag === "--port" ? integer(0, 65535) : integer(1, Number.MAX_SAFE_INTEGER)
        if (typeof n === "string") return invalid(n)
        if (flag === "--port") config.port = n
        else if (flag === "--max-sessions") config.maxSessions = n
        else if (flag === "--max-group-members") config.maxGroupMembers = n
        else if (flag === "--max-session-messages") config.maxSessionMessages = n
        else config.maxSessionBytes = n
        break
      }
      case "--host":
      case "--name":
      case "--log-level": {
        const v = value()
        if (v === undefined || v.length === 0) return invalid(`${flag} needs a value`)
        if (flag === "--host") config.host = v
        else if (flag === "--name") config.name = v
        else {
          const level = LEVELS[v]
          if (level === undefined) return invalid(`--log-level takes debug, info, warning or error, not "${v}"`)
          logLevel = level
        }
        break
      }
      case "--unix": {
        const v = value()
        if (v !== undefined && v.length === 0) return invalid("--unix= needs a path")
        config.unixSocket = v ?? true
        break
      }
      case "--no-unix":
        if (inline !== undefined) return invalid("--no-unix takes no value")
        config.unixSocket = false
        break
      default:
        return invalid(arg.startsWith("-") ? `unknown option "${arg}"` : `unexpected argument "${arg}"`)
    }
  }
  return { _tag: "Run", config, logLevel }
}

/**
 * The daemon until interrupted, with its start line on stdout.
 *
 * @since 0.1.0
 * @category cli
 */
export const program = (
  config: Daemon.DaemonConfig,
  logLevel: LogLevel.LogLevel,
): Effect.Effect<never, Daemon.DaemonError> =>
  Effect.scoped(Effect.gen(function* () {
    const d = yield* Daemon.make(config)
    const unix = d.unixPath === undefined ? "" : ` and ${d.unixPath}`
    yield* Console.log(`spreadfx daemon ${d.name} listening on ${d.port}@${d.host}${unix}`)
    return yield* Effect.never
  })).pipe(Effect.provide(Logger.minimumLogLevel(logLevel)))

/**
 * The command: its exit code is 0 after SIGINT or SIGTERM, 2 for a bad flag
 * or configuration, 1 when it cannot listen.
 */
const main = (
  argv: ReadonlyArray<string>,
): { readonly run: Effect.Effect<number>; readonly logLevel: LogLevel.LogLevel } => {
  const cmd = parseArgs(argv)
  switch (cmd._tag) {
    case "Help":
      return { run: Effect.as(Console.log(usage), 0), logLevel: LogLevel.Info }
    case "Invalid":
      return {
        run: Effect.as(Console.error(`spreadfx daemon: ${cmd.message}\n\n${usage}`), 2),
        logLevel: LogLevel.Info,
      }
    case "Run":
      return {
        run: program(cmd.config, cmd.logLevel).pipe(
          Effect.catchAll((e) =>
            Effect.as(Console.error(`spreadfx daemon: ${e.message}`), e.reason === "InvalidConfig" ? 2 : 1)
          ),
        ),
        logLevel: cmd.logLevel,
      }
  }
}

if (import.meta.main) {
  const { logLevel, run } = main(Deno.args)
  runTool(run, { sigint: 0, sigterm: 0 }, logLevel)
}
