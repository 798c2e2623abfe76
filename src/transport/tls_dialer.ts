/**
 * Dialling a daemon over TLS, and telling TLS failures apart.
 *
 * Deno's own API does the dialling: `Deno.connectTls` (trusted authorities,
 * a client certificate), or `Deno.connect` + `Deno.startTls` when the name to
 * verify is not the host dialled. One combination is left that Deno cannot
 * make: a client certificate together with such a name (`Deno.startTls`
 * takes no certificate). That one goes through `node:tls`, loaded on first
 * use (see `node_tls.ts`), so a client that never makes it never loads it,
 * and no Node types reach a consumer's type check.
 *
 * @module
 */
import { Effect, type Scope } from "effect"
import { formatAddress } from "../protocol/address.ts"
import { type ByteStream, fromConn } from "./conn.ts"
import { TransportError } from "./errors.ts"
import { type NodeTls, nodeTls, type NodeTlsSocket } from "./node_tls.ts"
import { fromNodeSocket } from "./tls_stream.ts"

/**
 * What a TLS dial presents and trusts. PEM strings.
 *
 * @since 0.1.0
 * @category models
 */
export interface TlsClientOptions {
  /** Authorities to trust for the daemon's certificate (instead of only the system's). */
  readonly caCerts?: ReadonlyArray<string> | undefined
  /** The client certificate to present (with `key`). */
  readonly cert?: string | undefined
  /** The client certificate's private key. */
  readonly key?: string | undefined
  /** The name the daemon's certificate must carry; the host dialled by default. */
  readonly serverName?: string | undefined
}

/**
 * Why a TLS handshake failed, as far as the client can tell.
 *
 * - `UnknownAuthority`: the daemon's certificate is not issued by a trusted authority.
 * - `NameMismatch`: the daemon's certificate does not carry the expected name.
 * - `CertificateRefused`: the daemon refused this client's certificate (or its absence).
 * - `NotTls`: the peer does not speak TLS (it answered with bytes that are
 *   no TLS record: a plain Spread daemon's reject, say).
 * - `Other`: another TLS failure.
 *
 * @since 0.1.0
 * @category models
 */
export type TlsFailure = "UnknownAuthority" | "NameMismatch" | "CertificateRefused" | "NotTls" | "Other"

const messageChain = (e: unknown): string => {
  const parts: Array<string> = []
  for (let c: unknown = e, i = 0; c !== undefined && c !== null && i < 5; i++) {
    if (c instanceof TransportError) {
      c = c.cause
      continue
    }
    if (c instanceof Error) {
      parts.push(c.message)
      c = c.cause
      continue
    }
    parts.push(String(c))
    break
  }
  return parts.join(": ")
}

/**
 * Classifies a failure seen while dialling or shaking hands over TLS
 * (the messages of Deno 2.9's rustls and of `node:tls`); `undefined` when it
 * does not look like a TLS failure.
 *
 * @since 0.1.0
 * @category utils
 */
export const classifyTlsFailure = (e: unknown): TlsFailure | undefined => {
  const m = messageChain(e)
  // rustls: "received corrupt message of type InvalidContentType"; node:tls
  // (OpenSSL): "wrong version number" / "packet length too long".
  if (/InvalidContentType|WRONG_VERSION_NUMBER|wrong version number|packet length too long/i.test(m)) return "NotTls"
  if (/UnknownIssuer|unknown ?ca|UNABLE_TO_(GET|VERIFY)|self[- ]signed|CERT_UNTRUSTED/i.test(m)) {
    return "UnknownAuthority"
  }
  if (/not valid for name|ALTNAME|hostname\/IP does not match|NotValidForName/i.test(m)) return "NameMismatch"
  if (/CertificateRequired|BadCertificate|certificate required|bad certificate|UnsupportedCertificate/i.test(m)) {
    return "CertificateRefused"
  }
  // A daemon that refuses a certificate from another issuer closes the
  // socket without an alert: the client sees an EOF without close_notify.
  if (/close_notify|UnexpectedEof|ECONNRESET/i.test(m)) return "CertificateRefused"
  if (/tls|certificate|handshake|alert/i.test(m)) return "Other"
  return undefined
}

type TcpAddress = { readonly hostname: string; readonly port: number }

// Completes the TLS handshake of a Deno TLS connection, so a problem with the
// daemon's certificate is a connect failure. The daemon's verdict on ours
// comes later, with the first read (TLS 1.3: the client finishes first).
const handshaken = (conn: Deno.TlsConn, label: string): Promise<ByteStream> =>
  conn.handshake().then(
    () => fromConn(conn, label),
    (e: unknown) => {
      conn.close()
      return Promise.reject(e)
    },
  )

// Deno's API: `connectTls` when the name to verify is the host dialled,
// else a TCP connect and `startTls` with the name (no client certificate).
const denoDial = (address: TcpAddress, options: TlsClientOptions, label: string): Promise<ByteStream> => {
  const caCerts = options.caCerts === undefined ? undefined : [...options.caCerts]
  if (options.serverName === undefined || options.serverName === address.hostname) {
    const cert = options.cert !== undefined && options.key !== undefined ? { cert: options.cert, key: options.key } : {}
    return Deno.connectTls({ hostname: address.hostname, port: address.port, caCerts, ...cert }).then((conn) =>
      handshaken(conn, label)
    )
  }
  const hostname = options.serverName
  return Deno.connect({ hostname: address.hostname, port: address.port }).then((tcp) => {
    tcp.setNoDelay(true)
    return Deno.startTls(tcp, { hostname, caCerts }).then((conn) => handshaken(conn, label), (e: unknown) => {
      try {
        tcp.close()
      } catch {
        // consumed by startTls
      }
      return Promise.reject(e)
    })
  })
}

// node:tls, for a client certificate with a server name other than the host.
const nodeDial = (
  tls: NodeTls,
  address: TcpAddress,
  options: TlsClientOptions,
  label: string,
  started: (socket: NodeTlsSocket) => void,
): Promise<ByteStream> =>
  new Promise<ByteStream>((ok, ko) => {
    const socket = tls.connect({
      host: address.hostname,
      port: address.port,
      servername: options.serverName ?? address.hostname,
      ...(options.caCerts === undefined ? {} : { ca: options.caCerts }),
      ...(options.cert === undefined ? {} : { cert: options.cert }),
      ...(options.key === undefined ? {} : { key: options.key }),
    })
    started(socket)
    const onError = (e: Error) => {
      socket.destroy()
      ko(e)
    }
    socket.once("error", onError)
    socket.once("secureConnect", () => {
      socket.off("error", onError)
      socket.setNoDelay(true)
      ok(fromNodeSocket(socket, label))
    })
  })

/**
 * Dials a daemon over TLS and completes the TLS handshake; the scope closes
 * the stream. Interruptible at any moment (bound it with a timeout); a
 * socket that connects after the caller gave up is closed at once.
 *
 * @since 0.1.0
 * @category constructors
 */
export const dialTls = (
  address: TcpAddress,
  options: TlsClientOptions,
): Effect.Effect<ByteStream, TransportError, Scope.Scope> => {
  const label = formatAddress({ _tag: "Tcp", ...address })
  const connectFailed = (cause: unknown) => new TransportError({ reason: "ConnectFailed", address: label, cause })
  const viaNode = options.cert !== undefined && options.serverName !== undefined &&
    options.serverName !== address.hostname
  const open = (tls: NodeTls | undefined) =>
    Effect.async<ByteStream, TransportError>((resume) => {
      let gaveUp = false
      // The node socket, destroyed if the caller gives up before it connects
      // (Deno's connects take no abort signal: a connection they make late
      // is closed once it is there).
      let connecting: NodeTlsSocket | undefined
      const pending = tls === undefined
        ? denoDial(address, options, label)
        : nodeDial(tls, address, options, label, (s) => connecting = s)
      pending.then(
        (stream) => {
          connecting = undefined
          if (gaveUp) Effect.runSync(stream.close)
          else resume(Effect.succeed(stream))
        },
        (cause) => {
          if (!gaveUp) resume(Effect.fail(connectFailed(cause)))
        },
      )
      return Effect.sync(() => {
        gaveUp = true
        connecting?.destroy()
      })
    })
  const opened = viaNode ? Effect.flatMap(Effect.mapError(nodeTls, connectFailed), open) : open(undefined)
  return Effect.uninterruptibleMask((restore) =>
    Effect.flatMap(restore(opened), (stream) => Effect.as(Effect.addFinalizer(() => stream.close), stream))
  )
}
