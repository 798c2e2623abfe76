/**
 * Channel definitions shared by the channel tests and the server process of
 * channels_process.test.ts, plus small helpers.
 */
import { Effect, Option, Schema } from "effect"
import { type Connection, defineChannel, defineRequestChannel } from "../../mod.ts"

export const Line = Schema.Struct({ from: Schema.String, text: Schema.String, at: Schema.Date })
export const Chat = defineChannel({ name: "chat.line", group: "room", schema: Line })
export const Presence = defineChannel({
  name: "chat.presence",
  group: "room",
  schema: Schema.Struct({ who: Schema.String, here: Schema.Boolean }),
})

export class OutOfStock extends Schema.TaggedError<OutOfStock>()("OutOfStock", {
  item: Schema.String,
  left: Schema.Number,
}) {}
export class Unknown extends Schema.TaggedError<Unknown>()("UnknownItem", { item: Schema.String }) {}

export const PlaceOrder = defineRequestChannel({
  name: "orders.place",
  group: "orders",
  request: Schema.Struct({ item: Schema.String, qty: Schema.Number.pipe(Schema.int(), Schema.positive()) }),
  success: Schema.Struct({ orderId: Schema.Number, total: Schema.Number }),
  error: Schema.Union(OutOfStock, Unknown),
  timeout: "3 seconds",
})

export const Stock = defineRequestChannel({
  name: "orders.stock",
  group: "orders",
  request: Schema.String,
  success: Schema.Number,
  error: Schema.Never,
})

/** The handler the tests serve PlaceOrder with: tea in stock (5), coffee out, anything else unknown. */
export const placeOrder = (
  o: { readonly item: string; readonly qty: number },
): Effect.Effect<{ readonly orderId: number; readonly total: number }, OutOfStock | Unknown> =>
  o.item === "tea"
    ? o.qty <= 5 ? Effect.succeed({ orderId: 42, total: o.qty * 3 }) : Effect.fail(
      new OutOfStock({ item: "tea", left: 5 }),
    )
    : o.item === "coffee"
    ? Effect.fail(new OutOfStock({ item: "coffee", left: 0 }))
    : Effect.fail(new Unknown({ item: o.item }))

/** Waits until `conn`'s view of `group` has `n` members. */
export const awaitMembers = (conn: Connection, group: string, n: number) =>
  Effect.gen(function* () {
    for (;;) {
      const v = yield* conn.view(group)
      if (Option.isSome(v) && v.value.members.length >= n) return
      yield* Effect.sleep("5 millis")
    }
  })
