/**
 * Typed payloads: an Effect `Schema` turned into a codec that encodes values
 * as message payloads and decodes received messages, with a typed
 * {@link PayloadError} for anything that does not fit — never a defect.
 *
 * JSON is the wire format here: `json(schema)` writes the schema's encoded
 * form as UTF-8 JSON, which any Spread client in any language can read.
 *
 * @example
 * ```ts
 * import { Effect, Schema, Stream } from "effect"
 * import { connect, isRegular, json } from "@spreadfx/spreadfx"
 *
 * const Order = Schema.Struct({ id: Schema.Number, item: Schema.String, at: Schema.Date })
 * const orders = json(Order)
 *
 * const program = Effect.scoped(Effect.gen(function* () {
 *   const spread = yield* connect({ daemon: "4803" })
 *   yield* spread.multicast(yield* orders.message("orders", { id: 1, item: "tea", at: new Date() }))
 *   yield* spread.subscribe("orders").pipe(
 *     Stream.filter(isRegular),
 *     Stream.mapEffect(orders.decode),
 *     Stream.runForEach((o) => Effect.log(`order ${o.id}: ${o.item} at ${o.at.toISOString()}`)),
 *   )
 * }))
 * ```
 *
 * @module
 */
import { type Cause, Data, Effect, type ParseResult, Schema } from "effect"
import type { ServiceLevel } from "../../protocol/constants.ts"
import type { OutgoingMessage } from "../admission/frames.ts"

/**
 * Whether encoding or decoding failed.
 *
 * - `Encode`: the value does not satisfy the schema's encoding.
 * - `Decode`: the payload is not UTF-8, not JSON, or does not match the schema.
 *
 * @since 0.2.0
 * @category models
 */
export type PayloadErrorReason = "Encode" | "Decode"

/**
 * The fields of {@link PayloadError}.
 *
 * @since 0.2.0
 * @category models
 */
export interface PayloadErrorFields {
  /** Which way it failed. */
  readonly reason: PayloadErrorReason
  /** What did not fit, with the schema's path when it has one. */
  readonly detail: string
  /** The `ParseError`, or the UTF-8 decoding error. */
  readonly cause?: unknown
}

/**
 * The tagged-error base of {@link PayloadError}, typed explicitly so the
 * public API has no inferred ("slow") types.
 *
 * @since 0.2.0
 * @category errors
 */
export const PayloadErrorBase: new (
  args: PayloadErrorFields,
) => Cause.YieldableError & { readonly _tag: "PayloadError" } & Readonly<PayloadErrorFields> = Data.TaggedError(
  "PayloadError",
)

/**
 * A value could not be encoded, or a payload decoded, with a schema.
 *
 * @since 0.2.0
 * @category errors
 */
export class PayloadError extends PayloadErrorBase {
  /**
   * A one-line description: which way failed, and why.
   *
   * @since 0.2.0
   */
  override get message(): string {
    return `Cannot ${this.reason === "Encode" ? "encode a value" : "decode a payload"}: ${this.detail}`
  }
}

/**
 * Anything that carries a payload: a received message, a `Reply`, an
 * `IncomingRequest` — or the bytes themselves.
 *
 * @since 0.2.0
 * @category models
 */
export type PayloadSource = Uint8Array | { readonly data: Uint8Array }

/**
 * Options of {@link PayloadCodec.message}.
 *
 * @since 0.2.0
 * @category models
 */
export interface PayloadMessageOptions {
  /** Service level; `"Agreed"` by default. */
  readonly service?: ServiceLevel
  /** 16-bit application message type; 0 by default. */
  readonly messType?: number
  /** Do not deliver a copy to the sender. */
  readonly selfDiscard?: boolean
}

/**
 * A schema's codec for payloads.
 *
 * @since 0.2.0
 * @category models
 */
export interface PayloadCodec<A, R = never> {
  /** Encodes a value into a payload. */
  readonly encode: (value: A) => Effect.Effect<Uint8Array, PayloadError, R>
  /** Decodes a payload (of a message, a reply, a request, or bytes). */
  readonly decode: (source: PayloadSource) => Effect.Effect<A, PayloadError, R>
  /** Encodes a value into a message to `groups`, ready for `multicast`. */
  readonly message: (
    groups: string | ReadonlyArray<string>,
    value: A,
    options?: PayloadMessageOptions,
  ) => Effect.Effect<OutgoingMessage, PayloadError, R>
}

const encoder = new TextEncoder()
const utf8 = new TextDecoder("utf-8", { fatal: true })

/**
 * A codec that writes `schema`'s encoded form as UTF-8 JSON and reads it
 * back; every failure is a {@link PayloadError} in the error channel.
 *
 * @since 0.2.0
 * @category constructors
 */
export const json = <A, I, R = never>(schema: Schema.Schema<A, I, R>): PayloadCodec<A, R> => {
  const asJson = Schema.parseJson(schema)
  const encodeJson = Schema.encode(asJson)
  const decodeJson = Schema.decodeUnknown(asJson)
  const encode = (value: A): Effect.Effect<Uint8Array, PayloadError, R> =>
    encodeJson(value).pipe(
      Effect.map((s) => encoder.encode(s)),
      Effect.mapError((e: ParseResult.ParseError) =>
        new PayloadError({ reason: "Encode", detail: e.message, cause: e })
      ),
    )
  const decode = (source: PayloadSource): Effect.Effect<A, PayloadError, R> =>
    Effect.suspend(() => {
      const bytes = source instanceof Uint8Array ? source : source.data
      let text: string
      try {
        text = utf8.decode(bytes)
      } catch (cause) {
        return Effect.fail(
          new PayloadError({ reason: "Decode", detail: `the ${bytes.length}-byte payload is not UTF-8`, cause }),
        )
      }
      return Effect.mapError(
        decodeJson(text),
        (e: ParseResult.ParseError) => new PayloadError({ reason: "Decode", detail: e.message, cause: e }),
      )
    })
  return {
    encode,
    decode,
    message: (groups, value, options = {}) =>
      Effect.map(encode(value), (data): OutgoingMessage => ({ ...options, groups, data })),
  }
}
