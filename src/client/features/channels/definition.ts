/**
 * Channel definitions — a group, a name (the channel tag in the envelope),
 * Schemas and a service level — and the one error type of channels.
 *
 * A definition is a plain value, shared by publishers and subscribers,
 * requesters and servers (typically in a module both import); it opens
 * nothing. `openChannel` / `openRequestChannel` bind it to a connection.
 *
 * @module
 */
import { type Cause, Data, Duration, type Schema } from "effect"
import type { ServiceLevel } from "../../../protocol/constants.ts"

/**
 * The schemas a request channel takes: any schema without requirements,
 * `Schema.Never` included (for a channel with no declared errors).
 *
 * @since 0.3.0
 * @category models
 */
export type ChannelSchema = Schema.Schema.AnyNoContext | Schema.Schema<never, never, never>

/**
 * A broadcast channel: values of `schema` published to `group`, tagged
 * `name` so several channels share one group.
 *
 * @since 0.3.0
 * @category models
 */
export interface ChannelDefinition<A, I = A> {
  /** Tells a broadcast channel from a request channel. */
  readonly _tag: "Channel"
  /** The channel tag (1..255 bytes of UTF-8), unique within the group. */
  readonly name: string
  /** The Spread group it travels over. */
  readonly group: string
  /** The schema of its messages; the wire form is its encoded form as UTF-8 JSON. */
  readonly schema: Schema.Schema<A, I, never>
  /** Service level of its messages. */
  readonly service: ServiceLevel
}

/**
 * A request/reply channel: requests of `request`, answered with `success`
 * or failed with one of `error` (tagged errors, e.g. `Schema.TaggedError`).
 *
 * @since 0.3.0
 * @category models
 */
export interface RequestChannelDefinition<
  Rq extends ChannelSchema,
  S extends ChannelSchema,
  E extends ChannelSchema,
> {
  /** Tells a request channel from a broadcast channel. */
  readonly _tag: "RequestChannel"
  /** The channel tag (1..255 bytes of UTF-8), unique within the group. */
  readonly name: string
  /** The Spread group the servers join. */
  readonly group: string
  /** The schema of a request. */
  readonly request: Rq
  /** The schema of a successful reply. */
  readonly success: S
  /** The schema of the declared errors (`Schema.Never` when there are none). */
  readonly error: E
  /** Service level of requests and replies. */
  readonly service: ServiceLevel
  /** How long `request` waits for the reply by default. */
  readonly timeout: Duration.Duration
}

/**
 * Defines a broadcast channel; the service level is `"Agreed"` by default.
 *
 * @since 0.3.0
 * @category constructors
 */
export const defineChannel = <A, I>(options: {
  readonly name: string
  readonly group: string
  readonly schema: Schema.Schema<A, I, never>
  readonly service?: ServiceLevel
}): ChannelDefinition<A, I> => ({
  _tag: "Channel",
  name: options.name,
  group: options.group,
  schema: options.schema,
  service: options.service ?? "Agreed",
})

/**
 * Defines a request/reply channel; the service level is `"Agreed"` and the
 * timeout 5 seconds by default.
 *
 * @since 0.3.0
 * @category constructors
 */
export const defineRequestChannel = <
  Rq extends ChannelSchema,
  S extends ChannelSchema,
  E extends ChannelSchema,
>(options: {
  readonly name: string
  readonly group: string
  readonly request: Rq
  readonly success: S
  readonly error: E
  readonly service?: ServiceLevel
  readonly timeout?: Duration.DurationInput
}): RequestChannelDefinition<Rq, S, E> => ({
  _tag: "RequestChannel",
  name: options.name,
  group: options.group,
  request: options.request,
  success: options.success,
  error: options.error,
  service: options.service ?? "Agreed",
  timeout: Duration.decode(options.timeout ?? "5 seconds"),
})

/**
 * What went wrong on a channel:
 *
 * - `Encode`: a value does not satisfy the channel's schema (nothing sent);
 * - `Decode`: a received message, request or reply of the channel is not
 *   UTF-8 JSON of the schema's encoded form;
 * - `Responder`: the server answered with an error that is not one of the
 *   declared errors (a plain-text error reply, say from a plain `respond`);
 * - `Name`: the channel's name is empty or longer than 255 bytes of UTF-8.
 *
 * @since 0.3.0
 * @category models
 */
export type ChannelErrorReason = "Encode" | "Decode" | "Responder" | "Name"

/**
 * The fields of {@link ChannelError}.
 *
 * @since 0.3.0
 * @category models
 */
export interface ChannelErrorFields {
  /** Which way it failed. */
  readonly reason: ChannelErrorReason
  /** The channel's name. */
  readonly channel: string
  /** The channel's group. */
  readonly group: string
  /** What did not fit, or the responder's reason. */
  readonly detail: string
  /** The sender of the message that did not decode, when there is one. */
  readonly sender?: string
  /** The `ParseError` or UTF-8 error, when there is one. */
  readonly cause?: unknown
}

/**
 * The tagged-error base of {@link ChannelError}, typed explicitly so the
 * public API has no inferred ("slow") types.
 *
 * @since 0.3.0
 * @category errors
 */
export const ChannelErrorBase: new (
  args: ChannelErrorFields,
) => Cause.YieldableError & { readonly _tag: "ChannelError" } & Readonly<ChannelErrorFields> = Data.TaggedError(
  "ChannelError",
)

/**
 * A channel's value could not be encoded or decoded, or its server failed
 * in a way the channel does not declare.
 *
 * @since 0.3.0
 * @category errors
 */
export class ChannelError extends ChannelErrorBase {
  /**
   * One line: the channel, what failed, and why.
   *
   * @since 0.3.0
   */
  override get message(): string {
    const what = this.reason === "Encode"
      ? "Cannot encode a value"
      : this.reason === "Decode"
      ? `Cannot decode a message${this.sender === undefined ? "" : ` from "${this.sender}"`}`
      : this.reason === "Responder"
      ? "The responder failed with an undeclared error"
      : "Cannot use the channel name"
    return `${what} on channel "${this.channel}" (group "${this.group}"): ${this.detail}`
  }
}
