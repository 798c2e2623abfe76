/**
 * Typed channels: a channel definition (group, channel tag, Schemas,
 * service level) bound to a connection gives `publish` / `subscribe`, or
 * `request` / `serve` with typed errors; opt-in W3C trace propagation in
 * the envelope. See docs/channels.md.
 *
 * @module
 */
export {
  type ChannelDefinition,
  ChannelError,
  type ChannelErrorFields,
  type ChannelErrorReason,
  type ChannelSchema,
  defineChannel,
  defineRequestChannel,
  type RequestChannelDefinition,
} from "./definition.ts"
export {
  type Channel,
  type ChannelDelivery,
  type ChannelOptions,
  type ChannelSubscribeOptions,
  type DecodeErrorPolicy,
  openChannel,
  type PublishOptions,
} from "./messages.ts"
export {
  type ChannelRequestInfo,
  type ChannelRequestOptions,
  openRequestChannel,
  type RequestChannel,
  type ServeOptions,
} from "./requests.ts"
export { spanOfTraceparent, traceparentOf } from "./trace.ts"
