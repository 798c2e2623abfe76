/**
 * The pricing service of request_reply.ts on a typed request channel: one
 * definition names the group, the request, the reply and the errors the
 * service may answer with (a `Schema.TaggedError`), and both sides use it.
 * Two replicas serve it; a client gets a typed quote, the declared
 * `UnknownItem` error as itself (caught by its tag), a `ChannelError` for a
 * request its own schema refuses (nothing sent), and a `RequestTimeout`
 * from a channel nobody serves. A second channel on the same group
 * (`pricing.currency`) is answered by its own server only.
 *
 * Run: `deno run --allow-net --allow-read --allow-write --allow-env examples/request_reply_channels.ts`
 *
 * @module
 */
import { Console, Effect, Option, Schema, Stream } from "effect"
import { connect, type Connection, defineRequestChannel, openRequestChannel } from "../mod.ts"
import * as Daemon from "../src/daemon/mod.ts"

class UnknownItem extends Schema.TaggedError<UnknownItem>()("UnknownItem", { item: Schema.String }) {
  override get message(): string {
    return `nobody sells ${this.item}`
  }
}

/** The pricing channel: what both sides import. */
const Pricing = defineRequestChannel({
  name: "pricing.quote",
  group: "pricing",
  request: Schema.Struct({ item: Schema.String, quantity: Schema.Number.pipe(Schema.int(), Schema.positive()) }),
  success: Schema.Struct({ item: Schema.String, total: Schema.Number, replica: Schema.String }),
  error: UnknownItem,
  timeout: "2 seconds",
})

/** Another channel on the same group. */
const Currency = defineRequestChannel({
  name: "pricing.currency",
  group: "pricing",
  request: Schema.Void,
  success: Schema.String,
  error: Schema.Never,
})

/** A channel nobody serves. */
const Weather = defineRequestChannel({
  name: "weather.tomorrow",
  group: "weather",
  request: Schema.Void,
  success: Schema.String,
  error: Schema.Never,
  timeout: "200 millis",
})

const PRICES: Readonly<Record<string, number>> = { tea: 3, coffee: 4 }

/** One replica: answers every quote request until interrupted. */
const replica = (conn: Connection, name: string) =>
  openRequestChannel(conn, Pricing).serve(({ item, quantity }) => {
    const price = PRICES[item]
    return price === undefined
      ? Effect.fail(new UnknownItem({ item }))
      : Effect.succeed({ item, total: price * quantity, replica: name })
  })

/** Waits until `conn`'s view of `group` has `n` members. */
const members = (conn: Connection, group: string, n: number) =>
  conn.watch(group).pipe(
    Stream.filter((v) => Option.isSome(v) && v.value.members.length === n),
    Stream.take(1),
    Stream.runDrain,
  )

/**
 * The service and its client: answers what the client learned, one line each.
 *
 * @since 0.3.0
 */
export const main: Effect.Effect<ReadonlyArray<string>> = Effect.scoped(Effect.gen(function* () {
  const daemon = yield* Daemon.make({ port: 0, unixSocket: false })
  const [east, west, client, watcher] = yield* Effect.forEach(
    ["east", "west", "client", "watcher"],
    (name) => connect({ daemon: daemon.spreadName, name }),
  )
  yield* Effect.forkScoped(replica(east, "east"))
  yield* Effect.forkScoped(replica(west, "west"))
  yield* Effect.forkScoped(openRequestChannel(west, Currency).serve(() => Effect.succeed("EUR")))
  yield* watcher.join("pricing")
  yield* members(watcher, "pricing", 3) // both replicas and the watcher

  const out: Array<string> = []
  const say = (s: string) => Effect.zipRight(Console.log(s), Effect.sync(() => out.push(s)))
  const pricing = openRequestChannel(client, Pricing)

  // A typed quote: the first replica to answer.
  const quote = yield* pricing.request({ item: "tea", quantity: 5 })
  yield* say(`5 tea cost ${quote.total} ${yield* openRequestChannel(client, Currency).request(undefined)}`)

  // The declared error arrives as itself.
  yield* pricing.request({ item: "caviar", quantity: 1 }).pipe(
    Effect.flatMap(() => say("caviar: unexpectedly priced")),
    Effect.catchTag("UnknownItem", (e) => say(`caviar: ${e.message}`)),
  )

  // The client's own schema refuses a request: nothing is sent.
  yield* pricing.request({ item: "tea", quantity: -1 }).pipe(
    Effect.flatMap(() => say("-1 tea: unexpectedly priced")),
    Effect.catchTag("ChannelError", (e) => say(`-1 tea: refused before sending (${e.reason})`)),
  )

  // Nobody serves "weather.tomorrow": a RequestTimeout.
  yield* openRequestChannel(client, Weather).request(undefined).pipe(
    Effect.flatMap(() => say("weather: unexpectedly answered")),
    Effect.catchTag("RequestTimeout", (e) => say(`weather: ${e.message.split(" (")[0]}`)),
  )
  return out
})).pipe(Effect.orDie)

if (import.meta.main) Effect.runPromise(main)
