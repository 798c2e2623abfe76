/**
 * A request/reply service with typed payloads: two replicas of a pricing
 * service answer on the group "pricing", with requests and replies encoded
 * by `json(schema)`. A client asks for one quote (the first reply wins),
 * gathers the answers of both replicas with `requestMany`, gets an error
 * reply for an item nobody sells, and a `RequestTimeout` from a group with
 * no responder.
 *
 * Run: `deno run --allow-net --allow-read --allow-write --allow-env examples/request_reply.ts`
 *
 * @module
 */
import { Console, Data, Effect, Option, Schema, Stream } from "effect"
import { connect, type Connection, json } from "../mod.ts"
import * as Daemon from "../src/daemon/mod.ts"

const QuoteRequest = Schema.Struct({ item: Schema.String, quantity: Schema.Number })
const Quote = Schema.Struct({ item: Schema.String, total: Schema.Number, replica: Schema.String })
const requests = json(QuoteRequest)
const quotes = json(Quote)

const PRICES: Readonly<Record<string, number>> = { tea: 3, coffee: 4 }

class UnknownItem extends Data.TaggedError("UnknownItem")<{ readonly item: string }> {
  override get message(): string {
    return `nobody sells ${this.item}`
  }
}

/** One replica: answers every quote request on "pricing" until interrupted. */
const replica = (conn: Connection, name: string) =>
  conn.respond({
    group: "pricing",
    handler: (req) =>
      Effect.gen(function* () {
        const q = yield* requests.decode(req)
        const price = PRICES[q.item]
        if (price === undefined) return yield* new UnknownItem({ item: q.item })
        return yield* quotes.encode({ item: q.item, total: price * q.quantity, replica: name })
      }),
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
 * @since 0.2.0
 */
export const main: Effect.Effect<ReadonlyArray<string>> = Effect.scoped(Effect.gen(function* () {
  const daemon = yield* Daemon.make({ port: 0, unixSocket: false })
  const [east, west, client, watcher] = yield* Effect.forEach(
    ["east", "west", "client", "watcher"],
    (name) => connect({ daemon: daemon.spreadName, name }),
  )
  yield* Effect.forkScoped(replica(east, "east"))
  yield* Effect.forkScoped(replica(west, "west"))
  yield* watcher.join("pricing")
  yield* members(watcher, "pricing", 3) // both replicas and the watcher

  const out: Array<string> = []
  const say = (s: string) => Effect.zipRight(Console.log(s), Effect.sync(() => out.push(s)))

  // One quote: the first replica to answer.
  const reply = yield* client.request({ group: "pricing", data: yield* requests.encode({ item: "tea", quantity: 5 }) })
  const one = yield* quotes.decode(reply)
  yield* say(`5 tea cost ${one.total}`)

  // Scatter/gather: both replicas answer.
  const all = yield* client.requestMany({
    group: "pricing",
    data: yield* requests.encode({ item: "coffee", quantity: 2 }),
    count: 2,
    timeout: "2 seconds",
  })
  const totals = yield* Effect.forEach(all, (r) => r._tag === "Reply" ? quotes.decode(r) : Effect.die(r.reason))
  yield* say(`2 coffee: ${totals.map((q) => `${q.replica} says ${q.total}`).sort().join(", ")}`)

  // A handler failure comes back as a ResponderError.
  yield* client.request({ group: "pricing", data: yield* requests.encode({ item: "caviar", quantity: 1 }) }).pipe(
    Effect.flatMap(() => say("caviar: unexpectedly priced")),
    Effect.catchTag("ResponderError", (e) => say(`caviar: ${e.reason}`)),
  )

  // Nobody answers on "weather": a RequestTimeout.
  yield* client.request({ group: "weather", data: "tomorrow?", timeout: "200 millis" }).pipe(
    Effect.flatMap(() => say("weather: unexpectedly answered")),
    Effect.catchTag("RequestTimeout", (e) => say(`weather: ${e.message.split(" (")[0]}`)),
  )
  return out
})).pipe(Effect.orDie)

if (import.meta.main) Effect.runPromise(main)
