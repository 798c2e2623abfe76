// The testing layer (the README's testing example itself runs as examples/app/tests/echo.test.ts).
import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { Spread } from "../../mod.ts"
import { connectTest, layerTest, SpreadDaemon } from "../../src/testing/mod.ts"

layer(layerTest(), { excludeTestServices: true })("layerTest", (it) => {
  it.scoped("provides a Spread connected to an embedded daemon; a request gets its reply", () =>
    Effect.gen(function* () {
      const spread = yield* Spread
      const server = yield* connectTest({ name: "echo" })
      yield* server.respondJoined({ group: "echo", handler: (req) => Effect.succeed(req.data) })
      const reply = yield* spread.request({ group: "echo", data: "ping" })
      expect(new TextDecoder().decode(reply.data)).toBe("ping")
      expect(reply.sender).toBe("#echo#localhost")
    }))

  it.effect("the daemon is on a free loopback port, without a Unix socket", () =>
    Effect.gen(function* () {
      const daemon = yield* SpreadDaemon
      const spread = yield* Spread
      expect(daemon.port).toBeGreaterThan(0)
      expect(daemon.unixPath).toBeUndefined()
      expect(spread.address).toBe(daemon.spreadName)
      expect(daemon.stats().sessions).toBeGreaterThanOrEqual(1)
    }))
})
