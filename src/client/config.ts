/**
 * Connection settings from Effect `Config`, and the layer that reads them.
 *
 * {@link ConnectConfig} reads these keys under `SPREAD` (with the default
 * environment provider, `SPREAD_DAEMON` and so on), each optional, each
 * defaulting as in `connect`:
 *
 * | key                       | meaning                                                         |
 * | ------------------------- | --------------------------------------------------------------- |
 * | `DAEMON`                  | the daemon: `4803`, `4803@host`, or a Unix socket path          |
 * | `NAME`                    | the private name                                                |
 * | `CONNECT_TIMEOUT`         | a duration, e.g. `5 seconds`                                    |
 * | `CLOSE_TIMEOUT`           | a duration                                                      |
 * | `WINDOW`                  | `adaptive`, `adaptive:<budget>`, `fixed:<size>` or `off`        |
 * | `INBOUND_CAPACITY`        | an integer                                                      |
 * | `MEMBERSHIP`              | `true` or `false`                                               |
 *
 * @module
 */
import { Config, ConfigError, Effect, Either, Layer, Option } from "effect"
import { connect } from "./connection.ts"
import type { ConnectError } from "./errors.ts"
import { adaptiveWindow, type ConnectOptions, fixedWindow, type FlowWindow, noWindow } from "./options.ts"
import { Spread } from "./spread.ts"

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
    }),
    (c): ConnectOptions => {
      const out: { -readonly [K in keyof ConnectOptions]: ConnectOptions[K] } = {}
      if (Option.isSome(c.daemon)) out.daemon = c.daemon.value
      if (Option.isSome(c.name)) out.name = c.name.value
      if (Option.isSome(c.connectTimeout)) out.connectTimeout = c.connectTimeout.value
      if (Option.isSome(c.closeTimeout)) out.closeTimeout = c.closeTimeout.value
      if (Option.isSome(c.window)) out.window = c.window.value
      if (Option.isSome(c.inboundCapacity)) out.inboundCapacity = c.inboundCapacity.value
      if (Option.isSome(c.membership)) out.membership = c.membership.value
      return out
    },
  ),
  "SPREAD",
)

/**
 * A layer that reads its connection settings from `config` ({@link
 * ConnectConfig} by default: `SPREAD_DAEMON`, `SPREAD_NAME`, … from the
 * environment), connects, and closes the connection when released. A
 * missing or malformed setting fails the layer with a `ConfigError`.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config<ConnectOptions> = ConnectConfig,
): Layer.Layer<Spread, ConnectError | ConfigError.ConfigError> =>
  Layer.scoped(Spread, Effect.flatMap(config, (options) => connect(options)))
