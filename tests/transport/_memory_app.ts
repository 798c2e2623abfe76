/**
 * A daemon and two clients over the in-memory transport, in a process run
 * with `--deny-net` (tests/transport/memory.test.ts): any socket it tried to
 * open would fail with a permission error. Prints the message received.
 */
import { Chunk, Effect, Logger, LogLevel, Stream } from "effect"
import { connect } from "../../src/client/connection.ts"
import { isRegular, text } from "../../src/client/core/refinements.ts"
import * as Daemon from "../../src/daemon/mod.ts"
import { layerMemory } from "../../src/transport/memory.ts"

const program = Effect.scoped(Effect.gen(function* () {
  const daemon = yield* Daemon.make({ port: 4803, name: "memory" })
  const a = yield* connect({ daemon: daemon.spreadName, name: "a" })
  const b = yield* connect({ daemon: "4803", name: "b" })
  yield* b.join("g")
  // The join is in once the daemon lists b (a message sent before may miss b).
  yield* Effect.sleep("5 millis").pipe(Effect.repeat({ until: () => daemon.members("g").length === 1 }))
  yield* a.multicast({ groups: "g", data: "no socket here" })
  const got = yield* b.messages.pipe(Stream.filter(isRegular), Stream.take(1), Stream.runCollect)
  console.log(`${Chunk.unsafeHead(got).sender}: ${text(Chunk.unsafeHead(got))}`)
}))

await Effect.runPromise(
  program.pipe(Effect.provide(layerMemory), Logger.withMinimumLogLevel(LogLevel.Warning), Effect.timeout("10 seconds")),
)
