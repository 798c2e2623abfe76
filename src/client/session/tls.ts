/**
 * TLS for the client: the options, their checks, and the mapping of TLS
 * failures to typed {@link ConnectError}s.
 *
 * @module
 */
import { Effect, type Scope } from "effect"
import type { Address } from "../../protocol/address.ts"
import type { ByteStream } from "../../transport/conn.ts"
import type { TransportError } from "../../transport/errors.ts"
import { classifyTlsFailure } from "../../transport/tls_dialer.ts"
import type { Transport } from "../../transport/transport.ts"
import { ConnectError } from "../core/connect_error.ts"

/**
 * TLS options of `connect`. PEM strings.
 *
 * @since 0.1.0
 * @category models
 */
export interface TlsOptions {
  /**
   * Authorities to trust for the daemon's certificate, in addition to the
   * system's roots.
   */
  readonly caCerts?: ReadonlyArray<string>
  /** A client certificate to present (with `key`), for daemons that ask for one. */
  readonly cert?: string
  /** The private key of `cert`. */
  readonly key?: string
  /** The name the daemon's certificate must carry; the host dialled by default. */
  readonly serverName?: string
}

/**
 * Checks TLS options against the address: TLS runs over TCP only, and a
 * certificate goes with its key.
 *
 * @since 0.1.0
 * @category constructors
 */
export const checkTlsOptions = (tls: TlsOptions, address: Address, label: string): ConnectError | undefined => {
  const bad = (detail: string) => new ConnectError({ reason: "IllegalOption", address: label, detail })
  if (address._tag !== "Tcp") return bad("tls needs a TCP address (<port>@<host>), not a Unix socket")
  if ((tls.cert === undefined) !== (tls.key === undefined)) return bad("tls.cert and tls.key go together")
  for (const [k, v] of [["cert", tls.cert], ["key", tls.key], ...(tls.caCerts ?? []).map((c) => ["caCerts", c])]) {
    if (v !== undefined && !v.includes("-----BEGIN ")) return bad(`tls.${k} is not PEM text`)
  }
  if (tls.serverName !== undefined && tls.serverName.length === 0) return bad("tls.serverName is empty")
  return undefined
}

const tlsDetail = {
  NotTls: "this port speaks plain Spread, not TLS: connect without the tls option, or to the daemon's TLS port",
  UnknownAuthority: "the daemon's certificate is not issued by a trusted authority (tls.caCerts)",
  NameMismatch: "the daemon's certificate does not carry the expected name (tls.serverName)",
  CertificateRefused: "the daemon refused this client's certificate, or its absence (tls.cert, tls.key)",
  Other: "the TLS handshake failed",
} as const

const tlsReason = {
  NotTls: "TlsOnPlainPort",
  UnknownAuthority: "TlsUnknownAuthority",
  NameMismatch: "TlsNameMismatch",
  CertificateRefused: "TlsCertificateRefused",
  Other: "TlsFailed",
} as const

/**
 * The typed {@link ConnectError} for a failure seen on a TLS connection
 * before the Spread handshake completed, or `undefined` when it is not a
 * TLS failure.
 *
 * With TLS 1.3 the client finishes its side of the handshake before the
 * daemon has checked the client certificate, so a refused certificate shows
 * up as the first read failing (an alert, or an EOF without close_notify).
 *
 * @since 0.1.0
 * @category constructors
 */
export const tlsConnectError = (label: string, e: unknown): ConnectError | undefined => {
  // The failure itself, not the handshake's words around it.
  const cause = e instanceof ConnectError ? e.cause : e
  // A clean EOF in the Spread handshake: a daemon answers every connect
  // message (an auth list or a reject byte), so over TLS a silent close is
  // the TLS layer turning the client away (node:tls closes without an alert
  // for a certificate from another issuer or a subject not allowed).
  if (e instanceof ConnectError && e.reason === "ConnectionClosed" && cause === undefined) {
    return new ConnectError({
      reason: "TlsCertificateRefused",
      address: label,
      detail:
        `${tlsDetail.CertificateRefused}: the daemon closed the TLS session without a Spread answer (${e.detail})`,
    })
  }
  const kind = classifyTlsFailure(cause)
  if (kind === undefined) return undefined
  const message = cause instanceof Error ? cause.message : String(cause)
  return new ConnectError({
    reason: tlsReason[kind],
    address: label,
    detail: `${tlsDetail[kind]}: ${message}`,
    cause,
  })
}

/**
 * Dials `address` over TLS with `transport`; failures are typed
 * {@link ConnectError}s.
 *
 * @since 0.1.0
 * @category constructors
 */
export const dialTlsFor = (
  transport: Transport,
  address: { readonly hostname: string; readonly port: number },
  label: string,
  tls: TlsOptions,
): Effect.Effect<ByteStream, ConnectError, Scope.Scope> =>
  transport.dialTls(address, tls).pipe(
    Effect.mapError((e: TransportError) =>
      tlsConnectError(label, e) ??
        new ConnectError({
          reason: "CouldNotConnect",
          address: label,
          detail: e.cause instanceof Error ? e.cause.message : e.message,
          cause: e,
        })
    ),
  )
