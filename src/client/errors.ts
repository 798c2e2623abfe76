/**
 * Typed errors of the client, and their mapping to the Spread C API's
 * result codes (`sp.h`).
 *
 * - {@link ConnectError}: `connect` failed (bad options, no daemon, a
 *   handshake reject, a timeout).
 * - {@link ConnectionError}: the sticky error of an open connection — the
 *   first failure (EOF, socket error, undecodable bytes) or a local close.
 *   Once recorded, every later and every blocked call fails with it.
 * - {@link RequestError}: one call's arguments were invalid; nothing was sent
 *   and the connection is unaffected.
 *
 * @module
 */
import { type Cause, Data } from "effect"
import { ErrorCodes, type RejectCodeName } from "../protocol/constants.ts"
import type { ProtocolError } from "../protocol/errors.ts"

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

/**
 * Why an open connection stopped working.
 *
 * - `ConnectionClosed`: the daemon closed the stream (EOF), possibly in the
 *   middle of a message — a daemon kills slow or misbehaving sessions so.
 * - `NetError`: reading or writing the socket failed.
 * - `ProtocolViolation`: the daemon sent bytes that do not decode.
 * - `Closed`: the connection was closed locally (`close`, or its scope).
 *
 * @since 0.1.0
 * @category models
 */
export type ConnectionErrorReason = "ConnectionClosed" | "NetError" | "ProtocolViolation" | "Closed"

/**
 * The Spread C API result code of each {@link ConnectionErrorReason}: a
 * failed session is CONNECTION_CLOSED (the C library's answer for EOF and
 * socket errors), undecodable input is ILLEGAL_MESSAGE, and a closed session
 * is ILLEGAL_SESSION.
 *
 * @since 0.1.0
 * @category constants
 */
export const connectionErrorCodes: { readonly [K in ConnectionErrorReason]: number } = {
  ConnectionClosed: ErrorCodes.CONNECTION_CLOSED,
  NetError: ErrorCodes.CONNECTION_CLOSED,
  ProtocolViolation: ErrorCodes.ILLEGAL_MESSAGE,
  Closed: ErrorCodes.ILLEGAL_SESSION,
}

/**
 * The fields of {@link ConnectionError}.
 *
 * @since 0.1.0
 * @category models
 */
export interface ConnectionErrorFields {
  readonly reason: ConnectionErrorReason
  /** The session's private group, `#name#daemon`. */
  readonly privateGroup: string
  readonly detail: string
  readonly cause?: unknown
  /**
   * Set on the error a call gets while a connection opened with
   * `reconnect` opens a new session: it is not sticky, the call was not
   * carried out and may be retried once the connection is back. `reason`
   * is the lost session's.
   */
  readonly reconnecting?: boolean
}

/**
 * The tagged-error base of {@link ConnectionError}, typed explicitly so the public
 * API has no inferred ("slow") types.
 *
 * @since 0.1.0
 * @category errors
 */
export const ConnectionErrorBase: new (
  args: ConnectionErrorFields,
) => Cause.YieldableError & { readonly _tag: "ConnectionError" } & Readonly<ConnectionErrorFields> = Data.TaggedError(
  "ConnectionError",
)

/**
 * The sticky error of a connection: the first failure, reported by every
 * later call and by every call blocked when it happened.
 *
 * @since 0.1.0
 * @category errors
 */
export class ConnectionError extends ConnectionErrorBase {
  /**
   * The Spread C API result code (`sp.h`) for this failure.
   *
   * @since 0.1.0
   */
  get code(): number {
    return connectionErrorCodes[this.reason]
  }

  /**
   * A one-line description naming the session and the cause.
   *
   * @since 0.1.0
   */
  override get message(): string {
    return this.reconnecting === true
      ? `Spread session "${this.privateGroup}" was lost and is reconnecting: ${this.reason}: ${this.detail}`
      : `Spread session "${this.privateGroup}" is unusable: ${this.reason}: ${this.detail}`
  }
}

/**
 * Why a single call was refused before anything was sent.
 *
 * - `IllegalGroup`: a group name is empty, too long, has bytes outside
 *   `$`..`~`, or starts with `#` without being a private group.
 * - `NoGroups`: a multicast names no destination.
 * - `TooManyGroups`: a multicast names more than 43 destinations (what a real
 *   Spread 5.0.1 daemon routes correctly; see `REAL_DAEMON_MAX_GROUPS`).
 * - `MessageTooLong`: the payload exceeds `maxMessageBytes` (16 MiB by
 *   default). (A payload above what one Spread message carries, 143151 bytes
 *   with its groups, is sent in fragments; see `FRAGMENT_BYTES`.)
 * - `NeedsOrderedService`: a payload large enough to be fragmented was sent
 *   with `Unreliable` or `Reliable`, which do not keep a sender's messages in
 *   order; use `Fifo` or stronger.
 * - `IllegalMessType`: mess_type is not a 16-bit integer.
 * - `IllegalService`: the service level is not one of the six.
 * - `JoinRefused`: a join waiting for its confirmation (`{ confirmed: true }`)
 *   was refused by the daemon (a full group, or its policy).
 * - `NoMembership`: a join cannot be confirmed on a connection opened with
 *   `membership: false` (no membership message comes to it).
 *
 * @since 0.1.0
 * @category models
 */
export type RequestErrorReason =
  | "IllegalGroup"
  | "NoGroups"
  | "TooManyGroups"
  | "MessageTooLong"
  | "IllegalMessType"
  | "IllegalService"
  | "NeedsOrderedService"
  | "JoinRefused"
  | "NoMembership"

/**
 * The Spread C API result code of each {@link RequestErrorReason}.
 *
 * @since 0.1.0
 * @category constants
 */
export const requestErrorCodes: { readonly [K in RequestErrorReason]: number } = {
  IllegalGroup: ErrorCodes.ILLEGAL_GROUP,
  NoGroups: ErrorCodes.ILLEGAL_GROUP,
  TooManyGroups: ErrorCodes.MESSAGE_TOO_LONG,
  MessageTooLong: ErrorCodes.MESSAGE_TOO_LONG,
  IllegalMessType: ErrorCodes.ILLEGAL_MESSAGE,
  IllegalService: ErrorCodes.ILLEGAL_SERVICE,
  NeedsOrderedService: ErrorCodes.ILLEGAL_SERVICE,
  JoinRefused: ErrorCodes.ILLEGAL_GROUP,
  NoMembership: ErrorCodes.ILLEGAL_SESSION,
}

/**
 * The fields of {@link RequestError}.
 *
 * @since 0.1.0
 * @category models
 */
export interface RequestErrorFields {
  readonly reason: RequestErrorReason
  /** The operation: "join", "leave" or "multicast". */
  readonly operation: string
  readonly detail: string
  readonly cause?: unknown
}

/**
 * The tagged-error base of {@link RequestError}, typed explicitly so the public
 * API has no inferred ("slow") types.
 *
 * @since 0.1.0
 * @category errors
 */
export const RequestErrorBase: new (
  args: RequestErrorFields,
) => Cause.YieldableError & { readonly _tag: "RequestError" } & Readonly<RequestErrorFields> = Data.TaggedError(
  "RequestError",
)

/**
 * A call's arguments were invalid; nothing was sent.
 *
 * @since 0.1.0
 * @category errors
 */
export class RequestError extends RequestErrorBase {
  /**
   * The Spread C API result code (`sp.h`) for this failure.
   *
   * @since 0.1.0
   */
  get code(): number {
    return requestErrorCodes[this.reason]
  }

  /**
   * A one-line description naming the operation and the cause.
   *
   * @since 0.1.0
   */
  override get message(): string {
    return `Invalid ${this.operation}: ${this.reason}: ${this.detail}`
  }
}

/**
 * The {@link RequestError} for a codec validation failure.
 *
 * @since 0.1.0
 * @category constructors
 */
export const requestErrorOf = (operation: string, e: ProtocolError): RequestError =>
  new RequestError({ reason: requestReasonOf(e), operation, detail: e.detail, cause: e })

const requestReasonOf = (e: ProtocolError): RequestErrorReason => {
  switch (e.reason) {
    case "IllegalName":
      return "IllegalGroup"
    case "IllegalService":
      return "IllegalService"
    case "Oversize":
      return e.field === "groups" ? "TooManyGroups" : "MessageTooLong"
    case "Malformed":
      return e.field === "groups" ? "NoGroups" : "IllegalMessType"
    case "Truncated":
    case "Negative":
    case "Endian":
    case "IllegalHint":
      return "IllegalMessType"
  }
}

/**
 * Any error of this client.
 *
 * @since 0.1.0
 * @category errors
 */
export type SpreadError = ConnectError | ConnectionError | RequestError
