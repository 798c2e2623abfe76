import { expect, layer } from "@effect/vitest"
import { Effect, Option, Stream } from "effect"
import { Spread } from "@spreadfx/spreadfx"
import { connectTest, layerTest } from "@spreadfx/spreadfx/testing"

layer(layerTest(), { excludeTestServices: true })("echo service", (it) => {
  it.scoped("a request gets its reply", () =>
    Effect.gen(function* () {
      const spread = yield* Spread
      const server = yield* connectTest({ name: "echo" })
      yield* Effect.forkScoped(server.respond({ group: "echo", handler: (req) => Effect.succeed(req.data) }))
      yield* server.watch("echo").pipe(Stream.filter(Option.isSome), Stream.take(1), Stream.runDrain) // joined
      const reply = yield* spread.request({ group: "echo", data: "ping" })
      expect(new TextDecoder().decode(reply.data)).toBe("ping")
    }))
})
