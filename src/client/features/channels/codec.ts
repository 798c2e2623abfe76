/**
 * The wire form of a channel's values: the schema's encoded form as UTF-8
 * JSON (as `json(schema)`), encoded and decoded synchronously — no Effect
 * per message — with failures as {@link ChannelError} values. An encoded
 * form of `undefined` (`Schema.Void`, say) is the empty body, and the empty
 * body decodes as `undefined`.
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
  const encodeValue = Schema.encodeEither(schema)
  const decodeValue = Schema.decodeUnknownEither(schema)
  const fail = (f: Omit<ChannelErrorFields, "channel" | "group">) => new ChannelError({ ...f, channel, group })
  const parse = (text: string): Either.Either<unknown, string> => {
    if (text.length === 0) return Either.right(undefined)
    try {
      return Either.right(JSON.parse(text))
    } catch (cause) {
      return Either.left(`the body is not JSON: ${cause instanceof Error ? cause.message : String(cause)}`)
    }
  }
  const fromText = (text: string, sender: string | undefined): Either.Either<A, ChannelError> => {
    const from = sender === undefined ? {} : { sender }
    return Either.match(parse(text), {
      onLeft: (detail) => Either.left(fail({ reason: "Decode", detail, ...from })),
      onRight: (json) =>
        Either.mapLeft(
          decodeValue(json),
          (e: ParseResult.ParseError) => fail({ reason: "Decode", detail: e.message, cause: e, ...from }),
        ),
    })
  }
  return {
    encode: (value) =>
      Either.match(encodeValue(value), {
        onLeft: (e: ParseResult.ParseError) => Either.left(fail({ reason: "Encode", detail: e.message, cause: e })),
        onRight: (encoded) => {
          if (encoded === undefined) return Either.right(EMPTY)
          try {
            return Either.right(encoder.encode(JSON.stringify(encoded)))
          } catch (cause) {
            return Either.left(
              fail({ reason: "Encode", detail: `the encoded form is not JSON: ${String(cause)}`, cause }),
            )
          }
        },
      }),
    decode: (bytes, sender) => {
      let text: string
      try {
        text = utf8.decode(bytes)
      } catch (cause) {
        return Either.left(
          fail({
            reason: "Decode",
            detail: `the ${bytes.length}-byte body is not UTF-8`,
            cause,
            ...(sender === undefined ? {} : { sender }),
          }),
        )
      }
      return fromText(text, sender)
    },
    decodeText: (text) => text.length === 0 ? undefined : Either.getOrUndefined(fromText(text, undefined)),
  }
}

const EMPTY = new Uint8Array(0)
