/**
 * The embedded daemon as a scoped resource.
 *
 * @module
 */
import { Context, Effect, Fiber, FiberRef, FiberRefs, Layer, LogLevel, Runtime, type Scope } from "effect"
import { validateDaemonName } from "../protocol/names.ts"
import { quoted } from "../protocol/printable.ts"
import { type Address, formatAddress } from "../protocol/address.ts"
import type { Listener } from "../transport/conn.ts"
import { socketTransport, Transport } from "../transport/transport.ts"
import { type DaemonConfig, resolveConfig, type ResolvedConfig } from "./config.ts"
import { Engine, type EngineStats } from "./engine.ts"
import { DaemonError } from "./errors.ts"
import { daemonMetrics, type DaemonMetricSet, publish } from "./metrics.ts"
import type { DaemonContext, DaemonShared } from "./context.ts"
import { HANDSHAKE_TICK_MS, serveConnection } from "./handshake.ts"
import { listenTlsSessions, refuseTlsOnPlainPort } from "./tls_sessions.ts"
import { startStatusResponder } from "./monitor_status.ts"
import { startUdpIngress, type UdpIngress } from "./udp_ingress.ts"
import {
  makeNetwork,
  type PartitionControls,
  partitionControls,
  serveVirtualDaemons,
  type VirtualDaemonInfo,
} from "./network/virtual.ts"

// Under a flood of connections (every handshake place taken), at most this
// many accepts per turn of the event loop.
const ACCEPTS_PER_TURN = 16

// One turn of the event loop (a macrotask, whatever the Clock: I/O callbacks
// run before it ends).
const turn: Effect.Effect<void> = Effect.async<void>((resume) => {
  const t = setTimeout(() => resume(Effect.void), 0)
  return Effect.sync(() => clearTimeout(t))
})

/**
 * A running daemon.
 *
 * @since 0.1.0
 * @category models
 */
export interface Daemon {
  /** The daemon name (in every private group `#name#<daemon>`). */
  readonly name: string
  /** The bound TCP port (the real one when configured as 0). */
  readonly port: number
  /** The TCP host. */
  readonly host: string
  /** The address in Spread's form, `port@host`, for clients. */
  readonly spreadName: string
  /** The Unix socket path (`/tmp/<port>` by default), or `undefined` with `unixSocket: false`. */
  readonly unixPath: string | undefined
  /** The bound TLS port, when TLS sessions were asked for. */
  readonly tlsPort: number | undefined
  /** The UDP ingresses, in configuration order. */
  readonly udpIngress: ReadonlyArray<UdpIngress>
  /** The configuration in force. */
  readonly config: ResolvedConfig
  /** A snapshot of the running totals. */
  readonly stats: () => DaemonStats
  /**
   * This daemon's metrics: `DaemonMetrics` tagged `daemon=<name>`, published
   * once a second and at shutdown.
   */
  readonly metrics: DaemonMetricSet
  /** Current members of a group, in the order membership messages list them. */
  readonly members: (group: string) => ReadonlyArray<string>
  /**
   * Every daemon of this process: this one first, then its virtual daemons
   * (`virtualDaemons` in the configuration), where their clients connect.
   */
  readonly daemons: ReadonlyArray<VirtualDaemonInfo>
  /**
   * Splits the daemons (by name) into components, e.g.
   * `partition([["a"], ["b", "c"]])`, as a network partition would; see
   * docs/partitions.md.
   */
  readonly partition: PartitionControls["partition"]
  /** Merges every daemon into one component again. */
  readonly heal: PartitionControls["heal"]
  /** The components now, daemon names in configuration order. */
  readonly components: PartitionControls["components"]
}

/**
 * Running totals of a daemon.
 *
 * @since 0.1.0
 * @category models
 */
export interface DaemonStats {
  /** Operational sessions. */
  readonly sessions: number
  /** Non-empty groups. */
  readonly groups: number
  /** Multicasts received. */
  readonly messagesIn: number
  /** Bytes of the multicasts received. */
  readonly bytesIn: number
  /** Frames queued to sessions (data and membership). */
  readonly messagesOut: number
  /** Bytes of the frames queued to sessions. */
  readonly bytesOut: number
  /** Sessions cut off as slow readers. */
  readonly cutOff: number
  /** Joins refused with a REJECT (a full group, too many groups). */
  readonly joinsRefused: number
  /** Connections accepted and not yet closed, handshaking included. */
  readonly connections: number
  /** Connections still shaking hands. */
  readonly handshaking: number
  /** Frames waiting in the deepest session outbox now. */
  readonly outboxDepth: number
  /** The deepest any session outbox has been since the daemon started (frames). */
  readonly outboxPeak: number
}

/**
 * The tag base of {@link SpreadDaemon}, typed explicitly so the public API
 * has no inferred ("slow") types.
 *
 * @since 0.1.0
 * @category tags
 */
export const SpreadDaemonBase: Context.TagClass<SpreadDaemon, "@spreadfx/spreadfx/SpreadDaemon", Daemon> = Context.Tag(
  "@spreadfx/spreadfx/SpreadDaemon",
)<SpreadDaemon, Daemon>()

/**
 * The daemon service tag, for `Daemon.layer`.
 *
 * @since 0.1.0
 * @category tags
 */
export class SpreadDaemon extends SpreadDaemonBase {}

/**
 * Starts a daemon: listens on TCP and, unless `unixSocket: false`, on the
 * Unix socket `/tmp/<port>` as Spread does (so `connect({ daemon: "<port>" })`
 * reaches it), serves every connection on its own fibers, and stops when the
 * scope closes — no longer accepting, closing every session, releasing every
 * socket and removing the Unix socket file.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as Daemon from "@spreadfx/spreadfx/daemon"
 *
 * const program = Effect.scoped(Effect.gen(function* () {
 *   const daemon = yield* Daemon.make({ port: 0 })
 *   // TCP on a free port, and the Unix socket /tmp/<that port>
 *   yield* Effect.log(`listening on ${daemon.spreadName} and ${daemon.unixPath}`)
 * }))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (config: DaemonConfig = {}): Effect.Effect<Daemon, DaemonError, Scope.Scope> =>
  Effect.gen(function* () {
    const c = resolveConfig(config)
    const bad = validateDaemonName(c.name)
    if (bad !== undefined) {
      return yield* new DaemonError({ reason: "InvalidConfig", detail: `name ${quoted(c.name)}: ${bad.detail}` })
    }
    if (!Number.isInteger(c.port) || c.port < 0 || c.port > 65535) {
      return yield* new DaemonError({ reason: "InvalidConfig", detail: `port ${c.port} is outside 0..65535` })
    }
    for (
      const [k, v] of [
        ["maxSessions", c.maxSessions],
        ["maxSessionMessages", c.maxSessionMessages],
        [
          "maxSessionBytes",
          c.maxSessionBytes,
        ],
        ["handshakeTimeoutMs", c.handshakeTimeoutMs],
        ["maxGroupMembers", c.maxGroupMembers],
        ["maxGroupsPerSession", c.maxGroupsPerSession],
        ["maxGroups", c.maxGroups],
        ["maxHandshaking", c.maxHandshaking],
        ["partialFrameTimeoutMs", c.partialFrameTimeoutMs],
      ] as const
    ) {
      if (!Number.isFinite(v) || v < 1) {
        return yield* new DaemonError({ reason: "InvalidConfig", detail: `${k} ${v} must be at least 1` })
      }
    }
    for (const m of c.authMethods) {
      if (m.name.length === 0 || m.name.length > 29 || /[\s\0]/.test(m.name)) {
        return yield* new DaemonError({
          reason: "InvalidConfig",
          detail: `auth method name ${quoted(m.name)} is not 1..29 bytes without spaces`,
        })
      }
    }
    const clock = yield* Effect.clock
    const runtime = yield* Effect.runtime<never>()
    const debug = LogLevel.lessThanEqual(
      FiberRefs.getOrDefault(runtime.fiberRefs, FiberRef.currentMinimumLogLevel),
      LogLevel.Debug,
    )
    // The daemon and its virtual daemons share one network (one sequencer).
    const network = yield* makeNetwork(c, Math.floor(clock.unsafeCurrentTimeMillis() / 1000))
    const engine = network.engine(c.name) ?? new Engine(c.name, c.procId, 0)
    const shared: DaemonShared = {
      open: 0,
      handshaking: 0,
      handshakes: new Set(),
      silentHandshakes: new Set(),
      wakeHandshakeSweep: () => {},
      sessions: 0,
      handshakesDisplaced: 0,
      live: new Set(),
      peak: 0,
      recentPeak: 0,
      generated: 0,
    }
    const deepest = (): number => {
      let n = 0
      for (const s of shared.live) if (s.outbox.messages > n) n = s.outbox.messages
      return n
    }
    const reserved = new Set<string>()
    // The sockets, unless a Transport (an in-memory network, say) is provided.
    const net = yield* Transport
    const listenOn = (address: Address) =>
      net.listen(address).pipe(
        Effect.mapError((e) =>
          new DaemonError({
            reason: "ListenFailed",
            detail: `cannot listen on ${formatAddress(address)}${
              e.cause instanceof Error ? `: ${e.cause.message}` : ""
            }`,
            cause: e.cause,
          })
        ),
      )
    const tcp = yield* listenOn({ _tag: "Tcp", hostname: c.host, port: c.port })
    const port = tcp.address._tag === "Tcp" ? tcp.address.port : c.port
    const unixPath = c.unixSocket === false ? undefined : c.unixSocket === true ? `/tmp/${port}` : c.unixSocket
    const unix = unixPath === undefined ? undefined : yield* listenOn({ _tag: "Unix", path: unixPath })
    // TLS sessions are served by the same session code: the listener hands
    // out byte streams once the TLS handshake (and client-certificate
    // check) is done.
    const tls = c.tls === undefined
      ? undefined
      : yield* listenTlsSessions(c.tls, c.host, c.handshakeTimeoutMs, c.maxHandshaking)

    // Handshake deadlines: one sweep every HANDSHAKE_TICK_MS of Clock time
    // while any handshake is unfinished, asleep otherwise.
    const handshakesWaiting = yield* Effect.makeLatch(false)
    shared.wakeHandshakeSweep = () => handshakesWaiting.unsafeOpen()
    yield* Effect.forkScoped(Effect.forever(Effect.gen(function* () {
      yield* handshakesWaiting.await
      handshakesWaiting.unsafeClose()
      while (shared.handshakes.size > 0) {
        yield* Effect.sleep(HANDSHAKE_TICK_MS)
        const now = clock.unsafeCurrentTimeMillis()
        for (const h of shared.handshakes) h.check(now)
      }
    })))
    const acceptLoop = (l: Listener, transport: "tcp" | "unix" | "tls") =>
      acceptOn(l, { config: c, engine, reserved, shared, transport, clock, runtime, debug })
    // One listener's accept loop, for this daemon's listeners and for each
    // virtual daemon's.
    const acceptOn = (l: Listener, ctx: DaemonContext) => {
      const transport = ctx.transport
      const label = formatAddress(l.address)
      const warnPlainPort = (m: string) => Runtime.runFork(ctx.runtime, Effect.logWarning(m))
      // A failed accept (out of descriptors, say) is logged and retried after
      // a pause that grows to 1 s; only closing the listener ends the loop.
      return Effect.gen(function* () {
        let pause = 10
        let burst = 0
        while (true) {
          const accepted = yield* Effect.either(l.accept)
          if (accepted._tag === "Left") {
            const e = accepted.left
            if (e.reason === "Closed") return
            yield* Effect.logError(
              `Accept on ${formatAddress(l.address)} failed (retrying in ${pause} ms): ${e.message}`,
            )
            yield* Effect.sleep(pause)
            pause = Math.min(pause * 2, 1000)
            continue
          }
          pause = 10
          shared.open++
          // A TLS client on a plain port is told so, and logged as such.
          serveConnection(
            ctx,
            transport === "tls" ? accepted.right : refuseTlsOnPlainPort(accepted.right, label, warnPlainPort),
          )
          // With every handshake place taken, let the event loop come round
          // before the next accept: the reads of the handshakes in progress
          // complete first, so a client that sent its connect message is no
          // longer silent when the next newcomer looks for one to displace.
          if (shared.handshakes.size >= c.maxHandshaking && ++burst >= ACCEPTS_PER_TURN) {
            burst = 0
            yield* turn
          }
        }
      })
    }
    const accepting = [yield* Effect.forkScoped(acceptLoop(tcp, "tcp"))]
    if (unix !== undefined) accepting.push(yield* Effect.forkScoped(acceptLoop(unix, "unix")))
    if (tls !== undefined) accepting.push(yield* Effect.forkScoped(acceptLoop(tls, "tls")))

    const metrics = daemonMetrics(c.name)
    let last: EngineStats = { ...engine.stats }
    const publishNow = Effect.suspend(() => {
      const now = { ...engine.stats }
      // The deepest outbox since the last publish (the high-water mark kept
      // by every offer), not just at this instant.
      const p = publish(metrics, now, last, Math.max(shared.recentPeak, deepest()))
      shared.recentPeak = deepest()
      last = now
      return p
    })
    yield* Effect.forkScoped(Effect.forever(Effect.zipRight(Effect.sleep(1000), publishNow)))
    // Frames begun and not finished: one sweep over the sessions a few times
    // per deadline, so reading costs nothing extra per chunk.
    const limit = c.partialFrameTimeoutMs
    const sweep = Effect.sync(() => {
      const now = clock.unsafeCurrentTimeMillis()
      for (const s of shared.live) {
        const since = s.partialSince()
        if (since >= 0 && now - since >= limit) {
          s.expire(`killed: a frame begun ${now - since} ms ago is unfinished (partialFrameTimeoutMs ${limit})`)
        }
      }
    })
    yield* Effect.forkScoped(
      Effect.forever(Effect.zipRight(Effect.sleep(Math.max(10, Math.min(1000, Math.floor(limit / 4)))), sweep)),
    )
    yield* Effect.addFinalizer(() =>
      Effect.gen(function* () {
        // Stop accepting first, then end every session. The accept loops end
        // once their pending accept has failed, which is when the runtime
        // has really let go of the listening socket: the port can be bound
        // again as soon as this scope is closed.
        yield* tcp.close
        if (unix !== undefined) yield* unix.close
        if (tls !== undefined) yield* tls.close
        yield* Fiber.awaitAll(accepting).pipe(Effect.timeout(1000), Effect.ignore)
        for (const h of [...shared.handshakes]) h.shutdown()
        for (const s of [...shared.live]) s.shutdown()
        yield* publishNow
        yield* Effect.logDebug(`Daemon ${c.name} stopped`)
      })
    )
    const virtuals = yield* serveVirtualDaemons({ config: c, network, shared, clock, runtime, debug, serve: acceptOn })
    const controls = partitionControls(network, clock)
    const udpIngress = yield* Effect.forEach(c.udpIngress, (u) => startUdpIngress(engine, reserved, c.name, u))
    // Spread's monitor speaks UDP on the daemon's port: only a daemon on real
    // sockets answers it (one on an in-memory network has no port to share).
    if (c.monitorStatus && net === socketTransport) {
      yield* startStatusResponder(c.host, port, c.name, () => ({
        sessions: engine.stats.sessions,
        groups: engine.stats.groups,
        messages: engine.stats.messagesIn,
      }))
    }
    yield* Effect.logDebug(
      `Daemon ${c.name} listening on ${port}@${c.host}${unixPath === undefined ? "" : ` and ${unixPath}`}`,
    )
    return {
      name: c.name,
      port,
      host: c.host,
      spreadName: `${port}@${c.host}`,
      unixPath,
      tlsPort: tls?.address._tag === "Tcp" ? tls.address.port : undefined,
      udpIngress,
      config: c,
      stats: () => ({
        ...engine.stats,
        connections: shared.open,
        handshaking: shared.handshaking,
        outboxDepth: deepest(),
        outboxPeak: shared.peak,
      }),
      metrics,
      members: (group: string) => engine.members(group),
      daemons: [{ name: c.name, port, host: c.host, spreadName: `${port}@${c.host}`, procId: c.procId }, ...virtuals],
      ...controls,
    }
  })

/**
 * A layer providing a running {@link SpreadDaemon} for the layer's lifetime,
 * with the same defaults as {@link make} (TCP and the Unix socket
 * `/tmp/<port>`; `unixSocket: false` for TCP only).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (config: DaemonConfig = {}): Layer.Layer<SpreadDaemon, DaemonError> =>
  Layer.scoped(SpreadDaemon, make(config))
