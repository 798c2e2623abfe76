/**
 * Connection settings from Effect `Config`, and the layer that reads them.
 *
 * {@link ConnectConfig} reads these keys under `SPREAD` (with the default
 * environment provider, `SPREAD_DAEMON` and so on), each optional, each
 * defaulting as in `connect`:
 *
 * | key                       | meaning                                                         |
 * | ------------------------- | --------------------------------------------------------------- |
 * | `DAEMON`                  | the daemon: `4803`, `4803@host`, a Unix socket path, or several |
 * |                           | of these separated by commas (tried in turn)                    |
 * | `NAME`                    | the private name                                                |
 * | `CONNECT_TIMEOUT`         | a duration, e.g. `5 seconds`                                    |
 * | `CLOSE_TIMEOUT`           | a duration                                                      |
 * | `WINDOW`                  | `adaptive`, `adaptive:<budget>`, `fixed:<size>` or `off`        |
 * | `INBOUND_CAPACITY`        | an integer                                                      |
 * | `MEMBERSHIP`              | `true` or `false`                                               |
 * | `RECONNECT_DELAY`         | a duration: reconnect, first after this delay, then doubling    |
 * | `RECONNECT_MAX_DELAY`     | a duration: the longest delay between attempts (5 seconds)      |
 * | `RECONNECT_ATTEMPTS`      | an integer: give up after this many retries (never by default)  |
 * | `WHILE_RECONNECTING`      | `wait` or `fail`                                                |
 * | `TLS`                     | `true`: TLS with the system's roots (implied by the keys below) |
 * | `TLS_CA`                  | PEM text: authorities to trust besides the system's (one or     |
 * |                           | more certificates)                                              |
 * | `TLS_CERT`                | PEM text: a client certificate to present (with `TLS_KEY`)      |
 * | `TLS_KEY`                 | PEM text: its private key (read as a redacted value)            |
 * | `TLS_SERVER_NAME`         | the name the daemon's certificate must carry                    |
 *
 * Reconnecting is off unless `RECONNECT_DELAY` is set; the other
 * `RECONNECT_*` keys shape it (see {@link reconnectBackoff}). TLS is off
 * unless `TLS` is `true` or one of the `TLS_*` keys is set; the keys carry
 * PEM text, not file names (e.g. `SPREAD_TLS_CA="$(cat ca.pem)"`), and are
 * checked as `connect` checks its `tls` option.
 *
 * @module
 */
import { Config, ConfigError, Duration, Effect, Either, Layer, Option, Redacted, Schedule } from "effect"
import { connect } from "../connection.ts"
import type { ConnectError } from "../core/connect_error.ts"
import {
  adaptiveWindow,
  type ConnectOptions,
  type DaemonAddress,
  fixedWindow,
  type FlowWindow,
  noWindow,
} from "../options.ts"
import { Spread } from "./spread.ts"

// The certificates in PEM text, one string each (a CA bundle holds several).
const pemBlocks = (text: string): ReadonlyArray<string> => {
  const blocks = text.match(/-----BEGIN [^-]+-----[\s\S]*?-----END [^-]+-----/g)
  // Text with no whole block is passed on as it is, for connect to refuse.
  return blocks === null ? [text] : blocks
}

const parseWindow = (s: string): Either.Either<FlowWindow, string> => {
  const [kind, n] = s.trim().toLowerCase().split(":", 2)
  const size = n === undefined ? undefined : Number(n)
  const bad = Either.left(`"${s}" is not adaptive, adaptive:<budget>, fixed:<size> or off`)
  if (size !== undefined && !(Number.isSafeInteger(size) && size > 0)) return bad
  switch (kind) {
    case "adaptive":
      return Either.right(adaptiveWindow(size))
    case "fixed":
      return size === undefined ? bad : Either.right(fixedWindow(size))
    case "off":
      return size === undefined ? Either.right(noWindow) : bad
    default:
      return bad
  }
}

/**
 * A {@link FlowWindow} read from a string: `adaptive`, `adaptive:<budget>`,
 * `fixed:<size>` or `off`.
 *
 * @since 0.2.0
 * @category config
 */
export const windowConfig = (name: string): Config.Config<FlowWindow> =>
  Config.mapOrFail(
    Config.string(name),
    (s) => Either.mapLeft(parseWindow(s), (message) => ConfigError.InvalidData([], message)),
  )

/**
 * Options of {@link reconnectBackoff}.
 *
 * @since 0.2.0
 * @category models
 */
export interface BackoffOptions {
  /** Delay before the first retry (the first attempt is at once). */
  readonly delay: Duration.DurationInput
  /** Longest delay between retries; 5 seconds by default. */
  readonly maxDelay?: Duration.DurationInput
  /** Retries before giving up; unlimited when absent. */
  readonly attempts?: number
}

/**
 * A `reconnect` schedule: retries after `delay`, doubling each time up to
 * `maxDelay`, and gives up after `attempts` retries when given.
 *
 * @example
 * ```ts
 * import { reconnectBackoff } from "./config.ts"
 * // 100 ms, 200 ms, 400 ms … at most 2 s apart; 20 retries, then give up.
 * const reconnect = reconnectBackoff({ delay: "100 millis", maxDelay: "2 seconds", attempts: 20 })
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const reconnectBackoff = (options: BackoffOptions): Schedule.Schedule<unknown> => {
  const backoff: Schedule.Schedule<unknown> = Schedule.exponential(options.delay).pipe(
    Schedule.union(Schedule.spaced(options.maxDelay ?? Duration.seconds(5))),
  )
  return options.attempts === undefined
    ? backoff
    : Schedule.intersect(backoff, Schedule.recurs(Math.max(0, Math.floor(options.attempts))))
}

const parseDaemon = (s: string): DaemonAddress | ReadonlyArray<DaemonAddress> => {
  if (!s.includes(",")) return s.trim()
  return s.split(",").map((d) => d.trim()).filter((d) => d.length > 0)
}

const whileReconnectingConfig = (name: string): Config.Config<"wait" | "fail"> =>
  Config.mapOrFail(Config.string(name), (s) => {
    const v = s.trim().toLowerCase()
    return v === "wait" || v === "fail"
      ? Either.right(v)
      : Either.left(ConfigError.InvalidData([], `"${s}" is not wait or fail`))
  })

/**
 * The connection settings under `SPREAD` (see the module notes); keys that
 * are absent are left to `connect`'s defaults.
 *
 * @since 0.2.0
 * @category config
 */
export const ConnectConfig: Config.Config<ConnectOptions> = Config.nested(
  Config.map(
    Config.all({
      daemon: Config.option(Config.string("DAEMON")),
      name: Config.option(Config.string("NAME")),
      connectTimeout: Config.option(Config.duration("CONNECT_TIMEOUT")),
      closeTimeout: Config.option(Config.duration("CLOSE_TIMEOUT")),
      window: Config.option(windowConfig("WINDOW")),
      inboundCapacity: Config.option(Config.integer("INBOUND_CAPACITY")),
      membership: Config.option(Config.boolean("MEMBERSHIP")),
      reconnectDelay: Config.option(Config.duration("RECONNECT_DELAY")),
      reconnectMaxDelay: Config.option(Config.duration("RECONNECT_MAX_DELAY")),
      reconnectAttempts: Config.option(Config.integer("RECONNECT_ATTEMPTS")),
      whileReconnecting: Config.option(whileReconnectingConfig("WHILE_RECONNECTING")),
      tls: Config.option(Config.boolean("TLS")),
      tlsCa: Config.option(Config.string("TLS_CA")),
      tlsCert: Config.option(Config.string("TLS_CERT")),
      tlsKey: Config.option(Config.redacted("TLS_KEY")),
      tlsServerName: Config.option(Config.string("TLS_SERVER_NAME")),
    }),
    (c): ConnectOptions => {
      const out: { -readonly [K in keyof ConnectOptions]: ConnectOptions[K] } = {}
      if (Option.isSome(c.daemon)) out.daemon = parseDaemon(c.daemon.value)
      if (Option.isSome(c.name)) out.name = c.name.value
      if (Option.isSome(c.connectTimeout)) out.connectTimeout = c.connectTimeout.value
      if (Option.isSome(c.closeTimeout)) out.closeTimeout = c.closeTimeout.value
      if (Option.isSome(c.window)) out.window = c.window.value
      if (Option.isSome(c.inboundCapacity)) out.inboundCapacity = c.inboundCapacity.value
      if (Option.isSome(c.membership)) out.membership = c.membership.value
      if (Option.isSome(c.reconnectDelay)) {
        out.reconnect = reconnectBackoff({
          delay: c.reconnectDelay.value,
          ...(Option.isSome(c.reconnectMaxDelay) ? { maxDelay: c.reconnectMaxDelay.value } : {}),
          ...(Option.isSome(c.reconnectAttempts) ? { attempts: c.reconnectAttempts.value } : {}),
        })
      }
      if (Option.isSome(c.whileReconnecting)) out.whileReconnecting = c.whileReconnecting.value
      const tlsKeys = Option.isSome(c.tlsCa) || Option.isSome(c.tlsCert) || Option.isSome(c.tlsKey) ||
        Option.isSome(c.tlsServerName)
      if (tlsKeys || Option.getOrElse(c.tls, () => false)) {
        out.tls = {
          ...(Option.isSome(c.tlsCa) ? { caCerts: pemBlocks(c.tlsCa.value) } : {}),
          ...(Option.isSome(c.tlsCert) ? { cert: c.tlsCert.value } : {}),
          ...(Option.isSome(c.tlsKey) ? { key: Redacted.value(c.tlsKey.value) } : {}),
          ...(Option.isSome(c.tlsServerName) ? { serverName: c.tlsServerName.value } : {}),
        }
      }
      return out
    },
  ),
  "SPREAD",
)

/**
 * A layer that reads its connection settings from `config` ({@link
 * ConnectConfig} by default: `SPREAD_DAEMON`, `SPREAD_NAME`, … from the
 * environment), connects, and closes the connection when released. A
 * missing or malformed setting fails the layer with a `ConfigError` that
 * names it as an environment variable (`SPREAD_WINDOW`).
 *
 * @since 0.2.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config<ConnectOptions> = ConnectConfig,
): Layer.Layer<Spread, ConnectError | ConfigError.ConfigError> =>
  Layer.scoped(Spread, Effect.flatMap(Effect.mapError(config, envNamed), (options) => connect(options)))

const ENV = { pathDelim: "_" }

// The same error with its paths joined as environment variables are named
// (`SPREAD_WINDOW`, not `SPREAD.WINDOW`): what a user must set or fix.
const envNamed = (e: ConfigError.ConfigError): ConfigError.ConfigError =>
  ConfigError.reduceWithContext(e, undefined, {
    andCase: (_, l, r) => ConfigError.And(l, r),
    orCase: (_, l, r) => ConfigError.Or(l, r),
    invalidDataCase: (_, path, message) => ConfigError.InvalidData(path, message, ENV),
    missingDataCase: (_, path, message) => ConfigError.MissingData(path, message, ENV),
    sourceUnavailableCase: (_, path, message, cause) => ConfigError.SourceUnavailable(path, message, cause, ENV),
    unsupportedCase: (_, path, message) => ConfigError.Unsupported(path, message, ENV),
  })
