/**
 * Virtual daemons: more named Spread daemons hosted by one embedded daemon,
 * each with its own TCP listener, sharing one {@link Network} (the
 * sequencer), and the controls that split them into components and merge
 * them again.
 *
 * A session belongs to the virtual daemon whose listener it connected to:
 * its private group is `#name#<that daemon>`, and private names are unique
 * per daemon, as on a real Spread network.
 *
 * @module
 */
import { type Clock, Effect, Fiber, type Runtime, type Scope } from "effect"
import { validateDaemonName } from "../../protocol/names.ts"
import { quoted } from "../../protocol/printable.ts"
import type { Listener } from "../../transport/conn.ts"
import { Transport } from "../../transport/transport.ts"
import type { ResolvedConfig } from "../config.ts"
import type { DaemonContext, DaemonShared } from "../context.ts"
import { Network } from "../engine.ts"
import { DaemonError } from "../errors.ts"

/**
 * A running virtual daemon: where its clients connect.
 *
 * @since 0.2.0
 * @category models
 */
export interface VirtualDaemonInfo {
  /** Its name. */
  readonly name: string
  /** Its bound TCP port. */
  readonly port: number
  /** Its TCP host. */
  readonly host: string
  /** `port@host`, for clients. */
  readonly spreadName: string
  /** Its proc id in membership ids. */
  readonly procId: number
}

/**
 * Builds the network of a daemon: the daemon itself first, then its virtual
 * daemons in configuration order (the order in which Spread lists members
 * of different daemons and picks a component's representative). Fails with
 * `InvalidConfig` on a bad or repeated name.
 *
 * @since 0.2.0
 * @category constructors
 */
export const makeNetwork = (c: ResolvedConfig, timeSeconds: number): Effect.Effect<Network, DaemonError> =>
  Effect.gen(function* () {
    const seen = new Set([c.name])
    for (const v of c.virtualDaemons) {
      const bad = validateDaemonName(v.name)
      if (bad !== undefined) {
        return yield* new DaemonError({
          reason: "InvalidConfig",
          detail: `virtual daemon name ${quoted(v.name)}: ${bad.detail}`,
        })
      }
      if (seen.has(v.name)) {
        return yield* new DaemonError({
          reason: "InvalidConfig",
          detail: `virtual daemon name ${quoted(v.name)} is used twice`,
        })
      }
      if (!Number.isInteger(v.port) || v.port < 0 || v.port > 65535) {
        return yield* new DaemonError({
          reason: "InvalidConfig",
          detail: `virtual daemon ${quoted(v.name)} port ${v.port} is outside 0..65535`,
        })
      }
      seen.add(v.name)
    }
    return new Network(
      [{ name: c.name, procId: c.procId }, ...c.virtualDaemons],
      timeSeconds,
      { maxGroupMembers: c.maxGroupMembers, maxGroupsPerSession: c.maxGroupsPerSession, maxGroups: c.maxGroups },
    )
  })

/**
 * What {@link serveVirtualDaemons} shares with the daemon that hosts them.
 *
 * @since 0.2.0
 * @category models
 */
export interface VirtualHost {
  readonly config: ResolvedConfig
  readonly network: Network
  readonly shared: DaemonShared
  readonly clock: Clock.Clock
  readonly runtime: Runtime.Runtime<never>
  /** Whether Debug logging is on (log lines are not built otherwise). */
  readonly debug: boolean
  /** The hosting daemon's accept loop, run on each virtual daemon's listener. */
  readonly serve: (l: Listener, ctx: DaemonContext) => Effect.Effect<void>
}

/**
 * Listens for every virtual daemon of the configuration (TCP on the
 * daemon's host) and serves its connections as sessions of that daemon,
 * until the scope closes. The hosting daemon's own limits (`maxSessions`,
 * handshakes, outboxes) count the sessions of all of them together.
 *
 * @since 0.2.0
 * @category constructors
 */
export const serveVirtualDaemons = (
  host: VirtualHost,
): Effect.Effect<ReadonlyArray<VirtualDaemonInfo>, DaemonError, Scope.Scope> =>
  Effect.forEach(host.config.virtualDaemons, (v) =>
    Effect.gen(function* () {
      const engine = host.network.engine(v.name)
      if (engine === undefined) {
        return yield* new DaemonError({ reason: "InvalidConfig", detail: `virtual daemon ${quoted(v.name)} unknown` })
      }
      const net = yield* Transport
      const l = yield* net.listen({ _tag: "Tcp", hostname: host.config.host, port: v.port }).pipe(
        Effect.mapError((e) =>
          new DaemonError({
            reason: "ListenFailed",
            detail: `cannot listen for virtual daemon ${quoted(v.name)} on ${host.config.host}:${v.port}${
              e.cause instanceof Error ? `: ${e.cause.message}` : ""
            }`,
            cause: e.cause,
          })
        ),
      )
      const ctx: DaemonContext = {
        config: { ...host.config, name: v.name, procId: v.procId },
        engine,
        reserved: new Set(),
        shared: host.shared,
        transport: "tcp",
        clock: host.clock,
        runtime: host.runtime,
        debug: host.debug,
      }
      const fiber = yield* Effect.forkScoped(host.serve(l, ctx))
      yield* Effect.addFinalizer(() =>
        Effect.zipRight(l.close, Fiber.await(fiber).pipe(Effect.timeout(1000), Effect.ignore))
      )
      const port = l.address._tag === "Tcp" ? l.address.port : v.port
      return { name: v.name, port, host: host.config.host, spreadName: `${port}@${host.config.host}`, procId: v.procId }
    }))

/**
 * The partition controls of a daemon's network.
 *
 * @since 0.2.0
 * @category models
 */
export interface PartitionControls {
  /**
   * Splits (or merges) the virtual daemons into `components`, each daemon
   * named exactly once: every member sees the TRANSITION_MESS signal and
   * the CAUSED_BY_NETWORK membership of a real Spread network, and each
   * component delivers only among its members from then on. Fails with
   * `InvalidPartition` (the problem quoted) and changes nothing when a
   * daemon is unknown, missing or named twice.
   */
  readonly partition: (components: ReadonlyArray<ReadonlyArray<string>>) => Effect.Effect<void, DaemonError>
  /** Merges every virtual daemon into one component again (nothing happens when they are together). */
  readonly heal: Effect.Effect<void>
  /** The components now, daemon names in configuration order. */
  readonly components: () => ReadonlyArray<ReadonlyArray<string>>
}

/**
 * The partition controls of `network`, its membership ids timed by `clock`.
 *
 * @since 0.2.0
 * @category constructors
 */
export const partitionControls = (network: Network, clock: Clock.Clock): PartitionControls => ({
  partition: (components) =>
    Effect.suspend(() => {
      const problem = network.partition(components, Math.floor(clock.unsafeCurrentTimeMillis() / 1000))
      return problem === undefined ? Effect.void : new DaemonError({
        reason: "InvalidPartition",
        detail: `partition ${JSON.stringify(components)}: ${problem}`,
      })
    }),
  heal: Effect.sync(() => {
    network.partition([network.daemons], Math.floor(clock.unsafeCurrentTimeMillis() / 1000))
  }),
  components: () => network.components(),
})
