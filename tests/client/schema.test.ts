import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Schema, Stream } from "effect"
import { isRegular } from "../../src/client/core/refinements.ts"
import { json, PayloadError } from "../../src/client/features/schema.ts"
import { daemonAndClients } from "../_helpers/clients.ts"

const Order = Schema.Struct({
  id: Schema.Number.pipe(Schema.int(), Schema.positive()),
  item: Schema.String,
  at: Schema.Date,
})
const orders = json(Order)
const bytes = (s: string) => new TextEncoder().encode(s)

/** The failure of `self`, asserting it is a typed failure and not a defect. */
const failureOf = <A, E>(self: Effect.Effect<A, E>) =>
  Effect.map(Effect.exit(self), (exit) => {
    expect(Exit.isFailure(exit)).toBe(true)
    if (Exit.isSuccess(exit)) throw new Error("expected a failure")
    expect(Cause.isDie(exit.cause)).toBe(false)
    const e = Cause.failureOption(exit.cause)
    if (e._tag === "None") throw new Error("expected a typed failure")
    return e.value
  })

describe("json(schema)", () => {
  it.scopedLive("a value goes through a daemon and comes back decoded, Date and all", () =>
    Effect.gen(function* () {
      const { clients: [a] } = yield* daemonAndClients("alice")
      const at = new Date("2026-01-02T03:04:05.678Z")
      const received = yield* Effect.fork(
        a.subscribe("orders").pipe(Stream.filter(isRegular), Stream.take(1), Stream.runCollect),
      )
      while ((yield* a.views).size === 0) yield* Effect.sleep("5 millis")
      yield* a.multicast(yield* orders.message("orders", { id: 7, item: "tea", at }, { messType: 3 }))
      const [m] = yield* received.await.pipe(Effect.flatten)
      expect(m.messType).toBe(3)
      expect(new TextDecoder().decode(m.data)).toBe('{"id":7,"item":"tea","at":"2026-01-02T03:04:05.678Z"}')
      const order = yield* orders.decode(m)
      expect(order).toEqual({ id: 7, item: "tea", at })
      expect(order.at).toBeInstanceOf(Date)
    }), 10_000)

  it.effect("a payload that is not JSON, not UTF-8, or not the schema's shape is a typed PayloadError", () =>
    Effect.gen(function* () {
      const notJson = yield* failureOf(orders.decode(bytes("hello")))
      expect(notJson).toBeInstanceOf(PayloadError)
      expect(notJson.reason).toBe("Decode")
      const notUtf8 = yield* failureOf(orders.decode(Uint8Array.of(0x7b, 0xff, 0x7d)))
      expect(notUtf8.detail).toContain("not UTF-8")
      const wrongShape = yield* failureOf(orders.decode({ data: bytes('{"id":-1,"item":"x","at":"2026-01-01"}') }))
      expect(wrongShape.reason).toBe("Decode")
      expect(wrongShape.detail).toContain("id")
      const badDate = yield* failureOf(orders.decode(bytes('{"id":1,"item":"x","at":"not a date"}')))
      expect(badDate.detail).toContain("at")
    }))

  it.effect("a value the schema cannot encode is a typed PayloadError with reason Encode", () =>
    Effect.gen(function* () {
      const e = yield* failureOf(orders.encode({ id: 1.5, item: "x", at: new Date(0) }))
      expect(e._tag).toBe("PayloadError")
      expect(e.reason).toBe("Encode")
      const ok = yield* orders.encode({ id: 1, item: "x", at: new Date(0) })
      expect(new TextDecoder().decode(ok)).toBe('{"id":1,"item":"x","at":"1970-01-01T00:00:00.000Z"}')
    }))
})
