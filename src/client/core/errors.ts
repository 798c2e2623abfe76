/**
 * Typed errors of the client, and their mapping to the Spread C API's
 * result codes (`sp.h`).
 *
 * - {@link ConnectError} (connect_error.ts): `connect` failed (bad options,
 *   no daemon, a handshake reject, a timeout).
 * - {@link ConnectionError}: the sticky error of an open connection — the
 *   first failure (EOF, socket error, undecodable bytes) or a local close.
 *   Once recorded, every later and every blocked call fails with it.
 * - {@link RequestError}: one call's arguments were invalid; nothing was sent
 *   and the connection is unaffected.
 *
 * @module
 */
import { type Cause, Data } from "effect"
import { ErrorCodes } from "../../protocol/constants.ts"
import type { ProtocolError } from "../../protocol/errors.ts"
import type { ConnectError } from "./connect_error.ts"

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
