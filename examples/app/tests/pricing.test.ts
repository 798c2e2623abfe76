/**
 * The pricing service against the embedded daemon of
 * "@spreadfx/spreadfx/testing", imported by package name as any dependent
 * project would. No sleeps: `serve` returns once its join is confirmed, and
 * the change listener waits for its own join the same way.
 */
import { expect, layer } from "@effect/vitest"
import { Chunk, Effect, Exit, Fiber, Layer, Scope, Stream } from "effect"
import { connect, reconnectBackoff, Spread } from "@spreadfx/spreadfx"
import * as Daemon from "@spreadfx/spreadfx/daemon"
import { connectTest, layerTest } from "@spreadfx/spreadfx/testing"
import { announce, changes, joined, PRICES, quote, serve } from "../src/pricing.ts"

/** A replica on a connection of its own, for the test's scope. */
const replica = (prices: Readonly<Record<string, number>>) =>
  Effect.flatMap(connectTest({ name: "replica" }), (conn) => serve(prices).pipe(Effect.provideService(Spread, conn)))

layer(layerTest(), { excludeTestServices: true })("pricing", (it) => {
  it.scoped("the first quote after serve returns is answered", () =>
    Effect.gen(function* () {
      yield* replica({ tea: 3 })
      expect(yield* quote("tea", 5)).toEqual({ item: "tea", quantity: 5, total: 15 })
    }))

  it.scoped("a replica's refusal is a QuoteRefused naming the item", () =>
    Effect.gen(function* () {
      yield* replica({ tea: 3 })
      const error = yield* Effect.flip(quote("caviar", 1))
      expect(error._tag).toBe("QuoteRefused")
      expect(error.message).toContain('no price for "caviar"')
    }))

  it.scoped("a quantity the schema refuses fails before anything is sent", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(quote("tea", 0))
      expect(error._tag).toBe("PayloadError")
    }))

  it.scoped("changes decodes announced price changes in order and reports a payload that is not one", () =>
    Effect.gen(function* () {
      const listener = yield* connectTest({ name: "listener" })
      const seen = yield* changes.pipe(
        Stream.take(3),
        Stream.runCollect,
        Effect.provideService(Spread, listener),
        Effect.fork,
      )
      yield* joined(PRICES).pipe(Effect.provideService(Spread, listener))
      yield* announce({ item: "tea", price: 4 })
      const spread = yield* Spread
      yield* spread.multicast({ groups: PRICES, data: "not json" })
      yield* announce({ item: "tea", price: 5 })
      const events = Chunk.toReadonlyArray(yield* Fiber.join(seen))
      expect(events.map((e) => e._tag)).toEqual(["Change", "Skipped", "Change"])
      expect(events[0]).toMatchObject({ change: { item: "tea", price: 4 }, from: spread.privateGroup })
      expect(events[2]).toMatchObject({ change: { item: "tea", price: 5 } })
    }))
})

layer(Layer.empty, { excludeTestServices: true })("pricing across a daemon restart", (it) => {
  it.scoped(
    "changes marks the gap with a Gap event and goes on after the connection is back",
    () =>
      Effect.gen(function* () {
        const daemonOn = (port: number) =>
          Effect.flatMap(Scope.make(), (scope) =>
            Effect.map(
              Daemon.make({ host: "127.0.0.1", port, unixSocket: false }).pipe(Scope.extend(scope)),
              (daemon) => ({ daemon, stop: Scope.close(scope, Exit.void) }),
            ))
        const first = yield* daemonOn(0)
        const address = first.daemon.spreadName
        const listener = yield* connect({
          daemon: address,
          name: "listener",
          reconnect: reconnectBackoff({ delay: "20 millis", maxDelay: "200 millis", attempts: 50 }),
        })
        const withListener = Effect.provideService(Spread, listener)
        const seen = yield* changes.pipe(Stream.take(3), Stream.runCollect, withListener, Effect.fork)
        yield* withListener(joined(PRICES))
        const publisher = (price: number) =>
          Effect.scoped(
            Effect.flatMap(
              connect({ daemon: address }),
              (p) => announce({ item: "tea", price }).pipe(Effect.provideService(Spread, p)),
            ),
          )
        yield* publisher(4)
        const back = yield* listener.events.pipe(
          Stream.filter((e) => e._tag === "Reconnected"),
          Stream.runHead,
          Effect.fork,
        )
        yield* first.stop
        const second = yield* daemonOn(first.daemon.port)
        yield* Fiber.join(back)
        yield* withListener(joined(PRICES)) // rejoined on the new daemon
        yield* publisher(5)
        const events = Chunk.toReadonlyArray(yield* Fiber.join(seen))
        expect(events.map((e) => e._tag)).toEqual(["Change", "Gap", "Change"])
        expect(events[2]).toMatchObject({ change: { item: "tea", price: 5 } })
        yield* second.stop
      }),
    20_000,
  )
})
