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
  type JoinOptions,
  type OutgoingMessage,
} from "./connection.ts"
export {
  ConnectionError,
  connectionErrorCodes,
  type ConnectionErrorReason,
  RequestError,
  requestErrorCodes,
  type RequestErrorReason,
  type SpreadError,
} from "./core/errors.ts"
export { ConnectError, connectErrorCodes, type ConnectErrorReason, rejectReasons } from "./core/connect_error.ts"
export { type BackoffOptions, ConnectConfig, layerConfig, reconnectBackoff, windowConfig } from "./config/config.ts"
export {
  decodeEnvelope,
  decodeHeaders,
  encodeEnvelope,
  encodeHeaders,
  type Envelope,
  ENVELOPE_MAGIC,
  ENVELOPE_MAX_HEADER,
  ENVELOPE_MIN_HEADER,
  ENVELOPE_VERSION,
  type EnvelopeFields,
  type EnvelopeHeaders,
  type EnvelopeKind,
  EnvelopeKinds,
  hasChannelTag,
  HeaderFields,
  parseEnvelope,
} from "./features/envelope.ts"
export type { ConnectionEvent, ReconnectedEvent } from "./core/events.ts"
export type { ConsumerHealth } from "./core/inbound.ts"
export { type Discontinuity, isDiscontinuity } from "./core/discontinuity.ts"
export { ReceivedMessage } from "./core/message.ts"
export { isMembership, isRegular, isReject, isSelfLeave, isTransitional, text } from "./core/refinements.ts"
export {
  adaptiveWindow,
  type ConnectOptions,
  type DaemonAddress,
  fixedWindow,
  type FlowWindow,
  noWindow,
  randomPrivateName,
} from "./options.ts"
export {
  type FailedReply,
  type IncomingRequest,
  type Reply,
  type RequestManyOptions,
  type RequestOptions,
  type RespondOptions,
} from "./features/request.ts"
export {
  RequestTimeout,
  type RequestTimeoutFields,
  ResponderError,
  type ResponderErrorFields,
} from "./features/request_errors.ts"
export { ClientMetrics, type ClientMetricSet } from "./core/observability.ts"
export {
  json,
  type PayloadCodec,
  PayloadError,
  type PayloadErrorFields,
  type PayloadErrorReason,
  type PayloadMessageOptions,
  type PayloadSource,
} from "./features/schema.ts"
export { layer, Spread } from "./config/spread.ts"
export type { SubscribeOptions, Subscription } from "./features/subscribe.ts"
export type { TlsOptions } from "./session/tls.ts"
export type { GroupView } from "./core/views.ts"
export { DEFAULT_MAX_MESSAGE_BYTES, FRAGMENT_BYTES, FRAGMENT_HEADER, MAX_FRAGMENT_BYTES } from "./features/fragments.ts"
export {
  type Channel,
  type ChannelDefinition,
  type ChannelDelivery,
  ChannelError,
  type ChannelErrorFields,
  type ChannelErrorReason,
  type ChannelOptions,
  type ChannelRequestInfo,
  type ChannelRequestOptions,
  type ChannelSchema,
  type ChannelSubscribeOptions,
  type DecodeErrorPolicy,
  defineChannel,
  defineRequestChannel,
  openChannel,
  openRequestChannel,
  type PublishOptions,
  type RequestChannel,
  type RequestChannelDefinition,
  type ServeOptions,
  spanOfTraceparent,
  traceparentOf,
} from "./features/channels/mod.ts"
export * from "./features/replicated/mod.ts"
