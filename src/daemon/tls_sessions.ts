/**
 * TLS sessions for the daemon: the configuration and the listener. A TLS
 * connection, once its handshake (and client-certificate check) is done, is
 * a `ByteStream` served by exactly the same session code as a TCP or Unix
 * connection.
 *
 * @module
 */
import { Effect, type Scope } from "effect"
import { formatAddress } from "../transport/address.ts"
import { listenTls, type TlsListener } from "../transport/tls.ts"
import { DaemonError } from "./errors.ts"

/**
 * PEM text, or a file holding it.
 *
 * @since 0.1.0
 * @category models
 */
export type PemSource = string | { readonly path: string }

/**
 * TLS sessions beside the plain TCP port and the Unix socket.
 *
 * @since 0.1.0
 * @category models
 */
export interface TlsConfig {
  /** TCP port for TLS sessions; 0 picks a free one. */
  readonly port: number
  /** Interface to listen on. Default: the daemon's `host`. */
  readonly host?: string
  /** The daemon's certificate chain. */
  readonly cert: PemSource
  /** The daemon's private key. */
  readonly key: PemSource
  /**
   * Client-certificate authorities. When set, every TLS client must present
   * a certificate issued by one of them, verified during the TLS handshake;
   * a client without one, or with one from another issuer, is refused and
   * logged, and no Spread session is created.
   */
  readonly ca?: PemSource
  /**
   * With `ca`: the client certificate's subject common name (or a DNS
   * alternative name) must be one of these.
   */
  readonly allowSubjects?: ReadonlyArray<string>
}

const readPem = (what: string, source: PemSource): Effect.Effect<string, DaemonError> =>
  typeof source === "string"
    ? source.includes("-----BEGIN ")
      ? Effect.succeed(source)
      : Effect.fail(new DaemonError({ reason: "InvalidConfig", detail: `tls.${what} is not PEM text` }))
    : Effect.try({
      try: () => Deno.readTextFileSync(source.path),
      catch: (cause) =>
        new DaemonError({
          reason: "InvalidConfig",
          detail: `cannot read tls.${what} from "${source.path}"${cause instanceof Error ? `: ${cause.message}` : ""}`,
          cause,
        }),
    })

/**
 * Listens for TLS sessions and logs every refused client (at Warning: a
 * missing or untrusted client certificate, a subject not on the list, a
 * failed or slow TLS handshake, too many at once) until the scope closes.
 * TLS handshakes are bounded like Spread handshakes: `handshakeTimeoutMs`
 * each, `maxHandshakes` at once.
 *
 * @since 0.1.0
 * @category constructors
 */
export const listenTlsSessions = (
  config: TlsConfig,
  defaultHost: string,
  handshakeTimeoutMs: number,
  maxHandshakes: number,
): Effect.Effect<TlsListener, DaemonError, Scope.Scope> =>
  Effect.gen(function* () {
    const host = config.host ?? defaultHost
    if (!Number.isInteger(config.port) || config.port < 0 || config.port > 65535) {
      return yield* new DaemonError({ reason: "InvalidConfig", detail: `tls.port ${config.port} is outside 0..65535` })
    }
    if (config.allowSubjects !== undefined && config.ca === undefined) {
      return yield* new DaemonError({
        reason: "InvalidConfig",
        detail: "tls.allowSubjects needs tls.ca (without it no client certificate is asked for)",
      })
    }
    const cert = yield* readPem("cert", config.cert)
    const key = yield* readPem("key", config.key)
    const ca = config.ca === undefined ? undefined : yield* readPem("ca", config.ca)
    const listener = yield* listenTls({ hostname: host, port: config.port }, {
      cert,
      key,
      ca,
      allowSubjects: config.allowSubjects,
      handshakeTimeoutMs,
      maxHandshakes,
    }).pipe(
      Effect.mapError((e) =>
        new DaemonError({
          reason: "ListenFailed",
          detail: `cannot listen for TLS on ${formatAddress({ _tag: "Tcp", hostname: host, port: config.port })}${
            e.cause instanceof Error ? `: ${e.cause.message}` : ""
          }`,
          cause: e.cause,
        })
      ),
    )
    yield* Effect.forkScoped(
      Effect.forever(
        Effect.flatMap(listener.refused, (r) => Effect.logWarning(`Refused TLS client ${r.remote}: ${r.reason}`)),
      ),
    )
    return listener
  })
