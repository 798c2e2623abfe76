/**
 * The server process of channels_process.test.ts: `deno run -A
 * channels_process_child.ts <daemon>` connects, serves PlaceOrder (traced,
 * with Effect's own tracer) and, for each order it takes, publishes a Chat
 * line. Prints `ready <private group>` once it is a member of the group,
 * then `traceparent <value>` for each request it handles.
 */
import { Console, Effect, Option } from "effect"
import { connect, openChannel, openRequestChannel } from "../../mod.ts"
import { Chat, PlaceOrder, placeOrder } from "./channels_fixtures.ts"

const daemon = Deno.args[0] ?? "4803"

Effect.runFork(Effect.scoped(Effect.gen(function* () {
  const conn = yield* connect({ daemon, name: "server" })
  const chat = openChannel(conn, Chat)
  yield* Effect.forkScoped(
    openRequestChannel(conn, PlaceOrder, { tracing: true }).serve((order, info) =>
      Effect.gen(function* () {
        yield* Console.log(`traceparent ${info.traceparent ?? "none"}`)
        const placed = yield* placeOrder(order)
        yield* chat.publish({ from: "server", text: `placed ${order.qty} ${order.item}`, at: new Date(0) }).pipe(
          Effect.orDie,
        )
        return placed
      })
    ),
  )
  while (Option.isNone(yield* conn.view(PlaceOrder.group))) yield* Effect.sleep("5 millis")
  yield* Console.log(`ready ${conn.privateGroup}`)
  return yield* Effect.never
})))
