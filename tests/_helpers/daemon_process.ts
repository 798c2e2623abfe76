/**
 * Starts `daemon_main.ts` (an embedded daemon with a given config) in its
 * own process, so a test sees the daemon from outside: its own event loop,
 * its own heap, its log as text.
 */
import { Effect, type Scope } from "effect"
import type { DaemonConfig } from "../../src/daemon/mod.ts"
import type { Address } from "../../src/protocol/address.ts"

const MAIN = new URL("./daemon_main.ts", import.meta.url).pathname

/** A daemon in a child process. */
export interface DaemonProcess {
  /** Its TCP address. */
  readonly address: Address
  /** Its pid. */
  readonly pid: number
  /** Everything it printed so far (start line and log records). */
  readonly output: () => string
  /** SIGKILL, and wait until the process is gone (idempotent; the scope does it too). */
  readonly kill: Effect.Effect<void>
}

/** Starts the daemon process and waits for its start line; the scope kills it. */
export const startDaemonProcess = (config: DaemonConfig = {}): Effect.Effect<DaemonProcess, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-net", "--allow-read", "--allow-write", "--allow-env", MAIN, JSON.stringify(config)],
        stdout: "piped",
        stderr: "inherit",
      }).spawn()
      const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader()
      let out = ""
      let port = 0
      const deadline = Date.now() + 10_000
      while (port === 0 && Date.now() < deadline) {
        const { value, done } = await reader.read()
        if (done) break
        out += value
        const m = /^listening on (\d+)@/m.exec(out)
        if (m !== null) port = Number(m[1])
      }
      if (port === 0) {
        child.kill("SIGKILL")
        await child.status
        throw new Error(`the daemon process printed no start line: ${JSON.stringify(out)}`)
      }
      // Keep draining stdout so the child never blocks on a full pipe.
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
      const running: DaemonProcess = {
        address: { _tag: "Tcp", hostname: "127.0.0.1", port },
        pid: child.pid,
        output: () => out,
        kill: Effect.asVoid(Effect.promise(kill)),
      }
      return running
    }),
    (running) => running.kill,
  )
