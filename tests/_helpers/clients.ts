/**
 * The setup most client tests share: an embedded daemon on a free port and
 * N connections to it, all in the test's scope.
 *
 * ```ts
 * const { daemon, clients: [alice, bob] } = yield* daemonAndClients("alice", { name: "bob", membership: false })
 * ```
 */
import { Effect, type Scope } from "effect"
import { connect, type Connection, type ConnectOptions } from "../../mod.ts"
import type { ConnectError } from "../../src/client/core/connect_error.ts"
import type * as Daemon from "../../src/daemon/mod.ts"
import { startDaemon } from "./fixtures.ts"

/** A client of {@link daemonAndClients}: its name, or its options (the daemon's address is filled in). */
export type ClientSpec = string | Omit<ConnectOptions, "daemon">

/** An embedded daemon (settings `config`) and one connection per spec, connected in order. */
export const daemonAndClients = (
  ...clients: ReadonlyArray<ClientSpec>
): Effect.Effect<
  { readonly daemon: Daemon.Daemon; readonly clients: ReadonlyArray<Connection> },
  ConnectError,
  Scope.Scope
> => daemonWithClients({}, ...clients)

/** {@link daemonAndClients} with the daemon's settings. */
export const daemonWithClients = (
  config: Daemon.DaemonConfig,
  ...clients: ReadonlyArray<ClientSpec>
): Effect.Effect<
  { readonly daemon: Daemon.Daemon; readonly clients: ReadonlyArray<Connection> },
  ConnectError,
  Scope.Scope
> =>
  Effect.gen(function* () {
    const daemon = yield* startDaemon(config)
    const conns = yield* Effect.forEach(
      clients,
      (c) => connect({ ...(typeof c === "string" ? { name: c } : c), daemon: daemon.spreadName }),
    )
    return { daemon, clients: conns }
  })
