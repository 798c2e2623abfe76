/**
 * A pricing service over Spread, written as an application that depends on
 * spreadfx would write it: every import of the library is by its package
 * name.
 *
 * - `serve(prices)`: a replica answering typed quote requests on "pricing";
 *   it returns once the daemon confirmed its join, so the first request
 *   after it is answered (no sleep).
 * - `quote(item, quantity)`: a typed request; a replica's refusal comes back
 *   as `QuoteRefused`, a malformed answer as `PayloadError`.
 * - `announce(change)` and `changes`: typed price changes on the group
 *   "prices"; `changes` turns a reconnect's discontinuity mark into a `Gap`
 *   event (changes sent while the connection was away are lost) and skips
 *   payloads that are not price changes, reporting them as `Skipped`.
 *
 * Everything needs a `Spread` connection from the context: `layer`,
 * `layerConfig` or, in tests, `layerTest` from "@spreadfx/spreadfx/testing".
 *
 * @module
 */
import { Data, Effect, Option, Schema, type Scope, Stream } from "effect"
import {
  type ConnectionError,
  isDiscontinuity,
  isRegular,
  json,
  type PayloadError,
  type RequestError,
  type RequestTimeout,
  Spread,
} from "@spreadfx/spreadfx"

/** The group replicas answer quotes on. */
export const PRICING = "pricing"
/** The group price changes are announced on. */
export const PRICES = "prices"

/** A quote request. */
export const QuoteRequest = Schema.Struct({
  item: Schema.String,
  quantity: Schema.Number.pipe(Schema.int(), Schema.positive()),
})
/** A replica's answer. */
export const Quote = Schema.Struct({ item: Schema.String, quantity: Schema.Number, total: Schema.Number })
/** A price change. */
export const PriceChange = Schema.Struct({ item: Schema.String, price: Schema.Number })
/** A quote. */
export type Quote = typeof Quote.Type
/** A price change. */
export type PriceChange = typeof PriceChange.Type

const requests = json(QuoteRequest)
const quotes = json(Quote)
const priceChanges = json(PriceChange)

/** A replica has no price for the item. */
export class UnknownItem extends Data.TaggedError("UnknownItem")<{ readonly item: string }> {
  override get message(): string {
    return `no price for "${this.item}"`
  }
}

/** A replica refused a quote; `reason` is what it said. */
export class QuoteRefused extends Data.TaggedError("QuoteRefused")<{ readonly reason: string }> {
  override get message(): string {
    return `quote refused: ${this.reason}`
  }
}

/** Waits until the daemon confirmed this connection as a member of `group`. */
export const joined = (group: string): Effect.Effect<void, ConnectionError, Spread> =>
  Effect.flatMap(Spread, (spread) =>
    spread.watch(group).pipe(
      Stream.filter(Option.exists((view) => view.members.includes(spread.privateGroup))),
      Stream.take(1),
      Stream.runDrain,
    ))

/**
 * A replica: answers quote requests on "pricing" from `prices` until the
 * scope closes. Returns once its join is confirmed.
 */
export const serve = (
  prices: Readonly<Record<string, number>>,
): Effect.Effect<void, ConnectionError | RequestError, Spread | Scope.Scope> =>
  Effect.gen(function* () {
    const spread = yield* Spread
    // Returns once the daemon confirmed the join: the first request is answered.
    yield* spread.respondJoined({
      group: PRICING,
      handler: (request) =>
        Effect.gen(function* () {
          const { item, quantity } = yield* requests.decode(request)
          const price = prices[item]
          if (price === undefined) return yield* new UnknownItem({ item })
          return yield* quotes.encode({ item, quantity, total: price * quantity })
        }),
    })
  })

/** Asks a replica for a quote. */
export const quote = (
  item: string,
  quantity: number,
): Effect.Effect<Quote, QuoteRefused | PayloadError | RequestTimeout | RequestError | ConnectionError, Spread> =>
  Effect.gen(function* () {
    const spread = yield* Spread
    const reply = yield* spread.request({
      group: PRICING,
      data: yield* requests.encode({ item, quantity }),
      timeout: "2 seconds",
    })
      .pipe(Effect.catchTag("ResponderError", (e) => new QuoteRefused({ reason: e.reason })))
    return yield* quotes.decode(reply)
  })

/** Announces a price change to every member of "prices" (Agreed order: all see the same sequence). */
export const announce = (
  change: PriceChange,
): Effect.Effect<void, PayloadError | RequestError | ConnectionError, Spread> =>
  Effect.gen(function* () {
    const spread = yield* Spread
    yield* spread.multicast(yield* priceChanges.message(PRICES, change))
  })

/** What `changes` delivers. */
export type ChangeEvent =
  | { readonly _tag: "Change"; readonly change: PriceChange; readonly from: string }
  | { readonly _tag: "Gap"; readonly privateGroup: string }
  | { readonly _tag: "Skipped"; readonly from: string; readonly detail: string }

/** Price changes announced on "prices", from the moment the stream starts (it joins the group). */
export const changes: Stream.Stream<ChangeEvent, ConnectionError | RequestError, Spread> = Stream.unwrap(
  Effect.map(Spread, (spread) =>
    spread.subscribe(PRICES).pipe(
      Stream.mapEffect((m): Effect.Effect<Option.Option<ChangeEvent>> => {
        if (isDiscontinuity(m)) return Effect.succeed(Option.some({ _tag: "Gap", privateGroup: m.privateGroup }))
        if (!isRegular(m)) return Effect.succeed(Option.none()) // membership messages
        return priceChanges.decode(m).pipe(
          Effect.map((change): ChangeEvent => ({ _tag: "Change", change, from: m.sender })),
          Effect.catchTag("PayloadError", (e) =>
            Effect.succeed<ChangeEvent>({ _tag: "Skipped", from: m.sender, detail: e.detail })),
          Effect.map(Option.some),
        )
      }),
      Stream.filterMap((e) =>
        e
      ),
    )),
)
