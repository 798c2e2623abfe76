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
import { type FlagSpec, type Parsed, parseFlags, usage, UsageError, usageError } from "./args.ts"
import { RELAY_DAEMON_FLAGS, relayConfigOf } from "./relay_flags.ts"
import { logLevelOf, runTool } from "./run.ts"

/**
 * The daemon's flags. Each one's key is the `DaemonConfig` field it sets,
 * except `logLevel`; `configOf` reads them.
 *
 * @since 0.1.0
 * @category cli
 */
export const FLAGS: ReadonlyArray<FlagSpec> = [
  {
    names: ["--port"],
    kind: "int",
    key: "port",
    max: 65535,
    value: "n",
    help: "TCP port (default 4803; 0 picks a free one)",
  },
  { names: ["--host"], kind: "string", key: "host", value: "host", help: "TCP interface (default 127.0.0.1)" },
  {
    names: ["--unix"],
    kind: "optional",
    key: "unixSocket",
    value: "path",
    help: "Unix socket at PATH, or /tmp/<port> without PATH (the default)",
  },
  { names: ["--no-unix"], kind: "bool", key: "unixSocket", constant: false, help: "no Unix socket" },
  {
    names: ["--name"],
    kind: "string",
    key: "name",
    value: "name",
    help: "daemon name in private groups #user#NAME (default localhost)",
  },
  {
    names: ["--max-sessions"],
    kind: "int",
    key: "maxSessions",
    min: 1,
    value: "n",
    help: "sessions before REJECT_QUOTA (default 997)",
  },
  {
    names: ["--max-group-members"],
    kind: "int",
    key: "maxGroupMembers",
    min: 1,
    value: "n",
    help: "members of one group before a join is rejected (default 3122)",
  },
  {
    names: ["--max-session-messages"],
    kind: "int",
    key: "maxSessionMessages",
    min: 1,
    value: "n",
    help: "frames queued for one session before it is cut off (default 1000)",
  },
  {
    names: ["--max-session-bytes"],
    kind: "int",
    key: "maxSessionBytes",
    min: 1,
    value: "n",
    help: "bytes queued for one session before it is cut off (default 67108864)",
  },
  {
    names: ["--log-level"],
    kind: "string",
    key: "logLevel",
    choices: ["debug", "info", "warning", "error"],
    value: "level",
    help: "debug, info, warning or error (default info)",
  },
  ...RELAY_DAEMON_FLAGS,
]

const ABOUT = "Runs a Spread-compatible daemon in the foreground until SIGINT or SIGTERM.\n" +
  "Exit codes: 0 after SIGINT or SIGTERM, 1 when it cannot listen, 2 usage error or bad configuration."

/**
 * The `--help` text.
 *
 * @since 0.1.0
 * @category cli
 */
export const help: string = usage("daemon", ABOUT, FLAGS)

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

type Mutable<T> = { -readonly [K in keyof T]: T[K] }

/**
 * The daemon's configuration and log level from parsed flags. Like the
 * `daemon` command, it opens the Unix socket `/tmp/<port>` unless
 * `--no-unix` says otherwise.
 *
 * @since 0.1.0
 * @category cli
 */
export const configOf = (p: Parsed): { readonly config: Daemon.DaemonConfig; readonly logLevel: LogLevel.LogLevel } => {
  const config: Mutable<Daemon.DaemonConfig> = { unixSocket: true }
  let logLevel: LogLevel.LogLevel = LogLevel.Info
  for (const [key, v] of p.values) {
    switch (key) {
      case "port":
      case "maxSessions":
      case "maxGroupMembers":
      case "maxSessionMessages":
      case "maxSessionBytes":
        if (typeof v === "number") config[key] = v
        break
      case "host":
      case "name":
        if (typeof v === "string") config[key] = v
        break
      case "unixSocket":
        if (typeof v === "string" || typeof v === "boolean") config.unixSocket = v
        break
      case "logLevel":
        logLevel = (typeof v === "string" ? logLevelOf(v) : undefined) ?? LogLevel.Info
        break
    }
  }
  return { config, logLevel }
}

/**
 * Parses the command line (`Deno.args`). Pure: it neither prints nor exits.
 *
 * @since 0.1.0
 * @category cli
 */
export const parseArgs = (args: ReadonlyArray<string>): CliCommand => {
  const p = parseFlags(args, FLAGS)
  if (p instanceof UsageError) return { _tag: "Invalid", message: p.message }
  if (p.help) return { _tag: "Help" }
  const relay = relayConfigOf(p)
  if (typeof relay === "string") return { _tag: "Invalid", message: relay }
  const { config, logLevel } = configOf(p)
  return { _tag: "Run", config: { ...config, ...relay }, logLevel }
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
    const ca = d.config.tls?.ca === undefined ? "no client certificate asked for" : "client certificates required"
    if (d.tlsPort !== undefined) yield* Console.log(`spreadfx daemon TLS sessions on ${d.tlsPort}@${d.host} (${ca})`)
    for (const u of d.udpIngress) {
      yield* Console.log(`spreadfx daemon UDP ${u.host}:${u.port} -> group ${u.group} as ${u.privateGroup}`)
    }
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
      return { run: Effect.as(Console.log(help), 0), logLevel: LogLevel.Info }
    case "Invalid":
      return { run: Effect.as(Console.error(usageError("daemon", FLAGS, cmd.message)), 2), logLevel: LogLevel.Info }
    case "Run":
      return {
        run: program(cmd.config, cmd.logLevel).pipe(
          Effect.catchAll((e) =>
            e.reason === "InvalidConfig"
              ? Effect.as(Console.error(usageError("daemon", FLAGS, e.message)), 2)
              : Effect.as(Console.error(`daemon: ${e.message}`), 1)
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
