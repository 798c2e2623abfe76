/**
 * A leader-free inventory: every shop counter holds the same stock, as a
 * `replicated` value over the group "inventory". A sale is an operation
 * (`{ take: item }`) multicast AGREED; every member applies the sales in the
 * one order the daemons deliver them, so when two counters sell the last
 * tea at once, every member agrees which sale got it and which was refused
 * — with no leader, no lock and no second round trip.
 *
 * In one process (an embedded daemon and three counters):
 *   `deno run -A examples/replicated_inventory.ts`
 * As separate processes against a daemon (run several at once):
 *   `deno run -A examples/replicated_inventory.ts --daemon 4803@127.0.0.1 --name c1 --sales 30 --counters 3`
 * Each counter sells `--sales` teas, waits until the sales of all
 * `--counters` counters were applied, and prints the inventory as JSON.
 *
 * @module
 */
import { Console, Effect, Fiber, Schema, Stream } from "effect"
import { connect, type Connection, replicated } from "../mod.ts"
import * as Daemon from "../src/daemon/mod.ts"

/** The inventory: stock per item, sales applied, sales refused (out of stock). */
const Inventory = Schema.Struct({
  stock: Schema.Record({ key: Schema.String, value: Schema.Int }),
  sold: Schema.Int,
  refused: Schema.Int,
})
type Inventory = typeof Inventory.Type

/** A sale of one `take`, or a restock of `restock` by `n`. */
const Change = Schema.Union(
  Schema.Struct({ take: Schema.String }),
  Schema.Struct({ restock: Schema.String, n: Schema.Int }),
)
type Change = typeof Change.Type

const apply = (inv: Inventory, c: Change): Inventory => {
  if ("restock" in c) return { ...inv, stock: { ...inv.stock, [c.restock]: (inv.stock[c.restock] ?? 0) + c.n } }
  const have = inv.stock[c.take] ?? 0
  return have > 0
    ? { ...inv, stock: { ...inv.stock, [c.take]: have - 1 }, sold: inv.sold + 1 }
    : { ...inv, refused: inv.refused + 1 }
}

/** The first counter's inventory. */
export const OPENING: Inventory = { stock: { tea: 50, cake: 10 }, sold: 0, refused: 0 }

/**
 * One counter: joins the inventory, sells `sales` teas, and answers the
 * inventory once the sales of `counters` counters were applied.
 *
 * @since 0.3.0
 */
export const counter = (conn: Connection, sales: number, counters: number): Effect.Effect<Inventory, unknown> =>
  Effect.gen(function* () {
    const inventory = yield* replicated(conn, {
      group: "inventory",
      value: Inventory,
      operation: Change,
      initial: OPENING,
      apply,
    })
    for (let i = 0; i < sales; i++) yield* inventory.update({ take: "tea" })
    return yield* inventory.changes.pipe(
      Stream.filter((inv) => inv.sold + inv.refused >= sales * counters),
      Stream.take(1),
      Stream.runHead,
      Effect.flatten,
    )
  }).pipe(Effect.scoped)

/**
 * Three counters in one process, each selling 30 teas of 50: answers what
 * each counter holds at the end.
 *
 * @since 0.3.0
 */
export const main: Effect.Effect<ReadonlyArray<Inventory>> = Effect.scoped(Effect.gen(function* () {
  const daemon = yield* Daemon.make({ port: 0, unixSocket: false })
  const conns = yield* Effect.forEach(["c1", "c2", "c3"], (name) => connect({ daemon: daemon.spreadName, name }))
  // The first counter opens the shop, then all three sell at once.
  const first = yield* Effect.forkScoped(counter(conns[0], 30, 3))
  yield* Effect.sleep("50 millis")
  const others = yield* Effect.forEach(conns.slice(1), (c) => counter(c, 30, 3), { concurrency: "unbounded" })
  const all = [yield* Fiber.join(first), ...others]
  for (const [i, inv] of all.entries()) yield* Console.log(`c${i + 1}: ${JSON.stringify(inv)}`)
  return all
})).pipe(Effect.orDie)

const arg = (name: string): string | undefined => {
  const i = Deno.args.indexOf(`--${name}`)
  return i >= 0 ? Deno.args[i + 1] : undefined
}

if (import.meta.main) {
  const daemon = arg("daemon")
  if (daemon === undefined) {
    await Effect.runPromise(main)
  } else {
    const sales = Number(arg("sales") ?? "10")
    const counters = Number(arg("counters") ?? "1")
    await Effect.runPromise(
      Effect.scoped(Effect.gen(function* () {
        const conn = yield* connect({ daemon, name: arg("name") })
        const inv = yield* counter(conn, sales, counters)
        yield* Console.log(JSON.stringify(inv))
      })).pipe(Effect.orDie),
    )
  }
}
