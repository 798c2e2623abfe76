import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber, Stream } from "effect"
import { connect, openChannel, openRequestChannel } from "../../mod.ts"
import { startDaemonProcess } from "../_helpers/daemon_process.ts"
import { awaitMembers, Chat, OutOfStock, PlaceOrder } from "./channels_fixtures.ts"

const CHILD = new URL("./channels_process_child.ts", import.meta.url).pathname

/** Starts the channel server process; resolves once it printed its ready line. */
const startServer = (daemon: string) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-net", "--allow-read", "--allow-env", CHILD, daemon],
        stdout: "piped",
        stderr: "inherit",
      }).spawn()
      const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader()
      let out = ""
      const deadline = Date.now() + 15_000
      while (!/^ready /m.test(out) && Date.now() < deadline) {
        const { value, done } = await reader.read()
        if (done) break
        out += value
      }
      const draining = (async () => {
        for (;;) {
          const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }))
          if (done) return
          out += value
        }
      })()
      let gone: Promise<unknown> | undefined
      const kill = () => {
        if (gone === undefined) {
          try {
            child.kill("SIGKILL")
          } catch {
            // already gone
          }
          gone = Promise.all([child.status, draining])
        }
        return gone
      }
      return { ready: /^ready /m.test(out), output: () => out, kill: Effect.promise(kill) }
    }),
    (s) => s.kill,
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
