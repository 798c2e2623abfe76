/**
 * Why `connect` fails: {@link ConnectError}, its reasons, their Spread C API
 * result codes (`sp.h`), and the reject bytes a daemon answers with.
 *
 * @module
 */
import { type Cause, Data } from "effect"
import { ErrorCodes, type RejectCodeName } from "../../protocol/constants.ts"

/**
 * Why `connect` failed.
 *
 * - `IllegalSpread`: the daemon address is not in a Spread form.
 * - `IllegalName`: the requested private name breaks the naming rules
 *   (checked before dialling).
 * - `IllegalTime`: the connect or close timeout is not a positive duration.
 * - `IllegalOption`: another option is out of range (window, buffers, auth).
 * - `CouldNotConnect`: the socket could not be opened.
 * - `Timeout`: dialling plus the handshake took longer than `connectTimeout`.
 * - `ConnectionClosed`: the daemon closed the stream or sent a malformed
 *   handshake reply.
 * - `NotSpreadDaemon`: the peer answered with bytes no Spread daemon sends
 *   (an HTTP or NATS server, say); the detail quotes them.
 * - `RejectQuota` … `RejectAuth`: the daemon answered with that reject byte
 *   (`RejectAuth` also when the daemon does not offer a requested method).
 * - `RejectUnknown`: a negative reject byte this library does not know.
 * - `TlsUnknownAuthority`, `TlsNameMismatch`, `TlsCertificateRefused`,
 *   `TlsFailed` (with the `tls` option): the daemon's certificate is not
 *   issued by a trusted authority, does not carry the expected name, the
 *   daemon refused this client's certificate (or its absence), or another
 *   TLS failure.
 * - `PlainOnTlsPort`: a plain client on a TLS port (the peer answered with
 *   a TLS record): this port expects TLS.
 * - `TlsOnPlainPort`: a TLS client (the `tls` option) on a plain port (the
 *   peer answered with no TLS record): this port speaks plain Spread.
 *
 * @since 0.1.0
 * @category models
 */
export type ConnectErrorReason =
  | "IllegalSpread"
  | "IllegalName"
  | "IllegalTime"
  | "IllegalOption"
  | "CouldNotConnect"
  | "Timeout"
  | "ConnectionClosed"
  | "NotSpreadDaemon"
  | "RejectQuota"
  | "RejectNoName"
  | "RejectIllegalName"
  | "RejectNotUnique"
  | "RejectVersion"
  | "RejectAuth"
  | "RejectUnknown"
  | "TlsUnknownAuthority"
  | "TlsNameMismatch"
  | "TlsCertificateRefused"
  | "TlsFailed"
  | "PlainOnTlsPort"
  | "TlsOnPlainPort"

/**
 * The Spread C API result code of each {@link ConnectErrorReason}.
 *
 * `Timeout` maps to COULD_NOT_CONNECT, `IllegalOption` to ILLEGAL_SPREAD
 * (the C library's answer to a bad `SP_connect` argument) and `IllegalName`
 * to REJECT_ILLEGAL_NAME (what the daemon would have answered).
 * `RejectUnknown` reports the raw byte instead (see {@link ConnectError.code}).
 * The TLS failures map to COULD_NOT_CONNECT.
 *
 * @since 0.1.0
 * @category constants
 */
export const connectErrorCodes: { readonly [K in ConnectErrorReason]: number } = {
  IllegalSpread: ErrorCodes.ILLEGAL_SPREAD,
  IllegalName: ErrorCodes.REJECT_ILLEGAL_NAME,
  IllegalTime: ErrorCodes.ILLEGAL_TIME,
  IllegalOption: ErrorCodes.ILLEGAL_SPREAD,
  CouldNotConnect: ErrorCodes.COULD_NOT_CONNECT,
  Timeout: ErrorCodes.COULD_NOT_CONNECT,
  ConnectionClosed: ErrorCodes.CONNECTION_CLOSED,
  NotSpreadDaemon: ErrorCodes.CONNECTION_CLOSED,
  RejectQuota: ErrorCodes.REJECT_QUOTA,
  RejectNoName: ErrorCodes.REJECT_NO_NAME,
  RejectIllegalName: ErrorCodes.REJECT_ILLEGAL_NAME,
  RejectNotUnique: ErrorCodes.REJECT_NOT_UNIQUE,
  RejectVersion: ErrorCodes.REJECT_VERSION,
  RejectAuth: ErrorCodes.REJECT_AUTH,
  RejectUnknown: ErrorCodes.CONNECTION_CLOSED,
  TlsUnknownAuthority: ErrorCodes.COULD_NOT_CONNECT,
  TlsNameMismatch: ErrorCodes.COULD_NOT_CONNECT,
  TlsCertificateRefused: ErrorCodes.COULD_NOT_CONNECT,
  TlsFailed: ErrorCodes.COULD_NOT_CONNECT,
  PlainOnTlsPort: ErrorCodes.COULD_NOT_CONNECT,
  TlsOnPlainPort: ErrorCodes.COULD_NOT_CONNECT,
}

/**
 * The {@link ConnectErrorReason} for each handshake reject code a daemon
 * may send.
 *
 * @since 0.1.0
 * @category constants
 */
export const rejectReasons: { readonly [K in RejectCodeName]: ConnectErrorReason } = {
  REJECT_QUOTA: "RejectQuota",
  REJECT_NO_NAME: "RejectNoName",
  REJECT_ILLEGAL_NAME: "RejectIllegalName",
  REJECT_NOT_UNIQUE: "RejectNotUnique",
  REJECT_VERSION: "RejectVersion",
  REJECT_AUTH: "RejectAuth",
}

const rejectDetail: { readonly [K in RejectCodeName]: string } = {
  REJECT_QUOTA: "the daemon has no room for another session",
  REJECT_NO_NAME: "the daemon requires a private name",
  REJECT_ILLEGAL_NAME: "the daemon refused the private name as illegal",
  REJECT_NOT_UNIQUE: "the private name is already in use on this daemon",
  REJECT_VERSION: "the daemon refused this client's protocol version",
  REJECT_AUTH: "the daemon refused the authentication",
}

/**
 * The fields of {@link ConnectError}.
 *
 * @since 0.1.0
 * @category models
 */
export interface ConnectErrorFields {
  readonly reason: ConnectErrorReason
  /** The daemon as given (or as parsed). */
  readonly address: string
  readonly detail: string
  /** The raw reject byte (signed) when the daemon sent one. */
  readonly rejectCode?: number
  readonly cause?: unknown
}

/**
 * The tagged-error base of {@link ConnectError}, typed explicitly so the public
 * API has no inferred ("slow") types.
 *
 * @since 0.1.0
 * @category errors
 */
export const ConnectErrorBase: new (
  args: ConnectErrorFields,
) => Cause.YieldableError & { readonly _tag: "ConnectError" } & Readonly<ConnectErrorFields> = Data.TaggedError(
  "ConnectError",
)

/**
 * `connect` failed. `address` is the daemon as given (or as parsed).
 *
 * @since 0.1.0
 * @category errors
 */
export class ConnectError extends ConnectErrorBase {
  /**
   * The Spread C API result code (`sp.h`) for this failure.
   *
   * @since 0.1.0
   */
  get code(): number {
    return this.reason === "RejectUnknown" && this.rejectCode !== undefined
      ? this.rejectCode
      : connectErrorCodes[this.reason]
  }

  /**
   * A one-line description naming the daemon and the cause.
   *
   * @since 0.1.0
   */
  override get message(): string {
    return `Cannot connect to Spread daemon "${this.address}": ${this.reason}: ${this.detail}`
  }
}

/**
 * The {@link ConnectError} for a handshake reject byte (signed, e.g. -6).
 *
 * @since 0.1.0
 * @category constructors
 */
export const rejectError = (address: string, code: number, name: RejectCodeName | "Unknown"): ConnectError =>
  name === "Unknown"
    ? new ConnectError({
      reason: "RejectUnknown",
      address,
      rejectCode: code,
      detail: `the daemon sent the unknown reject code ${code}`,
    })
    : new ConnectError({ reason: rejectReasons[name], address, rejectCode: code, detail: rejectDetail[name] })
