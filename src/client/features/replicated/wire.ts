/**
 * What replicas of one group send each other, as one Schema: an operation,
 * a state transfer, a merge announcement — written as UTF-8 JSON (the
 * encoded form of the user's value and operation schemas inside), so that
 * a member that cannot read one gets a typed failure, never a guess.
 *
 * | `t`       | fields                                   | sent by                                     |
 * | --------- | ---------------------------------------- | ------------------------------------------- |
 * | `"op"`    | `id`, `op`                               | `update`                                    |
 * | `"state"` | `for`, `asOf`, `snapshot`                | the provider, after a view with joiners     |
 * | `"merge"` | `asOf`, `vs`, `snapshot?`                | every member, after a merging network view  |
 *
 * @module
 */
import { Either, ParseResult, Schema } from "effect"
import type { ReplicaEvent, Snapshot } from "./machine.ts"

/**
 * A wire message, decoded.
 *
 * @since 0.3.0
 * @category models
 */
export type Wire<A, Op> =
  | { readonly t: "op"; readonly id: number; readonly op: Op }
  | {
    readonly t: "state"
    readonly for: ReadonlyArray<string>
    readonly asOf: string
    readonly snapshot: Snapshot<A>
  }
  | {
    readonly t: "merge"
    readonly asOf: string
    readonly vs: ReadonlyArray<string>
    readonly snapshot?: Snapshot<A> | undefined
  }

/**
 * The codec of one replica's wire messages: synchronous, answering
 * `Either` (no Effect per message).
 *
 * @since 0.3.0
 * @category models
 */
export interface WireCodec<A, Op> {
  readonly encode: (w: Wire<A, Op>) => Either.Either<string, string>
  readonly decode: (json: string) => Either.Either<Wire<A, Op>, string>
}

/**
 * The wire codec over a value schema and an operation schema.
 *
 * @since 0.3.0
 * @category constructors
 */
export const wireCodec = <A, AI, Op, OpI>(
  value: Schema.Schema<A, AI>,
  operation: Schema.Schema<Op, OpI>,
): WireCodec<A, Op> => {
  const snapshot = Schema.Struct({
    value,
    holders: Schema.Array(Schema.String),
    assigned: Schema.Array(Schema.Tuple(Schema.String, Schema.String)),
  })
  const wire = Schema.parseJson(Schema.Union(
    Schema.Struct({ t: Schema.Literal("op"), id: Schema.Number, op: operation }),
    Schema.Struct({
      t: Schema.Literal("state"),
      for: Schema.Array(Schema.String),
      asOf: Schema.String,
      snapshot,
    }),
    Schema.Struct({
      t: Schema.Literal("merge"),
      asOf: Schema.String,
      vs: Schema.Array(Schema.String),
      snapshot: Schema.optional(snapshot),
    }),
  ))
  const enc = Schema.encodeEither(wire)
  const dec = Schema.decodeUnknownEither(wire)
  const message = (e: ParseResult.ParseError) => ParseResult.TreeFormatter.formatErrorSync(e)
  return {
    encode: (w) => Either.mapLeft(enc(w as Schema.Schema.Type<typeof wire>), message),
    decode: (json) => Either.mapLeft(dec(json), message) as Either.Either<Wire<A, Op>, string>,
  }
}

/**
 * The machine's event for a decoded wire message from `sender`.
 *
 * @since 0.3.0
 * @category constructors
 */
export const eventOf = <A, Op>(sender: string, w: Wire<A, Op>): ReplicaEvent<A, Op> => {
  switch (w.t) {
    case "op":
      return { _tag: "Op", sender, id: w.id, op: w.op }
    case "state":
      return { _tag: "State", sender, for: w.for, asOf: w.asOf, snapshot: w.snapshot }
    case "merge":
      return { _tag: "Merge", sender, asOf: w.asOf, vs: w.vs, snapshot: w.snapshot }
  }
}
