/**
 * Test support: an embedded daemon on a free loopback port and a `Spread`
 * connected to it, as one layer, so a test suite needs no daemon of its own.
 * It sits on top of the client and the daemon (neither imports the other)
 * and is its own entry point, so production code that imports the client
 * does not pull in the daemon.
 *
 * @example
 * ```ts
 * import { expect, layer } from "@effect/vitest"
 * import { Effect } from "effect"
 * import { Spread } from "@spreadfx/spreadfx"
 * import { connectTest, layerTest } from "@spreadfx/spreadfx/testing"
 *
 * layer(layerTest(), { excludeTestServices: true })("echo service", (it) => {
 *   it.scoped("a request gets its reply", () =>
 *     Effect.gen(function* () {
 *       const spread = yield* Spread
 *       const server = yield* connectTest({ name: "echo" })
 *       // Returns once the responder's join is confirmed: the first request is answered.
 *       yield* server.respondJoined({ group: "echo", handler: (req) => Effect.succeed(req.data) })
 *       const reply = yield* spread.request({ group: "echo", data: "ping" })
 *       expect(new TextDecoder().decode(reply.data)).toBe("ping")
 *     }))
 * })
 * ```
 *
 * @module
 */
import { Effect, Layer, type Scope } from "effect"
import { connect, type Connection } from "../client/connection.ts"
import type { ConnectError } from "../client/core/connect_error.ts"
import type { ConnectOptions } from "../client/options.ts"
import { Spread } from "../client/config/spread.ts"
import type { DaemonConfig } from "../daemon/config.ts"
import { layer as daemonLayer, SpreadDaemon } from "../daemon/daemon.ts"
import type { DaemonError } from "../daemon/errors.ts"

/**
 * Options of {@link layerTest}.
 *
 * @since 0.2.0
 * @category models
 */
export interface TestLayerOptions {
  /** The embedded daemon's settings; by default 127.0.0.1, a free port, no Unix socket, named `localhost`. */
  readonly daemon?: DaemonConfig
  /** The connection's settings (the daemon's address is filled in). */
  readonly connect?: Omit<ConnectOptions, "daemon">
}

/**
 * An embedded daemon on 127.0.0.1 and a free port (no Unix socket), as the
 * daemon's `SpreadDaemon` service, with its settings overridden by `config`.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerDaemon = (config: DaemonConfig = {}): Layer.Layer<SpreadDaemon, DaemonError> =>
  daemonLayer({ host: "127.0.0.1", port: 0, unixSocket: false, name: "localhost", ...config })

/**
 * Another connection to the test daemon, for the scope (a second client, a
 * responder, a peer).
 *
 * @since 0.2.0
 * @category constructors
 */
export const connectTest = (
  options: Omit<ConnectOptions, "daemon"> = {},
): Effect.Effect<Connection, ConnectError, SpreadDaemon | Scope.Scope> =>
  Effect.flatMap(SpreadDaemon, (d) => connect({ ...options, daemon: d.spreadName }))

/**
 * A connection to one of the test daemon's virtual daemons (its
 * `virtualDaemons`, or the daemon itself by its name), for partition tests:
 * split and merge them with the `SpreadDaemon` service's `partition` and
 * `heal` (docs/partitions.md). An unknown name is a defect of the test.
 *
 * @since 0.2.0
 * @category constructors
 */
export const connectTestAt = (
  daemon: string,
  options: Omit<ConnectOptions, "daemon"> = {},
): Effect.Effect<Connection, ConnectError, SpreadDaemon | Scope.Scope> =>
  Effect.flatMap(SpreadDaemon, (d) => {
    const v = d.daemons.find((x) => x.name === daemon)
    return v === undefined
      ? Effect.dieMessage(`no daemon "${daemon}" (daemons: ${d.daemons.map((x) => `"${x.name}"`).join(", ")})`)
      : connect({ ...options, daemon: v.spreadName })
  })

/**
 * A test layer: an embedded daemon on a free port ({@link layerDaemon}) and
 * a `Spread` connected to it. Both are released with the layer: the
 * connection first, then the daemon.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerTest = (
  options: TestLayerOptions = {},
): Layer.Layer<Spread | SpreadDaemon, DaemonError | ConnectError> =>
  Layer.provideMerge(Layer.scoped(Spread, connectTest(options.connect)), layerDaemon(options.daemon))

export { SpreadDaemon } from "../daemon/daemon.ts"
export { layerMemory, memoryTransport, withMemoryTransport } from "../transport/memory.ts"
export { layerSockets, Transport } from "../transport/transport.ts"
