import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber, Stream } from "effect"
import { connect, openChannel, openRequestChannel } from "../../mod.ts"
import { startDaemonProcess, startProcess } from "../_helpers/daemon_process.ts"
import { awaitMembers, Chat, OutOfStock, PlaceOrder } from "./channels_fixtures.ts"

const CHILD = new URL("./channels_process_child.ts", import.meta.url).pathname

/** Starts the channel server process; resolves once it printed its ready line (or gave up after 15 s). */
const startServer = (daemon: string) =>
  Effect.map(
    startProcess(["--allow-net", "--allow-read", "--allow-env", CHILD, daemon], /^ready /m, 15_000),
    (p) => ({ ready: p.ready !== null, output: p.output, kill: p.kill }),
  )

describe("typed channels across processes", () => {
  it.scopedLive(
    "a request channel served in another process (daemon in a third): typed success, declared error, the caller's trace id, a typed broadcast; kill -9 ends in a timeout",
    () =>
      Effect.gen(function* () {
        const daemon = yield* startDaemonProcess()
        const address = `${daemon.address._tag === "Tcp" ? daemon.address.port : 0}@127.0.0.1`
        const server = yield* startServer(address)
        expect(server.ready).toBe(true)
        const conn = yield* connect({ daemon: address, name: "client" })
        const lines = yield* Effect.forkScoped(
          openChannel(conn, Chat).subscribe().pipe(Stream.take(1), Stream.runCollect),
        )
        yield* awaitMembers(conn, "room", 1)
        const orders = openRequestChannel(conn, PlaceOrder, { tracing: true })

        const placed = yield* orders.request({ item: "tea", qty: 3 })
        expect(placed).toEqual({ orderId: 42, total: 9 })
        expect([...(yield* Fiber.join(lines))].map((l) => l.text)).toEqual(["placed 3 tea"])

        const refused = yield* Effect.exit(orders.request({ item: "coffee", qty: 1 }))
        expect(Exit.isFailure(refused) && Cause.failureOption(refused.cause)._tag === "Some").toBe(true)
        if (Exit.isFailure(refused)) {
          const e = Cause.failureOption(refused.cause)
          expect(e._tag === "Some" && e.value).toEqual(new OutOfStock({ item: "coffee", left: 0 }))
          expect(e._tag === "Some" && e.value instanceof OutOfStock).toBe(true)
        }

        // The server process saw a W3C traceparent naming this process's trace.
        const traced = yield* orders.request({ item: "tea", qty: 1 }).pipe(
          Effect.zipRight(Effect.map(Effect.currentSpan, (s) => s.traceId)),
          Effect.withSpan("traced checkout"),
        )
        const seen = [...server.output().matchAll(/^traceparent (\S+)$/gm)].map((m) => m[1])
        expect(seen).toHaveLength(3)
        expect(seen[2]).toMatch(new RegExp(`^00-${traced}-[0-9a-f]{16}-01$`))

        yield* server.kill
        const after = yield* Effect.exit(orders.request({ item: "tea", qty: 1 }, { timeout: "300 millis" }))
        expect(Exit.isFailure(after) && Cause.failureOption(after.cause).pipe((o) => o._tag === "Some" && o.value._tag))
          .toBe("RequestTimeout")
      }),
    30_000,
  )
})
