/**
 * Request/reply channels on a connection: `request(value)` answering the
 * success type or failing with a declared error, and `serve(handler)`,
 * over the connection's own `request` and `subscribe`/`multicast`.
 *
 * A channel request is a request envelope (kind 1) with the channel tag
 * (and, with tracing on, the requester's `traceparent`) in its header
 * fields; the body is the request's JSON. `serve` answers only requests
 * tagged with its channel, to their reply-to group:
 *
 * - the handler's value → a reply (kind 2), body the success's JSON;
 * - a declared error → an error reply (kind 3) with the `errorForm` field
 *   set, body the error's JSON (its `_tag` included), so the requester
 *   fails with that very error;
 * - a request that does not decode, or a value or error that does not
 *   encode → an error reply whose body is a plain reason (UTF-8), which
 *   the requester sees as a {@link ChannelError} `Responder`.
 *
 * A plain `request` or C client can call a channel server (it must write
 * the channel tag) and reads the reply as any reply: an error reply's body
 * is text either way (JSON or a reason). A defect in the handler is not
 * caught (as with `respond`): it ends `serve`.
 *
 * With `tracing: true`, a request is a `spreadfx.channel.request` span
 * (kind client); its handling a `spreadfx.channel.serve` span (kind
 * server), a child of the requester's span through the envelope's
 * traceparent, inside which the handler runs; the reply carries the
 * server span's traceparent back and the request span links to it. The
 * server's long-lived `spreadfx.channel.serving` span gets a
 * `spread.membership` event per view of the group.
 *
 * @module
 */
import { type Duration, Effect, Either, Option, Schema, Stream, type Tracer } from "effect"
import type { ServerMessage } from "../../../protocol/server_messages.ts"
import type { ConnectionError, RequestError } from "../../core/errors.ts"
import type { Connection } from "../../model.ts"
import {
  encodeEnvelope,
  type EnvelopeHeaders,
  type EnvelopeKind,
  hasChannelTag,
  parseEnvelope,
  readHeaders,
} from "../envelope.ts"
import type { RequestTimeout } from "../request_errors.ts"
import type { SubscribeOptions } from "../subscribe.ts"
import { wireCodec } from "./codec.ts"
import { ChannelError, type ChannelSchema, type RequestChannelDefinition } from "./definition.ts"
import { type ChannelOptions, channelTagOf } from "./messages.ts"
import { spanOfTraceparent, traceparentOf, viewIdOf } from "./trace.ts"

/**
 * A request as a channel server's handler sees it, beside its value.
 *
 * @since 0.3.0
 * @category models
 */
export interface ChannelRequestInfo {
  /** The requester's private group. */
  readonly sender: string
  /** The correlation id, 16 lowercase hex digits. */
  readonly correlationId: string
  /** The requester's W3C traceparent, when it sent one. */
  readonly traceparent: string | undefined
}

/**
 * Options of a request channel's `request`.
 *
 * @since 0.3.0
 * @category models
 */
export interface ChannelRequestOptions {
  /** How long to wait for the reply; the channel's timeout by default. */
  readonly timeout?: Duration.DurationInput
}

/**
 * Options of a request channel's `serve`.
 *
 * @since 0.3.0
 * @category models
 */
export interface ServeOptions extends SubscribeOptions {
  /** Requests handled at once; 1 (in order) by default. */
  readonly concurrency?: number
}

/**
 * A request/reply channel bound to a connection.
 *
 * @since 0.3.0
 * @category models
 */
export interface RequestChannel<
  Rq extends ChannelSchema,
  S extends ChannelSchema,
  E extends ChannelSchema,
> {
  /** The definition it was opened with. */
  readonly definition: RequestChannelDefinition<Rq, S, E>
  /** Sends a request and waits for the reply: its success value, or its declared error. */
  readonly request: (
    value: Schema.Schema.Type<Rq>,
    options?: ChannelRequestOptions,
  ) => Effect.Effect<
    Schema.Schema.Type<S>,
    Schema.Schema.Type<E> | ChannelError | RequestTimeout | ConnectionError | RequestError
  >
  /**
   * Answers the channel's requests with `handler` until interrupted; fails
   * with the sticky error when the connection ends (or at once with a
   * `Name` error for a channel name that does not fit).
   */
  readonly serve: <R>(
    handler: (
      value: Schema.Schema.Type<Rq>,
      info: ChannelRequestInfo,
    ) => Effect.Effect<Schema.Schema.Type<S>, Schema.Schema.Type<E>, R>,
    options?: ServeOptions,
  ) => Effect.Effect<never, ConnectionError | RequestError | ChannelError, R>
}

// Every ChannelSchema has no context (`Schema.Never` included), which the
// union constraint cannot show the compiler through `Schema.asSchema`.
const noContext = <X extends ChannelSchema>(
  s: X,
): Schema.Schema<Schema.Schema.Type<X>, Schema.Schema.Encoded<X>, never> =>
  Schema.asSchema(s) as Schema.Schema<Schema.Schema.Type<X>, Schema.Schema.Encoded<X>, never>

const hex8 = (n: number): string => (n >>> 0).toString(16).padStart(8, "0")
const encoder = new TextEncoder()

interface IncomingChannelRequest {
  readonly sender: string
  readonly idHigh: number
  readonly idLow: number
  readonly replyTo: string
  readonly body: Uint8Array
  readonly traceparent: string | undefined
  readonly tracestate: string | undefined
}

/**
 * Binds a request/reply channel to a connection.
 *
 * @since 0.3.0
 * @category constructors
 */
export const openRequestChannel = <
  Rq extends ChannelSchema,
  S extends ChannelSchema,
  E extends ChannelSchema,
>(
  conn: Connection,
  definition: RequestChannelDefinition<Rq, S, E>,
  options: ChannelOptions = {},
): RequestChannel<Rq, S, E> => {
  type Req = Schema.Schema.Type<Rq>
  type Succ = Schema.Schema.Type<S>
  type Err = Schema.Schema.Type<E>
  const { name, group, service } = definition
  const requests = wireCodec<Req, Schema.Schema.Encoded<Rq>>(noContext(definition.request), name, group)
  const successes = wireCodec<Succ, Schema.Schema.Encoded<S>>(noContext(definition.success), name, group)
  const errors = wireCodec<Err, Schema.Schema.Encoded<E>>(noContext(definition.error), name, group)
  const tag = channelTagOf(name, group)
  const tagBytes = new TextEncoder().encode(name)
  const tracing = options.tracing === true
  const tracestate = options.tracestate
  const attributes = {
    "messaging.system": "spread",
    "spread.group": group,
    "spread.channel": name,
    "spread.service": service,
  }
  const traceHeaders = (span: Tracer.AnySpan | undefined, state: string | undefined): EnvelopeHeaders => {
    const traceparent = span === undefined ? undefined : traceparentOf(span)
    return {
      channel: name,
      ...(traceparent === undefined ? {} : { traceparent }),
      ...(state === undefined ? {} : { tracestate: state }),
    }
  }

  const call = (value: Req, o: ChannelRequestOptions, span: Tracer.Span | undefined) =>
    Effect.gen(function* () {
      yield* tag
      const body = yield* requests.encode(value)
      const reply = yield* conn.request({
        group,
        data: body,
        service,
        timeout: o.timeout ?? definition.timeout,
        headers: tracing ? traceHeaders(span, tracestate) : { channel: name },
      }).pipe(
        Effect.catchTag("ResponderError", (e) => {
          const declared = errors.decodeText(e.reason)
          return declared === undefined
            ? Effect.fail(
              new ChannelError({ reason: "Responder", channel: name, group, detail: e.reason, sender: e.responder }),
            )
            : Effect.fail(declared)
        }),
      )
      if (span !== undefined) {
        const env = parseEnvelope(reply.message.data)
        const server = env === undefined
          ? undefined
          : spanOfTraceparent(readHeaders(reply.message.data, env.replyTo.length, env.headerLength).traceparent)
        if (server !== undefined) {
          span.addLinks([{ _tag: "SpanLink", span: server, attributes: { "spread.link": "reply" } }])
        }
        span.attribute("spread.responder", reply.sender)
      }
      return yield* successes.decode(reply.data, reply.sender)
    })

  const request = (value: Req, o: ChannelRequestOptions = {}) =>
    tracing
      ? Effect.useSpan(
        "spreadfx.channel.request",
        { kind: "client", attributes },
        (span) => Effect.withParentSpan(call(value, o, span), span),
      )
      : call(value, o, undefined)

  const requestOf = (m: ServerMessage): IncomingChannelRequest | undefined => {
    if (m._tag !== "Regular") return undefined
    const data = m.data
    if (data[0] !== 0xff) return undefined
    const env = parseEnvelope(data)
    if (env === undefined || env.kind !== "Request" || env.replyTo.length === 0) return undefined
    if (!hasChannelTag(data, env.replyTo.length, env.headerLength, tagBytes)) return undefined
    const headers = readHeaders(data, env.replyTo.length, env.headerLength)
    return {
      sender: m.sender,
      idHigh: env.idHigh,
      idLow: env.idLow,
      replyTo: env.replyTo,
      body: data.subarray(env.headerLength),
      traceparent: headers.traceparent,
      tracestate: headers.tracestate,
    }
  }

  const serve = <R>(
    handler: (value: Req, info: ChannelRequestInfo) => Effect.Effect<Succ, Err, R>,
    o: ServeOptions = {},
  ): Effect.Effect<never, ConnectionError | RequestError | ChannelError, R> => {
    const { concurrency, ...subscribeOptions } = o
    const answer = (req: IncomingChannelRequest, span: Tracer.Span | undefined) => {
      const headers: EnvelopeHeaders = tracing ? traceHeaders(span, req.tracestate) : { channel: name }
      const send = (kind: EnvelopeKind, body: Uint8Array, h: EnvelopeHeaders) => {
        const bytes = encodeEnvelope({ kind, idHigh: req.idHigh, idLow: req.idLow, replyTo: "", body, headers: h })
        return bytes === undefined ? Effect.void : conn.multicast({ groups: req.replyTo, data: bytes, service })
      }
      const plainError = (reason: string) => send("ErrorReply", encoder.encode(reason), headers)
      const info: ChannelRequestInfo = {
        sender: req.sender,
        correlationId: hex8(req.idHigh) + hex8(req.idLow),
        traceparent: req.traceparent,
      }
      return Either.match(requests.decode(req.body, req.sender), {
        onLeft: (e) => plainError(e.message),
        onRight: (value) =>
          handler(value, info).pipe(
            Effect.matchEffect({
              onFailure: (err) =>
                Either.match(errors.encode(err), {
                  onLeft: (e) => plainError(e.message),
                  onRight: (body) => send("ErrorReply", body, { ...headers, errorForm: "json" }),
                }),
              onSuccess: (v) =>
                Either.match(successes.encode(v), {
                  onLeft: (e) => plainError(e.message),
                  // A reply the daemon would refuse (too long, say): say so instead.
                  onRight: (body) =>
                    Effect.catchTag(send("Reply", body, headers), "RequestError", (e) => plainError(e.message)),
                }),
            }),
          ),
      }).pipe(
        // A reply-to that is not a private group cannot be answered; skip it.
        Effect.catchTag("RequestError", () => Effect.void),
      )
    }
    const handle = (req: IncomingChannelRequest) => {
      if (!tracing) return answer(req, undefined)
      const caller = spanOfTraceparent(req.traceparent)
      return Effect.useSpan("spreadfx.channel.serve", {
        kind: "server",
        captureStackTrace: false,
        ...(caller === undefined ? {} : { parent: caller }),
        attributes: { ...attributes, "spread.sender": req.sender },
      }, (span) => Effect.withParentSpan(answer(req, span), span))
    }
    return Effect.gen(function* () {
      yield* tag
      const life = tracing
        ? yield* Effect.makeSpanScoped("spreadfx.channel.serving", { kind: "server", attributes })
        : undefined
      const clock = yield* Effect.clock
      return yield* conn.subscribe(group, subscribeOptions).pipe(
        Stream.filterMap((m) => {
          if (m._tag === "Membership" && m.group === group && life !== undefined) {
            life.event("spread.membership", clock.unsafeCurrentTimeNanos(), {
              "spread.view.id": viewIdOf(m.groupId),
              "spread.view.cause": m.cause,
              "spread.view.members": m.members.length,
              ...(m.changed === undefined ? {} : { "spread.view.changed": m.changed }),
            })
          }
          return Option.fromNullable(requestOf(m))
        }),
        Stream.mapEffect(handle, { concurrency: Math.max(1, Math.floor(concurrency ?? 1)), unordered: true }),
        Stream.runDrain,
        Effect.zipRight(Effect.never),
      )
    }).pipe(Effect.scoped)
  }

  return { definition, request, serve }
}
