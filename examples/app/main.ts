/**
 * The pricing replica as a long-lived process: connects with the settings
 * in the environment (SPREAD_DAEMON, SPREAD_NAME, …; with none set, the
 * Unix socket /tmp/4803 of a daemon on this machine), retries the first
 * connect like every later reconnect, answers quotes and logs price changes
 * until SIGINT or SIGTERM, then leaves its groups, disconnects and exits 0.
 *
 * Run: `SPREAD_DAEMON=4803@127.0.0.1 deno task start`
 *
 * @module
 */
import { Cause, Config, Effect, Layer, Stream } from "effect"
import { ConnectConfig, layerConfig, reconnectBackoff } from "@spreadfx/spreadfx"
import { changes, serve } from "./src/pricing.ts"

const backoff = reconnectBackoff({ delay: "100 millis", maxDelay: "5 seconds", attempts: 30 })

// The environment's settings, plus a reconnect schedule; Layer.retry applies
// the same schedule to the first connect, which `reconnect` does not cover.
const SpreadLive = layerConfig(Config.map(ConnectConfig, (options) => ({ reconnect: backoff, ...options })))
  .pipe(Layer.retry(backoff))

const replica = Effect.scoped(Effect.gen(function* () {
  yield* serve({ tea: 3, coffee: 4 })
  yield* Effect.log("pricing replica ready")
  yield* changes.pipe(Stream.runForEach((e) => Effect.log(e)))
}))

const fiber = Effect.runFork(replica.pipe(Effect.provide(SpreadLive)))
const stop = () => fiber.unsafeInterruptAsFork(fiber.id())
Deno.addSignalListener("SIGINT", stop)
Deno.addSignalListener("SIGTERM", stop)
fiber.addObserver((exit) => {
  if (exit._tag === "Failure" && !Cause.isInterruptedOnly(exit.cause)) {
    console.error(Cause.pretty(exit.cause))
    Deno.exit(1)
  }
  Deno.exit(0)
})
