/**
 * Broadcast channels on a connection: `publish(value)` and a typed
 * `subscribe` stream, over the connection's own `multicast` and
 * `subscribe`.
 *
 * A channel message is an envelope of kind 4 (message) whose header fields
 * carry the channel tag and, with tracing on, the publisher's
 * `traceparent`; the body is the value's JSON. A subscription receives
 * every message of the group and keeps those tagged with its channel:
 * messages of other channels and plain messages of the group are passed
 * over (they are not failures).
 *
 * A message tagged with the channel whose body does not decode is handled
 * by the subscriber's `onDecodeError` policy:
 *
 * - `"fail"` (the default): the stream fails with a {@link ChannelError}
 *   (`reason: "Decode"`) after delivering every value before it;
 * - `"skip"`: the message is dropped and counted in `decodeFailures`.
 *
 * With `tracing: true`, each publish is a `spreadfx.channel.publish` span
 * (kind producer) whose traceparent travels in the envelope; each delivery
 * a `spreadfx.channel.deliver` span (kind consumer) starting its own trace
 * with a link to the publish (see trace.ts for why a link); the
 * subscription one long-lived `spreadfx.channel.subscribe` span with a
 * `spread.membership` event per view of the group. Attributes: the group,
 * channel, service level, sender, the view id and the message's place in
 * the group's total order within that view (for Agreed and Safe messages:
 * every member in the same view counts the same).
 *
 * @module
 */
import { Effect, Either, Option, Stream, type Tracer } from "effect"
import type { ServiceLevel } from "../../../protocol/constants.ts"
import type { ServerMessage } from "../../../protocol/server_messages.ts"
import type { ConnectionError, RequestError } from "../../core/errors.ts"
import type { Connection } from "../../model.ts"
import { encodeHeaders, hasChannelTag, parseEnvelope, readHeaders, writeEnvelope } from "../envelope.ts"
import type { SubscribeOptions } from "../subscribe.ts"
import { wireCodec } from "./codec.ts"
import { type ChannelDefinition, ChannelError } from "./definition.ts"
import { spanOfTraceparent, traceparentOf, viewIdOf } from "./trace.ts"

/**
 * Options of `openChannel` and `openRequestChannel`.
 *
 * @since 0.3.0
 * @category models
 */
export interface ChannelOptions {
  /**
   * Propagate and record traces (W3C traceparent in the envelope, spans
   * per publish, delivery, request and handling); off by default, when
   * channels make no span and write no trace context.
   */
  readonly tracing?: boolean
  /** A W3C `tracestate` to send with every message (vendor state); none by default. */
  readonly tracestate?: string
}

/**
 * Options of a channel's `publish`.
 *
 * @since 0.3.0
 * @category models
 */
export interface PublishOptions {
  /** 16-bit application message type; 0 by default. */
  readonly messType?: number
  /** Do not deliver a copy to the sender. */
  readonly selfDiscard?: boolean
}

/**
 * What a subscriber does with a message of its channel that does not
 * decode (see the module notes).
 *
 * @since 0.3.0
 * @category models
 */
export type DecodeErrorPolicy = "fail" | "skip"

/**
 * Options of a channel's `subscribe` and `deliveries`.
 *
 * @since 0.3.0
 * @category models
 */
export interface ChannelSubscribeOptions extends SubscribeOptions {
  /** `"fail"` (the default) or `"skip"`: see the module notes. */
  readonly onDecodeError?: DecodeErrorPolicy
}

/**
 * One value received on a channel, with where it came from.
 *
 * @since 0.3.0
 * @category models
 */
export interface ChannelDelivery<A> {
  /** The decoded value. */
  readonly value: A
  /** The publisher's private group. */
  readonly sender: string
  /** Service level it was sent with. */
  readonly service: ServiceLevel
  /** Its 16-bit application message type. */
  readonly messType: number
  /** The publisher's W3C traceparent, when it sent one. */
  readonly traceparent: string | undefined
  /**
   * With tracing on, the delivery's span (already ended): parent your
   * processing on it with `Effect.withParentSpan` to continue its trace.
   */
  readonly span: Option.Option<Tracer.Span>
}

/**
 * A broadcast channel bound to a connection.
 *
 * @since 0.3.0
 * @category models
 */
export interface Channel<A, I = unknown> {
  /** The definition it was opened with. */
  readonly definition: ChannelDefinition<A, I>
  /** Encodes `value` and multicasts it to the channel's group. */
  readonly publish: (
    value: A,
    options?: PublishOptions,
  ) => Effect.Effect<void, ConnectionError | RequestError | ChannelError>
  /** The channel's values, joining the group while it runs (see the module notes). */
  readonly subscribe: (
    options?: ChannelSubscribeOptions,
  ) => Stream.Stream<A, ConnectionError | RequestError | ChannelError>
  /** As `subscribe`, with each value's sender, service level and span. */
  readonly deliveries: (
    options?: ChannelSubscribeOptions,
  ) => Stream.Stream<ChannelDelivery<A>, ConnectionError | RequestError | ChannelError>
  /** Messages skipped so far because they did not decode (`onDecodeError: "skip"`). */
  readonly decodeFailures: Effect.Effect<number>
}

const NO_REPLY_TO = new Uint8Array(0)
const TOTAL_ORDER: ReadonlySet<ServiceLevel> = new Set<ServiceLevel>(["Agreed", "Safe"])

/**
 * The channel tag as extension bytes, or a `Name` failure.
 *
 * @since 0.3.0
 * @category encoding
 */
export const channelTagOf = (name: string, group: string): Either.Either<Uint8Array, ChannelError> => {
  const bytes = name.length === 0 ? undefined : encodeHeaders({ channel: name })
  return bytes === undefined
    ? Either.left(
      new ChannelError({ reason: "Name", channel: name, group, detail: "it must be 1 to 255 bytes of UTF-8" }),
    )
    : Either.right(bytes)
}

/** The view of the group a subscription is in, and the count of messages since. */
interface Position {
  viewId: string | undefined
  seq: number
}

/**
 * Binds a broadcast channel to a connection.
 *
 * @since 0.3.0
 * @category constructors
 */
export const openChannel = <A, I>(
  conn: Connection,
  definition: ChannelDefinition<A, I>,
  options: ChannelOptions = {},
): Channel<A, I> => {
  const { name, group, service } = definition
  const codec = wireCodec(definition.schema, name, group)
  const tag = channelTagOf(name, group)
  const tagBytes = new TextEncoder().encode(name)
  const tracing = options.tracing === true
  const tracestate = options.tracestate
  let decodeFailures = 0
  const attributes = {
    "messaging.system": "spread",
    "spread.group": group,
    "spread.channel": name,
    "spread.service": service,
  }

  const send = (extension: Uint8Array, body: Uint8Array, o: PublishOptions) =>
    conn.multicast({
      groups: group,
      data: writeEnvelope("Message", 0, 0, NO_REPLY_TO, extension, body),
      service,
      ...(o.messType === undefined ? {} : { messType: o.messType }),
      ...(o.selfDiscard === undefined ? {} : { selfDiscard: o.selfDiscard }),
    })

  const publish = (value: A, o: PublishOptions = {}) =>
    Effect.flatMap(
      Either.flatMap(tag, (t) => Either.map(codec.encode(value), (body) => [t, body] as const)),
      ([t, body]) =>
        tracing
          ? Effect.useSpan(
            "spreadfx.channel.publish",
            { kind: "producer", attributes, captureStackTrace: false },
            (span) => {
              const traceparent = traceparentOf(span)
              const extension = encodeHeaders({
                channel: name,
                ...(traceparent === undefined ? {} : { traceparent }),
                ...(tracestate === undefined ? {} : { tracestate }),
              }) ?? t
              return Effect.withParentSpan(send(extension, body, o), span)
            },
          )
          : send(t, body, o),
    )

  // One received message of the group: a delivery, a decode failure, or
  // nothing (not this channel's, or a membership change noted in `at`).
  const step = (m: ServerMessage, at: Position, onMembership: (m: ServerMessage) => void) => {
    if (m._tag === "Membership") {
      if (m.group === group) {
        at.viewId = viewIdOf(m.groupId)
        at.seq = 0
        onMembership(m)
      }
      return undefined
    }
    if (m._tag !== "Regular") return undefined
    at.seq++
    const data = m.data
    if (data[0] !== 0xff) return undefined
    const env = parseEnvelope(data)
    if (env === undefined || env.kind !== "Message") return undefined
    if (!hasChannelTag(data, env.replyTo.length, env.headerLength, tagBytes)) return undefined
    return {
      message: m,
      // Read (and made a string) only when the tag matched.
      traceparent: env.headerLength > 24 + env.replyTo.length + 2 + tagBytes.length
        ? readHeaders(data, env.replyTo.length, env.headerLength).traceparent
        : undefined,
      decoded: codec.decode(data.subarray(env.headerLength), m.sender),
    }
  }

  const deliveries = (
    o: ChannelSubscribeOptions = {},
  ): Stream.Stream<ChannelDelivery<A>, ConnectionError | RequestError | ChannelError> => {
    const skip = o.onDecodeError === "skip"
    const { onDecodeError: _, ...subscribeOptions } = o
    const source = conn.subscribe(group, subscribeOptions)
    if (!tracing) {
      return Stream.suspend((): Stream.Stream<ChannelDelivery<A>, ConnectionError | RequestError | ChannelError> => {
        const at: Position = { viewId: undefined, seq: 0 }
        const none = () => {}
        const eithers = Stream.filterMap(
          source,
          (m): Option.Option<Either.Either<ChannelDelivery<A>, ChannelError>> => {
            const s = step(m, at, none)
            if (s === undefined) return Option.none()
            if (Either.isLeft(s.decoded)) {
              if (skip) {
                decodeFailures++
                return Option.none()
              }
              return Option.some(Either.left(s.decoded.left))
            }
            const r = s.message
            if (r._tag !== "Regular") return Option.none()
            return Option.some(Either.right({
              value: s.decoded.right,
              sender: r.sender,
              service: r.service,
              messType: r.messType,
              traceparent: s.traceparent,
              span: Option.none(),
            }))
          },
        )
        // An Either is an Effect: no Effect is made per message.
        return Stream.mapEffect(eithers, (e): Effect.Effect<ChannelDelivery<A>, ChannelError> => e)
      })
    }
    return Stream.unwrapScoped(Effect.gen(function* () {
      const clock = yield* Effect.clock
      const life = yield* Effect.makeSpanScoped("spreadfx.channel.subscribe", { kind: "consumer", attributes })
      const at: Position = { viewId: undefined, seq: 0 }
      const noteMembership = (m: ServerMessage) => {
        if (m._tag !== "Membership") return
        life.event("spread.membership", clock.unsafeCurrentTimeNanos(), {
          "spread.view.id": viewIdOf(m.groupId),
          "spread.view.cause": m.cause,
          "spread.view.members": m.members.length,
          ...(m.changed === undefined ? {} : { "spread.view.changed": m.changed }),
        })
        life.attribute("spread.view.id", viewIdOf(m.groupId))
      }
      return Stream.filterMapEffect(source, (m) => {
        const s = step(m, at, noteMembership)
        if (s === undefined || s.message._tag !== "Regular") return Option.none()
        const r = s.message
        const decoded = s.decoded
        if (Either.isLeft(decoded) && skip) {
          decodeFailures++
          return Option.none()
        }
        const publisher = spanOfTraceparent(s.traceparent)
        return Option.some(Effect.useSpan("spreadfx.channel.deliver", {
          kind: "consumer",
          // A stack trace per message would cost more than the rest of the span.
          captureStackTrace: false,
          root: true,
          links: publisher === undefined ? [] : [{ _tag: "SpanLink", span: publisher, attributes: {} }],
          attributes: {
            ...attributes,
            "spread.service": r.service,
            "spread.sender": r.sender,
            ...(at.viewId === undefined ? {} : { "spread.view.id": at.viewId }),
            ...(TOTAL_ORDER.has(r.service) ? { "spread.view.seq": at.seq } : {}),
          },
        }, (span) =>
          Either.map(decoded, (value): ChannelDelivery<A> => ({
            value,
            sender: r.sender,
            service: r.service,
            messType: r.messType,
            traceparent: s.traceparent,
            span: Option.some(span),
          }))))
      })
    }))
  }

  return {
    definition,
    publish,
    deliveries,
    subscribe: (o) => Stream.map(deliveries(o), (d) => d.value),
    decodeFailures: Effect.sync(() => decodeFailures),
  }
}
