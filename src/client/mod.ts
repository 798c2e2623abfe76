/**
 * The Spread client: connections, operations, flow control, health events
 * and errors.
 *
 * @module
 */
export {
  connect,
  type Connection,
  type ConnectionState,
  type ConnectionStats,
  make,
  type OutgoingMessage,
} from "./connection.ts"
export {
  ConnectError,
  connectErrorCodes,
  type ConnectErrorReason,
  ConnectionError,
  connectionErrorCodes,
  type ConnectionErrorReason,
  rejectReasons,
  RequestError,
  requestErrorCodes,
  type RequestErrorReason,
  type SpreadError,
} from "./errors.ts"
export type { ConnectionEvent } from "./events.ts"
export type { ConsumerHealth } from "./inbound.ts"
export { isMembership, isRegular, isReject, isSelfLeave, isTransitional, ReceivedMessage, text } from "./message.ts"
export {
  adaptiveWindow,
  type ConnectOptions,
  type DaemonAddress,
  fixedWindow,
  type FlowWindow,
  noWindow,
  randomPrivateName,
} from "./options.ts"
export { layer, Spread, SpreadBase } from "./spread.ts"
export type { TlsOptions } from "./tls.ts"
export type { GroupView } from "./views.ts"
