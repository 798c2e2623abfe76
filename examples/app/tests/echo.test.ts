import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { Spread } from "@spreadfx/spreadfx"
import { connectTest, layerTest } from "@spreadfx/spreadfx/testing"

layer(layerTest(), { excludeTestServices: true })("echo service", (it) => {
  it.scoped("a request gets its reply", () =>
    Effect.gen(function* () {
      const spread = yield* Spread
      const server = yield* connectTest({ name: "echo" })
      // Returns once the responder's join is confirmed: the first request is answered.
      yield* server.respondJoined({ group: "echo", handler: (req) => Effect.succeed(req.data) })
      const reply = yield* spread.request({ group: "echo", data: "ping" })
      expect(new TextDecoder().decode(reply.data)).toBe("ping")
    }))
})
