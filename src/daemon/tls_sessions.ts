/**
 * TLS sessions for the daemon: the configuration and the listener. A TLS
 * connection, once its handshake (and client-certificate check) is done, is
 * a `ByteStream` served by exactly the same session code as a TCP or Unix
 * connection. Also the other side of the coin: a TLS client that reached a
 * plain port is told apart and logged as such.
 *
 * @module
 */
import { Effect, type Scope } from "effect"
import { formatAddress } from "../protocol/address.ts"
import { ErrorCodes } from "../protocol/constants.ts"
import { encodeReject } from "../protocol/handshake.ts"
import type { ByteStream } from "../transport/conn.ts"
import type { TransportError } from "../transport/errors.ts"
import type { TlsListener } from "../transport/tls_listener.ts"
import { Transport } from "../transport/transport.ts"
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
    const transport = yield* Transport
    const listener = yield* transport.listenTls({ hostname: host, port: config.port }, {
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

/**
 * Whether `chunk` opens with a TLS ClientHello: a handshake record (type
 * 22) of version 3.x. No Spread connect message starts so: its first byte
 * is the client's major version (3 to 5).
 *
 * @since 0.2.0
 * @category utils
 */
export const isTlsClientHello = (chunk: Uint8Array): boolean => chunk.length >= 2 && chunk[0] === 0x16 && chunk[1] === 3

// What a plain port answers a TLS client: the reject a Spread daemon sends
// for a connect message it cannot read (the client's TLS layer reports
// bytes that are no TLS record, which it reads as "this port speaks plain
// Spread").
const PLAIN_PORT_ANSWER = encodeReject(ErrorCodes.REJECT_ILLEGAL_NAME)

/**
 * A connection accepted on a plain (TCP or Unix) port, watched for a TLS
 * client: when its first bytes are a TLS ClientHello, the daemon logs
 * (Warning) `Refused TLS client <peer> on the plain port <port>: this port
 * speaks plain Spread, not TLS`, answers with a Spread reject and the
 * handshake sees an EOF (so it logs nothing misleading about the bytes).
 * Every other stream goes through untouched; after the first read the
 * wrapper only forwards.
 *
 * @since 0.2.0
 * @category constructors
 */
export const refuseTlsOnPlainPort = (
  stream: ByteStream,
  port: string,
  warn: (message: string) => void,
): ByteStream => new PlainPortStream(stream, port, warn)

class PlainPortStream implements ByteStream {
  readonly #inner: ByteStream
  readonly #port: string
  // The daemon's logger: the handshake reads through readNow (a promise),
  // outside any fiber, so the warning is handed to the daemon's runtime.
  readonly #warn: (message: string) => void
  #first = true
  readonly address: string

  constructor(inner: ByteStream, port: string, warn: (message: string) => void) {
    this.#inner = inner
    this.#port = port
    this.#warn = warn
    this.address = inner.address
  }

  // The first chunk: passed on, or (a ClientHello) answered, logged and
  // turned into an EOF.
  #first_(chunk: Uint8Array | undefined): boolean {
    if (chunk === undefined) return false
    this.#first = false
    if (!isTlsClientHello(chunk)) return false
    this.#warn(
      `Refused TLS client ${this.address} on the plain port ${this.#port}: this port speaks plain Spread, not TLS`,
    )
    return true
  }

  get read(): Effect.Effect<Uint8Array | undefined, TransportError> {
    if (!this.#first) return this.#inner.read
    return Effect.flatMap(
      this.#inner.read,
      (chunk) =>
        this.#first_(chunk)
          ? Effect.as(Effect.ignore(this.#inner.write(PLAIN_PORT_ANSWER)), undefined)
          : Effect.succeed(chunk),
    )
  }

  readNow(): Promise<Uint8Array | undefined> {
    if (!this.#first) return this.#inner.readNow()
    return this.#inner.readNow().then((chunk) =>
      this.#first_(chunk) ? this.#inner.writeNow(PLAIN_PORT_ANSWER).then(() => undefined, () => undefined) : chunk
    )
  }

  write(bytes: Uint8Array): Effect.Effect<void, TransportError> {
    return this.#inner.write(bytes)
  }

  writeNow(bytes: Uint8Array): Promise<void> {
    return this.#inner.writeNow(bytes)
  }

  get close(): Effect.Effect<void> {
    return this.#inner.close
  }

  isClosed(): boolean {
    return this.#inner.isClosed()
  }
}
