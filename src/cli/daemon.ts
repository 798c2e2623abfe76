/**
 * `deno task daemon`: runs the embedded Spread daemon in the foreground.
 *
 * ```sh
 * deno run --allow-net --allow-read --allow-write --allow-env --allow-ffi src/cli/daemon.ts --port 4803
 * ```
 *
 * `--allow-ffi` is for `--udp-ingress` on Linux: with it each ingress
 * creates and sizes its own UDP socket (`--udp-recv-buffer`, up to
 * `net.core.rmem_max`) and reports the kernel's drops; without it the
 * ingress uses Deno's socket at the system's default buffer, and warns.
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
import { type FlagSpec, list, type Parsed, parseFlags, usage, UsageError, usageError } from "./args.ts"
import { RELAY_DAEMON_FLAGS, relayConfigOf } from "./relay_flags.ts"
import { logLevelOf, runTool } from "./run.ts"
import { parseVirtualDaemon, runControl, stdinLines } from "../daemon/network/control.ts"

// `--virtual` values as `virtualDaemons`, or the problem.
const virtualDaemonsOf = (p: Parsed): Pick<Daemon.DaemonConfig, "virtualDaemons"> | string => {
  const out: Array<Daemon.VirtualDaemonConfig> = []
  for (const one of list(p, "virtualDaemons")) {
    const r = parseVirtualDaemon(one)
    if (typeof r === "string") return r
    out.push(r)
  }
  return out.length === 0 ? {} : { virtualDaemons: out }
}

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
    names: ["--no-monitor"],
    kind: "bool",
    key: "monitorStatus",
    constant: false,
    help: "do not answer spmonitor status requests (by default answered on UDP at the daemon's port)",
  },
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
    names: ["--max-groups-per-session"],
    kind: "int",
    key: "maxGroupsPerSession",
    min: 1,
    value: "n",
    help: "groups one session may be in before a join is rejected (default 1000)",
  },
  {
    names: ["--max-groups"],
    kind: "int",
    key: "maxGroups",
    min: 1,
    value: "n",
    help: "groups on the daemon before a join creating one is rejected (default 65536)",
  },
  {
    names: ["--max-handshaking"],
    kind: "int",
    key: "maxHandshaking",
    min: 1,
    value: "n",
    help: "connections still shaking hands before REJECT_QUOTA (default 256)",
  },
  {
    names: ["--partial-frame-timeout"],
    kind: "int",
    key: "partialFrameTimeoutMs",
    min: 1,
    value: "ms",
    help: "ms a session has to finish a frame it began (default 10000)",
  },
  {
    names: ["--udp-recv-buffer"],
    kind: "int",
    key: "udpRecvBuffer",
    min: 1,
    value: "bytes",
    help: "receive buffer each --udp-ingress socket asks for, capped by net.core.rmem_max (default 8388608; " +
      "needs --allow-ffi)",
  },
  {
    names: ["--stats-interval"],
    kind: "int",
    key: "statsInterval",
    min: 1,
    value: "s",
    help: "log a stats line every S seconds (default: never)",
  },
  {
    names: ["--metrics-port"],
    kind: "int",
    key: "metricsPort",
    max: 65535,
    value: "n",
    help: "serve Prometheus metrics over HTTP at /metrics on this port (0 picks one; default: off)",
  },
  {
    names: ["--metrics-host"],
    kind: "string",
    key: "metricsHost",
    value: "host",
    help: "interface for --metrics-port (default 127.0.0.1)",
  },
  {
    names: ["--virtual"],
    kind: "list",
    key: "virtualDaemons",
    value: "name[:port]",
    help: "also host virtual daemon NAME on PORT (repeatable; see docs/partitions.md)",
  },
  {
    names: ["--partition-control"],
    kind: "bool",
    key: "partitionControl",
    help: "read partition commands from stdin: partition A | B C, heal, components",
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
  | {
    readonly _tag: "Run"
    readonly config: Daemon.DaemonConfig
    readonly logLevel: LogLevel.LogLevel
    readonly observe: Observe
  }
  | { readonly _tag: "Help" }
  | { readonly _tag: "Invalid"; readonly message: string }

type Mutable<T> = { -readonly [K in keyof T]: T[K] }

/**
 * What the command shows of the running daemon besides its log.
 *
 * @since 0.1.0
 * @category cli
 */
export interface Observe {
  /** Seconds between stats lines (`--stats-interval`); none when absent. */
  readonly statsIntervalS?: number
  /** Port of the Prometheus endpoint (`--metrics-port`); none when absent. */
  readonly metricsPort?: number
  /** Interface of the Prometheus endpoint (`--metrics-host`, default 127.0.0.1). */
  readonly metricsHost?: string
  /** Read partition commands from stdin (`--partition-control`). */
  readonly partitionControl?: boolean
}

/**
 * The daemon's configuration and log level from parsed flags. Like the
 * `daemon` command, it opens the Unix socket `/tmp/<port>` unless
 * `--no-unix` says otherwise.
 *
 * @since 0.1.0
 * @category cli
 */
export const configOf = (
  p: Parsed,
): { readonly config: Daemon.DaemonConfig; readonly logLevel: LogLevel.LogLevel; readonly observe: Observe } => {
  const config: Mutable<Daemon.DaemonConfig> = { unixSocket: true }
  const observe: Mutable<Observe> = {}
  let logLevel: LogLevel.LogLevel = LogLevel.Info
  for (const [key, v] of p.values) {
    switch (key) {
      case "port":
      case "maxSessions":
      case "maxGroupMembers":
      case "maxSessionMessages":
      case "maxSessionBytes":
      case "maxGroupsPerSession":
      case "maxGroups":
      case "maxHandshaking":
      case "partialFrameTimeoutMs":
        if (typeof v === "number") config[key] = v
        break
      case "statsInterval":
        if (typeof v === "number") observe.statsIntervalS = v
        break
      case "metricsPort":
        if (typeof v === "number") observe.metricsPort = v
        break
      case "metricsHost":
        if (typeof v === "string") observe.metricsHost = v
        break
      case "host":
      case "name":
        if (typeof v === "string") config[key] = v
        break
      case "unixSocket":
        if (typeof v === "string" || typeof v === "boolean") config.unixSocket = v
        break
      case "monitorStatus":
        if (typeof v === "boolean") config.monitorStatus = v
        break
      case "partitionControl":
        if (v === true) observe.partitionControl = true
        break
      case "logLevel":
        logLevel = (typeof v === "string" ? logLevelOf(v) : undefined) ?? LogLevel.Info
        break
    }
  }
  return { config, logLevel, observe }
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
  const virtuals = virtualDaemonsOf(p)
  if (typeof virtuals === "string") return { _tag: "Invalid", message: virtuals }
  const { config, ...rest } = configOf(p)
  const recv = p.values.get("udpRecvBuffer")
  const udpIngress = typeof recv === "number" && relay.udpIngress !== undefined
    ? { udpIngress: relay.udpIngress.map((u) => ({ ...u, recvBufferBytes: recv })) }
    : {}
  return { _tag: "Run", config: { ...config, ...relay, ...udpIngress, ...virtuals }, ...rest }
}

/**
 * One line of a daemon's running totals, for `--stats-interval`.
 *
 * @since 0.1.0
 * @category cli
 */
export const statsLine = (s: Daemon.DaemonStats): string =>
  `stats: sessions=${s.sessions} connections=${s.connections} handshaking=${s.handshaking} groups=${s.groups} ` +
  `messages_in=${s.messagesIn} bytes_in=${s.bytesIn} messages_out=${s.messagesOut} bytes_out=${s.bytesOut} ` +
  `cut_off=${s.cutOff} joins_refused=${s.joinsRefused} outbox_depth=${s.outboxDepth} outbox_peak=${s.outboxPeak}`

/**
 * A UDP ingress's totals for the stats line: `udp_<port>_received=…` and
 * so on; `dropped_kernel` is `unknown` when the kernel's count cannot be
 * read (Deno's socket without `--allow-all`).
 *
 * @since 0.1.0
 * @category cli
 */
export const udpStatsLine = (port: number, s: Daemon.UdpIngressStats): string =>
  `udp_${port}_received=${s.received} udp_${port}_delivered=${s.delivered} ` +
  `udp_${port}_dropped_oversize=${s.droppedOversize} udp_${port}_dropped_empty=${s.droppedEmpty} ` +
  `udp_${port}_dropped_kernel=${s.droppedByKernel ?? "unknown"}` +
  (s.recvBufferBytes === undefined ? "" : ` udp_${port}_recv_buffer=${s.recvBufferBytes}`)

/**
 * The daemon until interrupted, with its start line on stdout; with
 * `observe`, a stats line in the log every few seconds and a Prometheus
 * endpoint (its address on stdout too).
 *
 * @since 0.1.0
 * @category cli
 */
export const program = (
  config: Daemon.DaemonConfig,
  logLevel: LogLevel.LogLevel,
  observe: Observe = {},
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
    if (observe.metricsPort !== undefined) {
      const m = yield* Daemon.serveMetrics({ port: observe.metricsPort, host: observe.metricsHost })
      yield* Console.log(`spreadfx daemon ${d.name} metrics on http://${m.host}:${m.port}/metrics`)
    }
    for (const v of d.daemons.slice(1)) yield* Console.log(`spreadfx daemon ${v.name} listening on ${v.spreadName}`)
    if (observe.partitionControl === true) yield* Effect.forkScoped(runControl(d, stdinLines))
    const every = observe.statsIntervalS
    if (every !== undefined) {
      yield* Effect.forkScoped(
        Effect.forever(
          Effect.zipRight(
            Effect.sleep(every * 1000),
            Effect.suspend(() =>
              Effect.logInfo(
                statsLine(d.stats()) + d.udpIngress.map((u) => " " + udpStatsLine(u.port, u.stats())).join(""),
              )
            ),
          ),
        ),
      )
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
        run: program(cmd.config, cmd.logLevel, cmd.observe).pipe(
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
