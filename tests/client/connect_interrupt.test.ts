/**
 * An interrupted `connect` leaves no socket behind, whatever instant the
 * interruption lands: before the dial, during it, mid-handshake, after it.
 * The daemon runs in its own process, so this process's descriptors are the
 * client's only.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Scope } from "effect"
import { connect } from "../../src/client/connection.ts"
import { startDaemonProcess } from "../_helpers/daemon_process.ts"

const TIMEOUT = 60_000

const openFds = (): number => [...Deno.readDirSync("/proc/self/fd")].length

/**
 * A proxy in a child process to `port` that holds each direction's bytes
 * for 0-4 ms, so interruptions land mid-handshake too; answers its port.
 */
const slowProxy = (port: number) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const code = `
        const l = Deno.listen({ hostname: "127.0.0.1", port: 0 })
        console.log(l.addr.port)
        const pipe = async (a, b) => {
          const buf = new Uint8Array(65536)
          try {
            for (;;) {
              const n = await a.read(buf)
              if (n === null) break
              await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 5)))
              let o = 0
              while (o < n) o += await b.write(buf.subarray(o, n))
            }
          } catch {}
          try { a.close() } catch {}
          try { b.close() } catch {}
        }
        for await (const c of l) {
          Deno.connect({ hostname: "127.0.0.1", port: ${port} }).then((u) => { pipe(c, u); pipe(u, c) }, () => c.close())
        }`
      const child = new Deno.Command(Deno.execPath(), {
        args: ["eval", code],
        stdout: "piped",
        stderr: "inherit",
      }).spawn()
      const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader()
      const { value } = await reader.read()
      reader.releaseLock()
      return { child, port: Number(value?.trim()) }
    }),
    ({ child }) =>
      Effect.promise(async () => {
        child.kill("SIGKILL")
        await child.stdout.cancel().catch(() => undefined)
        await child.status
      }),
  )

describe("connect interrupted at any instant", () => {
  it.scopedLive(
    "leaves no descriptor open: 400 connects interrupted at increasing delays, one long-lived scope",
    () =>
      Effect.gen(function* () {
        const d = yield* startDaemonProcess({})
        const proxy = yield* slowProxy(d.address._tag === "Tcp" ? d.address.port : 0)
        const daemon = `${proxy.port}@127.0.0.1`
        // Warm up (module loading, the first connection's lazily opened resources).
        yield* Effect.scoped(Effect.flatMap(connect({ daemon, metrics: false }), (c) => c.close))
        const scope = yield* Scope.make()
        const before = openFds()
        let completed = 0
        let interrupted = 0
        for (let i = 0; i < 400; i++) {
          // Twenty at once, and the one interrupted at a chosen instant.
          const others = yield* Effect.forEach(
            Array.from({ length: i % 10 === 0 ? 20 : 0 }),
            () => Effect.fork(Scope.extend(connect({ daemon, metrics: false }), scope)),
          )
          const fiber = yield* Effect.fork(Scope.extend(connect({ daemon, metrics: false }), scope))
          // Interrupt at once, after yields, or after a few event-loop turns.
          if (i % 4 === 1) yield* Effect.yieldNow()
          else if (i % 4 === 2) yield* Effect.sleep(`${i % 40} millis`)
          else if (i % 4 === 3) yield* Effect.repeatN(Effect.yieldNow(), i % 20)
          for (const f of [fiber, ...others]) {
            const exit = yield* Fiber.interrupt(f)
            if (exit._tag === "Success") {
              completed++
              yield* exit.value.close
            } else {
              interrupted++
            }
          }
        }
        console.log(`connect_interrupt: ${completed} completed, ${interrupted} interrupted`)
        // Give the kernel a moment to report closed sockets.
        yield* Effect.sleep("200 millis")
        const after = openFds()
        expect(interrupted).toBeGreaterThan(0)
        expect({ completed, interrupted, leaked: after - before }).toMatchObject({ leaked: 0 })
        yield* Scope.close(scope, { _tag: "Success", value: undefined } as never)
      }),
    TIMEOUT,
  )
})
