/**
 * Request/reply over Spread groups, with the envelope of envelope.ts.
 *
 * - `request({ group, data })` multicasts a request envelope (a fresh
 *   correlation id, this connection's private group as reply-to) to `group`
 *   and completes with the first reply; `RequestTimeout` when none comes in
 *   time (request_errors.ts), the sticky error if the connection ends first.
 * - `requestMany({ group, data, count, timeout })` collects replies until
 *   `count` came or the timeout passed (scatter/gather), whichever is first.
 * - `respond({ group, handler })` subscribes to `group` and answers each
 *   request envelope to its reply-to group: the handler's value as a reply,
 *   its failure as an error reply.
 *
 * Replies travel to the requester's private group and are matched in the
 * reader by correlation id; they never reach `messages`. A reply to a
 * request that already ended (timed out, or got its count) is dropped.
 *
 * @module
 */
import { Duration, Effect, Option, type Scope, Stream } from "effect"
import type { ServiceLevel } from "../../protocol/constants.ts"
import type { RegularMessage } from "../../protocol/server_messages.ts"
import { encodeEnvelope, type EnvelopeHeaders, type EnvelopeKind, parseEnvelope } from "./envelope.ts"
import { type ConnectionError, RequestError } from "../core/errors.ts"
import type { OutgoingMessage } from "../admission/frames.ts"
import type { FailedReply, Reply, Router } from "./router.ts"
import type { SubscribeOptions, Subscription } from "./subscribe.ts"
import { RequestTimeout, ResponderError } from "./request_errors.ts"
import type { ServerMessage } from "../../protocol/server_messages.ts"

export type { FailedReply, Reply } from "./router.ts"

/**
 * A request, as `request` takes it (like `multicast`'s message: one options
 * object).
 *
 * @since 0.2.0
 * @category models
 */
export interface RequestOptions {
  /** The group the request goes to. */
  readonly group: string
  /** The request's body: bytes as given, or text encoded as UTF-8. */
  readonly data: Uint8Array | string
  /** How long to wait for the first reply, from the call; 5 seconds by default. */
  readonly timeout?: Duration.DurationInput
  /** Service level of the request; `"Agreed"` by default. */
  readonly service?: ServiceLevel
  /** mess_type of the request; 0 by default. */
  readonly messType?: number
  /** Envelope header fields (channel tag, trace context) for the request; none by default. */
  readonly headers?: EnvelopeHeaders
}

/**
 * A request, as `requestMany` takes it.
 *
 * @since 0.2.0
 * @category models
 */
export interface RequestManyOptions extends RequestOptions {
  /**
   * Replies to wait for. By default the number of members of `group` in
   * this connection's view of it (itself excluded) when it is a member,
   * otherwise as many as come before the timeout.
   */
  readonly count?: number
}

/**
 * A request as a responder's handler sees it.
 *
 * @since 0.2.0
 * @category models
 */
export interface IncomingRequest {
  /** The requester's private group. */
  readonly sender: string
  /** The group the request was received through. */
  readonly group: string
  /** The request's body (a view into the received bytes). */
  readonly data: Uint8Array
  /** The correlation id, 16 lowercase hex digits. */
  readonly correlationId: string
  /** Where the reply goes (the requester's private group). */
  readonly replyTo: string
  /** The message the request came in. */
  readonly message: RegularMessage
}

/**
 * A responder, as `respond` takes it: the group it serves, the handler
 * whose value answers each request, and how.
 *
 * @since 0.2.0
 * @category models
 */
export interface RespondOptions<E = never, R = never> extends SubscribeOptions {
  /** The group whose requests it answers. */
  readonly group: string
  /** Answers one request; a failure becomes an error reply carrying its message. */
  readonly handler: (request: IncomingRequest) => Effect.Effect<Uint8Array | string, E, R>
  /** Requests handled at once; 1 (in order) by default. */
  readonly concurrency?: number
  /** Service level of the replies; `"Agreed"` by default. */
  readonly service?: ServiceLevel
}

/**
 * What request/reply needs of its connection.
 *
 * @since 0.2.0
 * @category models
 */
export interface RequestContext {
  readonly router: Router
  readonly privateGroup: string
  readonly multicast: (m: OutgoingMessage) => Effect.Effect<void, ConnectionError | RequestError>
  readonly subscribe: (group: string, options?: SubscribeOptions) => Subscription
  readonly subscribeJoined: (
    group: string,
    options?: SubscribeOptions,
  ) => Effect.Effect<Subscription, ConnectionError | RequestError, Scope.Scope>
  /** Members of `group` other than this connection, when it is a member. */
  readonly othersIn: (group: string) => Effect.Effect<Option.Option<number>>
}

const encoder = new TextEncoder()
const bytesOf = (data: Uint8Array | string): Uint8Array => typeof data === "string" ? encoder.encode(data) : data
const hex8 = (n: number): string => (n >>> 0).toString(16).padStart(8, "0")
const DEFAULT_TIMEOUT = 5000

const envelopeOf = (
  operation: string,
  kind: EnvelopeKind,
  idHigh: number,
  idLow: number,
  replyTo: string,
  body: Uint8Array,
  headers?: EnvelopeHeaders,
): Effect.Effect<Uint8Array, RequestError> => {
  const bytes = encodeEnvelope({ kind, idHigh, idLow, replyTo, body, ...(headers === undefined ? {} : { headers }) })
  return bytes === undefined
    ? Effect.fail(
      new RequestError({
        reason: "IllegalGroup",
        operation,
        detail: headers === undefined
          ? `Cannot use "${replyTo}" as a reply-to group: it is not 1 to 31 bytes of Latin-1`
          : `Cannot write the envelope with reply-to "${replyTo}" and headers ${JSON.stringify(headers)}`,
      }),
    )
    : Effect.succeed(bytes)
}

// A span that is not made the current one, so a sticky error fails the call
// as the very same object (a failure inside a current span is wrapped).
const traced = (name: string, group: string) => <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.useSpan(name, { attributes: { "spread.group": group } }, () => self)

const timeoutOf = (t: Duration.DurationInput | undefined): Duration.Duration =>
  t === undefined ? Duration.millis(DEFAULT_TIMEOUT) : Duration.decode(t)

// Sends a request and waits for `want` replies or the timeout; answers the
// replies that came (fewer on timeout).
const gather = (
  ctx: RequestContext,
  operation: string,
  want: number,
  options: RequestOptions,
): Effect.Effect<
  { readonly replies: ReadonlyArray<Reply | FailedReply>; readonly complete: boolean; readonly id: string },
  ConnectionError | RequestError
> =>
  Effect.flatMap(ctx.router.register(want), ({ idLow, entry }) => {
    const id = hex8(ctx.router.nonce) + hex8(idLow)
    const send = Effect.flatMap(
      envelopeOf(
        operation,
        "Request",
        ctx.router.nonce,
        idLow,
        ctx.privateGroup,
        bytesOf(options.data),
        options.headers,
      ),
      (bytes) =>
        ctx.multicast({
          groups: options.group,
          data: bytes,
          ...(options.service === undefined ? {} : { service: options.service }),
          ...(options.messType === undefined ? {} : { messType: options.messType }),
        }),
    )
    return Effect.zipRight(send, entry.done).pipe(
      Effect.timeoutOption(timeoutOf(options.timeout)),
      Effect.map((done) => ({ replies: entry.replies.slice(), complete: Option.isSome(done), id })),
      Effect.ensuring(Effect.sync(() => ctx.router.unregister(idLow))),
    )
  })

/**
 * Sends a request to `group` and waits for the first reply.
 *
 * @since 0.2.0
 * @category request/reply
 */
export const request = (
  ctx: RequestContext,
  options: RequestOptions,
): Effect.Effect<Reply, ConnectionError | RequestError | RequestTimeout | ResponderError> => {
  const group = options.group
  return Effect.flatMap(gather(ctx, "request", 1, options), ({ id, replies }): Effect.Effect<
    Reply,
    RequestTimeout | ResponderError
  > => {
    const first = replies[0]
    if (first === undefined) {
      return Effect.fail(new RequestTimeout({ group, timeout: timeoutOf(options.timeout), correlationId: id }))
    }
    return first._tag === "Reply" ? Effect.succeed(first) : Effect.fail(
      new ResponderError({ group, responder: first.sender, reason: first.reason, correlationId: id }),
    )
  }).pipe(traced("spread.request", group))
}

/**
 * Sends a request to `group` and collects replies until `count` came or the
 * timeout passed; answers those that came, in arrival order (none is not an
 * error).
 *
 * @since 0.2.0
 * @category request/reply
 */
export const requestMany = (
  ctx: RequestContext,
  options: RequestManyOptions,
): Effect.Effect<ReadonlyArray<Reply | FailedReply>, ConnectionError | RequestError> =>
  Effect.gen(function* () {
    const count = options.count ??
      Option.getOrElse(yield* ctx.othersIn(options.group), () => Number.POSITIVE_INFINITY)
    if (!(count > 0)) return []
    const { replies } = yield* gather(ctx, "requestMany", count, options)
    return replies
  }).pipe(traced("spread.requestMany", options.group))

/** The request a message carries, if it is a request envelope with a reply-to. */
const requestOf = (group: string, m: ServerMessage): IncomingRequest | undefined => {
  if (m._tag !== "Regular") return undefined
  const data = m.data
  if (data[0] !== 0xff) return undefined
  const env = parseEnvelope(data)
  if (env === undefined || env.kind !== "Request" || env.replyTo.length === 0) return undefined
  return {
    sender: m.sender,
    group,
    data: data.subarray(env.headerLength),
    correlationId: hex8(env.idHigh) + hex8(env.idLow),
    replyTo: env.replyTo,
    message: m,
  }
}

const reasonOf = (e: unknown): string =>
  e instanceof Error ? e.message : typeof e === "string" ? e : JSON.stringify(e) ?? String(e)

/**
 * Subscribes to `group` and answers each request to its reply-to group with
 * the handler's value; a handler failure is answered with an error reply
 * carrying its message (a defect is not caught). Runs until interrupted, or
 * fails with the sticky error when the connection ends. Messages of the
 * group that are not requests are ignored.
 *
 * @since 0.2.0
 * @category request/reply
 */
export const respond = <E, R>(
  ctx: RequestContext,
  options: RespondOptions<E, R>,
): Effect.Effect<never, ConnectionError | RequestError, R> =>
  ctx.subscribe(options.group, options).pipe(answering(ctx, options), Effect.zipRight(Effect.never))

// Answers every request of a subscription's stream with the handler.
const answering = <E, R>(ctx: RequestContext, options: RespondOptions<E, R>) =>
(
  stream: Subscription,
): Effect.Effect<void, ConnectionError | RequestError, R> => {
  const { group, handler } = options
  const service = options.service === undefined ? {} : { service: options.service }
  const answer = (req: IncomingRequest) => {
    const [hi, lo] = [parseInt(req.correlationId.slice(0, 8), 16), parseInt(req.correlationId.slice(8), 16)]
    const send = (kind: EnvelopeKind, body: Uint8Array) =>
      Effect.flatMap(
        envelopeOf("respond", kind, hi, lo, "", body),
        (bytes) => ctx.multicast({ groups: req.replyTo, data: bytes, ...service }),
      )
    return handler(req).pipe(
      Effect.matchEffect({
        onFailure: (e) => send("ErrorReply", encoder.encode(reasonOf(e))),
        onSuccess: (value) =>
          Effect.catchTag(
            send("Reply", bytesOf(value)),
            "RequestError",
            // A reply the daemon would refuse (too long, say): say so instead.
            (e) => send("ErrorReply", encoder.encode(e.message)),
          ),
      }),
      // A reply-to that is not a private group cannot be answered; skip it.
      Effect.catchTag("RequestError", () => Effect.void),
      Effect.withSpan("spread.respond", { attributes: { "spread.group": group } }),
    )
  }
  return stream.pipe(
    Stream.filterMap((m) => Option.fromNullable(requestOf(group, m))),
    Stream.mapEffect(answer, { concurrency: Math.max(1, Math.floor(options.concurrency ?? 1)), unordered: true }),
    Stream.runDrain,
  )
}

/**
 * {@link respond} started in the current scope: returns once this
 * connection is a confirmed member of the group, the handler running in a
 * fiber of the scope.
 *
 * @since 0.3.0
 * @category request/reply
 */
export const respondJoined = <E, R>(
  ctx: RequestContext,
  options: RespondOptions<E, R>,
): Effect.Effect<void, ConnectionError | RequestError, R | Scope.Scope> =>
  Effect.flatMap(
    ctx.subscribeJoined(options.group, options),
    (stream) => Effect.asVoid(Effect.forkScoped(Effect.interruptible(answering(ctx, options)(stream)))),
  )
