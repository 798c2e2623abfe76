/**
 * The embedded Spread daemon: a single-node, Spread-compatible daemon in
 * Deno, as a scoped Effect resource. Unchanged Spread clients (the C
 * library's spuser and spflooder, the Java and Python bindings) and this
 * library's own client connect to it.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as Daemon from "@spreadfx/spreadfx/daemon"
 *
 * Effect.runPromise(Effect.scoped(Effect.gen(function* () {
 *   const daemon = yield* Daemon.make({ port: 0, name: "localhost" })
 *   console.log(daemon.spreadName) // e.g. "40123@127.0.0.1"
 * })))
 * ```
 *
 * @module
 */
export { type AuthContext, type AuthMethod, type DaemonConfig, NullAuth, type ResolvedConfig } from "./config.ts"
export { type Daemon, type DaemonStats, layer, make, SpreadDaemon } from "./daemon.ts"
export { DaemonError, type DaemonErrorFields } from "./errors.ts"
export {
  DaemonMetrics,
  daemonMetrics,
  type DaemonMetricSet,
  type MetricsEndpoint,
  prometheusText,
  serveMetrics,
} from "./metrics.ts"
export { type PemSource, type TlsConfig } from "./tls_sessions.ts"
export {
  DEFAULT_UDP_RECV_BUFFER,
  type UdpIngress,
  type UdpIngressConfig,
  UdpIngressMetrics,
  type UdpIngressStats,
} from "./udp_ingress.ts"
export { type PartitionControls, type VirtualDaemonInfo } from "./network/virtual.ts"
export type { ResolvedVirtualDaemon, VirtualDaemonConfig } from "./config.ts"
