/**
 * UDP ingress: a UDP socket whose datagrams become messages multicast into
 * a group, in arrival order, from a private name the daemon owns.
 *
 * The ingress is a session of the engine like any other (it takes its
 * private name, `#udp-<port>#<daemon>` by default, so no client can use it
 * and every receiver sees it as the sender; it counts in the daemon's
 * `stats().sessions`), except that it has no socket:
 * it joins no group, receives nothing (anything sent to its private group
 * is dropped), and each datagram is handed to the one sequencer exactly as
 * a client's multicast is. So every member of the group — plain TCP, Unix
 * or TLS, C client or this library — gets every datagram, in the order
 * they arrived, and the slow-reader rules apply to each reader alone.
 *
 * Sizes: a datagram larger than `maxBytes` (default 65507, the largest UDP
 * payload over IPv4, well under Spread's message limit) is dropped and
 * counted. An empty datagram is dropped and counted too: it carries no
 * line, and Spread clients treat a zero-length message as nothing to say.
 *
 * UDP has no flow control: datagrams that arrive while the socket's kernel
 * receive buffer is full are dropped by the kernel before the daemon sees
 * them (reported as `droppedByKernel` and in the dropped metric with reason
 * `kernel`). So on Linux, when the process has `--allow-ffi`, the ingress
 * creates its socket itself (`udp_socket.ts`): it asks for a receive
 * buffer of `recvBufferBytes` (default 8 MiB; the kernel grants at most
 * `net.core.rmem_max`), empties the socket in batches as soon as a
 * datagram arrives, and reads the kernel's drop counter from the socket
 * (`SO_MEMINFO`). Without `--allow-ffi` (or on another OS, or an IPv6
 * address) it falls back to `Deno.listenDatagram` with a warning: that
 * socket keeps the system default (`net.core.rmem_default`, 208 KiB: about
 * 160 datagrams of 300 bytes on loopback), and its drops come from
 * /proc/net/udp, which Deno lets only `--allow-all` read. Past the socket,
 * nothing is lost.
 *
 * The fallback's `Deno.listenDatagram` is unstable in Deno 2.9: the process
 * must run with `--unstable-net` (the deno.json tasks and the tests pass
 * it). Without it (and without `--allow-ffi`) the daemon refuses to start
 * with an `InvalidConfig` error saying so.
 *
 * @module
 */
import { Effect, Metric, Runtime, type Scope } from "effect"
import {
  HEADER_SIZE,
  MAX_GROUP_NAME,
  MAX_MESSAGE_PAYLOAD,
  type ServiceLevel,
  serviceLevelBits,
} from "../protocol/constants.ts"
import { Frame, hintOf } from "../protocol/frame.ts"
import { encodeMulticast, validateMulticast } from "../protocol/client_requests.ts"
import { privateGroupName, validateGroupName, validatePrivateName } from "../protocol/names.ts"
import type { OfferResult } from "../transport/outbox.ts"
import type { Engine, EngineSession } from "./engine.ts"
import { DaemonError } from "./errors.ts"
import { ffiUnavailable, openSizedUdp, type SizedUdpSocket } from "./udp_socket.ts"

/**
 * The receive buffer a UDP ingress asks for by default, in bytes: the
 * kernel grants at most `net.core.rmem_max`.
 *
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_UDP_RECV_BUFFER = 8 * 1024 * 1024

/**
 * One UDP ingress: where to listen and which group gets the datagrams.
 *
 * @since 0.1.0
 * @category models
 */
export interface UdpIngressConfig {
  /** UDP port; 0 picks a free one. */
  readonly port: number
  /** Interface to listen on. Default `127.0.0.1` (loopback only). */
  readonly host?: string
  /** The group every datagram is multicast into. */
  readonly group: string
  /** Service level of the messages. Default `Fifo` (one sender, arrival order). */
  readonly service?: ServiceLevel
  /** The 16-bit mess_type of the messages. Default 0. */
  readonly messType?: number
  /** The ingress's private name (1..10 bytes). Default `udp-<port>` (the bound port). */
  readonly name?: string
  /** Largest datagram relayed, in bytes; larger ones are dropped. Default 65507. */
  readonly maxBytes?: number
  /**
   * Receive buffer to ask the kernel for, in bytes (with `--allow-ffi` on
   * Linux; see the module notes). Default 8 MiB; the kernel caps it at
   * `net.core.rmem_max`.
   */
  readonly recvBufferBytes?: number
}

/**
 * Running totals of one ingress.
 *
 * @since 0.1.0
 * @category models
 */
export interface UdpIngressStats {
  /** Datagrams received. */
  readonly received: number
  /** Datagrams multicast into the group. */
  readonly delivered: number
  /** Datagrams dropped because they exceeded `maxBytes`. */
  readonly droppedOversize: number
  /** Empty datagrams dropped. */
  readonly droppedEmpty: number
  /**
   * Datagrams the kernel dropped before the daemon saw them (the socket's
   * receive buffer was full): from the socket itself with the sized socket
   * (`--allow-ffi`), else from `/proc/net/udp` when the process may read
   * it (Linux, `--allow-all`; asked without a prompt); absent otherwise.
   */
  readonly droppedByKernel?: number
  /** The socket's receive buffer as the kernel reports it (absent with the `Deno.listenDatagram` fallback). */
  readonly recvBufferBytes?: number
}

/**
 * A running ingress.
 *
 * @since 0.1.0
 * @category models
 */
export interface UdpIngress {
  /** The UDP interface. */
  readonly host: string
  /** The bound UDP port. */
  readonly port: number
  /** The group the datagrams go to. */
  readonly group: string
  /** The sender every receiver sees, `#<name>#<daemon>`. */
  readonly privateGroup: string
  /**
   * Which socket receives: `"sized"` (created and sized by the daemon,
   * `--allow-ffi`) or `"deno"` (`Deno.listenDatagram`, the system's default
   * buffer).
   */
  readonly socket: "sized" | "deno"
  /** Why the sized socket is not used (with `socket: "deno"`). */
  readonly fallbackReason?: string
  /** A snapshot of the totals. */
  readonly stats: () => UdpIngressStats
}

/**
 * The UDP ingress metrics, each tagged with `group`:
 * `spreadfx_daemon_udp_datagrams_in`, `spreadfx_daemon_udp_datagrams_delivered`
 * and `spreadfx_daemon_udp_datagrams_dropped` (tagged `reason`: `oversize`, `empty`, or
 * `kernel` for what the kernel dropped before the daemon saw it, on Linux).
 *
 * @since 0.1.0
 * @category metrics
 */
export const UdpIngressMetrics: {
  readonly received: Metric.Metric.Counter<number>
  readonly delivered: Metric.Metric.Counter<number>
  readonly dropped: Metric.Metric.Counter<number>
} = {
  received: Metric.counter("spreadfx_daemon_udp_datagrams_in", { description: "UDP datagrams received" }),
  delivered: Metric.counter("spreadfx_daemon_udp_datagrams_delivered", {
    description: "UDP datagrams multicast into their group",
  }),
  dropped: Metric.counter("spreadfx_daemon_udp_datagrams_dropped", { description: "UDP datagrams dropped" }),
}

/**
 * The `drops` column of the kernel's table of UDP sockets for the socket
 * bound to `host:port`, or `undefined` when it cannot be read (not Linux, no
 * read permission — checked with `querySync`, so never a prompt).
 */
const kernelDrops = (host: string, port: number): number | undefined => {
  if (Deno.build.os !== "linux") return undefined
  const v6 = host.includes(":")
  const file = v6 ? "/proc/net/udp6" : "/proc/net/udp"
  try {
    if (Deno.permissions.querySync({ name: "read", path: file }).state !== "granted") return undefined
    const portHex = port.toString(16).toUpperCase().padStart(4, "0")
    // An IPv4 address as the kernel prints it: the 32-bit word in host
    // (little-endian here) order, e.g. 127.0.0.1 as 0100007F.
    const quad = /^\d+\.\d+\.\d+\.\d+$/.test(host)
      ? host.split(".").reverse().map((b) => Number(b).toString(16).toUpperCase().padStart(2, "0")).join("")
      : undefined
    for (const line of Deno.readTextFileSync(file).split("\n").slice(1)) {
      const f = line.trim().split(/\s+/)
      if (f.length < 13) continue
      const [addr, p] = f[1].split(":")
      if (p !== portHex || (quad !== undefined && addr !== quad)) continue
      const drops = Number(f[f.length - 1])
      return Number.isFinite(drops) ? drops : undefined
    }
  } catch {
    // not readable: unknown
  }
  return undefined
}

/** The largest UDP payload over IPv4. */
const MAX_UDP_PAYLOAD = 65507

/**
 * Opens one ingress: binds the UDP socket, registers the ingress's private
 * name with the engine, and relays datagrams until the scope closes (which
 * closes the socket and removes the name).
 *
 * @since 0.1.0
 * @category constructors
 */
export const startUdpIngress = (
  engine: Engine,
  reserved: Set<string>,
  daemonName: string,
  config: UdpIngressConfig,
): Effect.Effect<UdpIngress, DaemonError, Scope.Scope> =>
  Effect.gen(function* () {
    const host = config.host ?? "127.0.0.1"
    const invalid = (detail: string) => new DaemonError({ reason: "InvalidConfig", detail: `udpIngress: ${detail}` })
    const service = config.service ?? "Fifo"
    const messType = config.messType ?? 0
    const maxBytes = config.maxBytes ?? MAX_UDP_PAYLOAD
    if (!Number.isInteger(config.port) || config.port < 0 || config.port > 65535) {
      return yield* invalid(`port ${config.port} is outside 0..65535`)
    }
    const badGroup = validateGroupName(config.group)
    if (badGroup !== undefined) return yield* invalid(`group "${config.group}": ${badGroup.detail}`)
    if (!Number.isInteger(maxBytes) || maxBytes < 1 || maxBytes + MAX_GROUP_NAME > MAX_MESSAGE_PAYLOAD) {
      return yield* invalid(`maxBytes ${maxBytes} is outside 1..${MAX_MESSAGE_PAYLOAD - MAX_GROUP_NAME}`)
    }
    const probe = validateMulticast({
      privateGroup: "#x#y",
      service,
      groups: [config.group],
      messType,
      data: new Uint8Array(0),
    })
    if (probe !== undefined) return yield* invalid(probe.detail)
    const recvBufferBytes = config.recvBufferBytes ?? DEFAULT_UDP_RECV_BUFFER
    if (!Number.isInteger(recvBufferBytes) || recvBufferBytes < 1) {
      return yield* invalid(`recvBufferBytes ${recvBufferBytes} must be a positive integer`)
    }
    const listenFailed = (detail: string, cause?: unknown) =>
      new DaemonError({
        reason: "ListenFailed",
        detail: `cannot listen for UDP on ${host}:${config.port}${detail}`,
        cause,
      })
    const fallbackReason = ffiUnavailable(host)
    let sized: SizedUdpSocket | undefined
    let deno: Deno.DatagramConn | undefined
    let closing = false
    if (fallbackReason === undefined) {
      sized = yield* Effect.acquireRelease(
        Effect.suspend(() => {
          const r = openSizedUdp(host, config.port, recvBufferBytes)
          return typeof r === "string" ? Effect.fail(listenFailed(`: ${r}`)) : Effect.succeed(r)
        }),
        (u) => Effect.sync(() => u.close()),
      )
    } else {
      if (typeof Deno.listenDatagram !== "function") {
        return yield* invalid(
          `Deno.listenDatagram is unavailable: run Deno with --unstable-net (or, on Linux, --allow-ffi: ${fallbackReason})`,
        )
      }
      deno = yield* Effect.acquireRelease(
        Effect.try({
          try: () => Deno.listenDatagram({ transport: "udp", hostname: host, port: config.port }),
          catch: (cause) => listenFailed(cause instanceof Error ? `: ${cause.message}` : "", cause),
        }),
        (s) =>
          Effect.sync(() => {
            closing = true
            try {
              s.close()
            } catch {
              // already closed
            }
          }),
      )
    }
    const port = sized !== undefined ? sized.port : (deno?.addr as Deno.NetAddr).port
    const name = config.name ?? `udp-${port}`
    const badName = validatePrivateName(name)
    if (badName !== undefined) return yield* invalid(`name "${name}": ${badName.detail}`)
    if (name.length === 0) return yield* invalid("name is empty")
    if (reserved.has(name)) return yield* invalid(`private name "${name}" is already taken`)
    const privateGroup = privateGroupName(name, daemonName)

    // The engine's view of the ingress: it never receives (what is sent to
    // its private group is dropped) and is never cut off.
    const session: EngineSession = {
      privateName: name,
      privateGroup,
      membership: false,
      offer: (): OfferResult => "Queued",
      cutOff: () => {},
    }
    yield* Effect.acquireRelease(
      Effect.sync(() => {
        reserved.add(name)
        engine.add(session)
      }),
      () =>
        Effect.sync(() => {
          engine.remove(session)
          reserved.delete(name)
        }),
    )

    // One frame layout for every datagram: header + group name + data;
    // only the data length and the data change.
    const template = encodeMulticast({
      privateGroup,
      service,
      groups: [config.group],
      messType,
      data: new Uint8Array(0),
    })
    const type = serviceLevelBits[service]
    const hint = hintOf(messType, true)
    const stats = { received: 0, delivered: 0, droppedOversize: 0, droppedEmpty: 0 }
    const tags = (m: Metric.Metric.Counter<number>) => Metric.tagged(m, "group", config.group)
    const receivedMetric = tags(UdpIngressMetrics.received)
    const deliveredMetric = tags(UdpIngressMetrics.delivered)
    const oversizeMetric = Metric.tagged(tags(UdpIngressMetrics.dropped), "reason", "oversize")
    const emptyMetric = Metric.tagged(tags(UdpIngressMetrics.dropped), "reason", "empty")
    const kernelMetric = Metric.tagged(tags(UdpIngressMetrics.dropped), "reason", "kernel")
    const head = template.length

    // Synchronous, no Effect per datagram: the metrics follow the counts
    // once per batch (see `flush`).
    const relay = (data: Uint8Array): void => {
      stats.received++
      if (data.length === 0) {
        stats.droppedEmpty++
        return
      }
      if (data.length > maxBytes) {
        stats.droppedOversize++
        return
      }
      const bytes = new Uint8Array(head + data.length)
      bytes.set(template)
      bytes.set(data, head)
      new DataView(bytes.buffer).setUint32(44, data.length, true)
      engine.multicast(
        session,
        new Frame(bytes, type, true, 1, hint, true, data.length, 0, HEADER_SIZE),
        false,
      )
      stats.delivered++
    }
    const flushed = { received: 0, delivered: 0, droppedOversize: 0, droppedEmpty: 0 }
    const flush = Effect.suspend(() => {
      const d = {
        received: stats.received - flushed.received,
        delivered: stats.delivered - flushed.delivered,
        oversize: stats.droppedOversize - flushed.droppedOversize,
        empty: stats.droppedEmpty - flushed.droppedEmpty,
      }
      Object.assign(flushed, stats)
      return Effect.all([
        d.received > 0 ? Metric.incrementBy(receivedMetric, d.received) : Effect.void,
        d.delivered > 0 ? Metric.incrementBy(deliveredMetric, d.delivered) : Effect.void,
        d.oversize > 0 ? Metric.incrementBy(oversizeMetric, d.oversize) : Effect.void,
        d.empty > 0 ? Metric.incrementBy(emptyMetric, d.empty) : Effect.void,
      ], { discard: true })
    })

    const kernelDropped = (): number | undefined => sized !== undefined ? sized.kernelDrops() : kernelDrops(host, port)

    if (sized !== undefined) {
      const runSync = Runtime.runSync(yield* Effect.runtime<never>())
      const u = sized
      yield* Effect.forkScoped(Effect.promise(() =>
        u.run(
          relay,
          () => runSync(flush),
          (message) => runSync(Effect.logWarning(`UDP ingress ${host}:${port}: receive failed: ${message}`)),
        )
      ))
    } else if (deno !== undefined) {
      const socket = deno
      // Large enough for any UDP datagram, so none is silently truncated.
      const buffer = new Uint8Array(65536)
      const loop = Effect.gen(function* () {
        while (true) {
          const r = yield* Effect.either(Effect.tryPromise(() => socket.receive(buffer)))
          if (r._tag === "Left") {
            if (closing) return
            // A receive error on an open socket (an ICMP report, say) is
            // logged and the loop goes on after a pause.
            yield* Effect.logWarning(`UDP ingress ${host}:${port}: receive failed: ${String(r.left.error)}`)
            yield* Effect.sleep(10)
            continue
          }
          relay(r.right[0])
          yield* flush
        }
      })
      yield* Effect.forkScoped(loop)
      yield* Effect.logWarning(
        `UDP ingress ${host}:${port} uses Deno's UDP socket (${fallbackReason}): its receive buffer is the ` +
          "system default (net.core.rmem_default), so a burst larger than that is dropped by the kernel. " +
          "Run the daemon with --allow-ffi (Linux) for a buffer of up to net.core.rmem_max.",
      )
    }
    // The kernel's drops, once a second, into the metric.
    let kernelSeen = kernelDropped() ?? 0
    yield* Effect.forkScoped(Effect.forever(Effect.zipRight(
      Effect.sleep(1000),
      Effect.suspend(() => {
        const now = kernelDropped()
        if (now === undefined || now <= kernelSeen) return Effect.void
        const delta = now - kernelSeen
        kernelSeen = now
        return Metric.incrementBy(kernelMetric, delta)
      }),
    )))
    yield* Effect.logDebug(`UDP ingress ${host}:${port} relays into "${config.group}" as ${privateGroup}`)
    return {
      host,
      port,
      group: config.group,
      privateGroup,
      socket: sized !== undefined ? "sized" : "deno",
      ...(fallbackReason === undefined ? {} : { fallbackReason }),
      stats: () => {
        const k = kernelDropped()
        const withDrops = k === undefined ? { ...stats } : { ...stats, droppedByKernel: k }
        return sized === undefined ? withDrops : { ...withDrops, recvBufferBytes: sized.recvBufferBytes }
      },
    }
  })
