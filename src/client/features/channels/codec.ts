/**
 * The wire form of a channel's values: the schema's encoded form as UTF-8
 * JSON (as `json(schema)`), encoded and decoded synchronously — no Effect
 * per message — with failures as {@link ChannelError} values.
 *
 * @module
 */
import { Either, type ParseResult, Schema } from "effect"
import { ChannelError, type ChannelErrorFields } from "./definition.ts"

/**
 * A schema's synchronous JSON codec, bound to a channel for its errors.
 *
 * @since 0.3.0
 * @category models
 */
export interface WireCodec<A> {
  readonly encode: (value: A) => Either.Either<Uint8Array, ChannelError>
  readonly decode: (bytes: Uint8Array, sender?: string) => Either.Either<A, ChannelError>
  /** Decodes a string (an error reply's reason); `undefined` when it is not one of the schema's values. */
  readonly decodeText: (text: string) => A | undefined
}

const encoder = new TextEncoder()
const utf8 = new TextDecoder("utf-8", { fatal: true })

/**
 * The codec of `schema` on the channel `channel` of `group`.
 *
 * @since 0.3.0
 * @category constructors
 */
export const wireCodec = <A, I>(schema: Schema.Schema<A, I, never>, channel: string, group: string): WireCodec<A> => {
  const asJson = Schema.parseJson(schema)
  const encodeJson = Schema.encodeEither(asJson)
  const decodeJson = Schema.decodeUnknownEither(asJson)
  const fail = (f: Omit<ChannelErrorFields, "channel" | "group">) => new ChannelError({ ...f, channel, group })
  return {
    encode: (value) =>
      Either.match(encodeJson(value), {
        onLeft: (e: ParseResult.ParseError) => Either.left(fail({ reason: "Encode", detail: e.message, cause: e })),
        onRight: (s) => Either.right(encoder.encode(s)),
      }),
    decode: (bytes, sender) => {
      const from = sender === undefined ? {} : { sender }
      let text: string
      try {
        text = utf8.decode(bytes)
      } catch (cause) {
        return Either.left(
          fail({ reason: "Decode", detail: `the ${bytes.length}-byte body is not UTF-8`, cause, ...from }),
        )
      }
      return Either.mapLeft(
        decodeJson(text),
        (e: ParseResult.ParseError) => fail({ reason: "Decode", detail: e.message, cause: e, ...from }),
      )
    },
    decodeText: (text) => Either.getOrUndefined(decodeJson(text)),
  }
}
