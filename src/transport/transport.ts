/**
 * The {@link Transport} service: how the client dials a daemon and how the
 * daemon listens, as one swappable value. The default is the real sockets
 * (TCP, Unix, TLS), so `connect` and the daemon need nothing provided; a
 * test gives a daemon and its clients one {@link memoryTransport} instead
 * and no socket is opened.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { memoryTransport, Transport } from "./mod.ts"
 *
 * const program = Effect.gen(function* () {
 *   const transport = yield* Transport // the sockets, unless provided
 *   return transport.name
 * })
 * Effect.runSync(program) // "sockets"
 * Effect.runSync(Effect.provideService(program, Transport, memoryTransport())) // "memory"
 * ```
 *
 * @module
 */
import { Context, type Effect, Layer, type Scope } from "effect"
import type { Address } from "../protocol/address.ts"
import { type ByteStream, dial, listen, type Listener } from "./conn.ts"
import type { TransportError } from "./errors.ts"
import { dialTls, type TlsClientOptions } from "./tls_dialer.ts"
import { listenTls, type TlsListener, type TlsServerOptions } from "./tls_listener.ts"

/**
 * A TCP address: where TLS is spoken.
 *
 * @since 0.2.0
 * @category models
 */
export interface TcpAddress {
  readonly hostname: string
  readonly port: number
}

/**
 * Dialling and listening, for the client and the daemon. Every stream and
 * listener it makes belongs to the scope it was made in.
 *
 * @since 0.2.0
 * @category models
 */
export interface Transport {
  /** What this transport is (`"sockets"`, `"memory"`), for logs and tests. */
  readonly name: string
  /** Opens a stream to a TCP or Unix address. Interruptible at any moment. */
  readonly dial: (address: Address) => Effect.Effect<ByteStream, TransportError, Scope.Scope>
  /** Listens on a TCP or Unix address (TCP port 0 picks a free port). */
  readonly listen: (address: Address) => Effect.Effect<Listener, TransportError, Scope.Scope>
  /** Opens a stream over TLS and completes the TLS handshake. */
  readonly dialTls: (
    address: TcpAddress,
    options: TlsClientOptions,
  ) => Effect.Effect<ByteStream, TransportError, Scope.Scope>
  /** Listens for TLS; streams are handed out once their TLS handshake is done. */
  readonly listenTls: (
    address: TcpAddress,
    options: TlsServerOptions,
  ) => Effect.Effect<TlsListener, TransportError, Scope.Scope>
}

/**
 * The real thing: Deno's TCP and Unix sockets, TLS through `Deno.connectTls`
 * / `Deno.startTls` (and `node:tls` where Deno has no API: the listener that
 * asks for client certificates, a client certificate with a server name
 * other than the host).
 *
 * @since 0.2.0
 * @category constructors
 */
export const socketTransport: Transport = { name: "sockets", dial, listen, dialTls, listenTls }

/**
 * The transport in use: {@link socketTransport} unless one is provided
 * (`Effect.provideService(Transport, memoryTransport())`, or
 * `layerMemory`). A `Context.Reference`, so `connect` and the daemon
 * require nothing.
 *
 * @since 0.2.0
 * @category tags
 */
export const Transport: Context.Reference<Transport, Transport> = Context.Reference<Transport>()(
  "@spreadfx/spreadfx/Transport",
  { defaultValue: () => socketTransport },
)

/**
 * Provides {@link socketTransport} (what is used when nothing is provided).
 *
 * @since 0.2.0
 * @category layers
 */
export const layerSockets: Layer.Layer<never> = Layer.succeed(Transport, socketTransport)
