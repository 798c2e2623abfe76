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

/** A child process started by {@link startProcess}. */
export interface ChildProcess {
  /** Its pid. */
  readonly pid: number
  /** The first match of the ready pattern in its output, or null when it ended or timed out first. */
  readonly ready: RegExpExecArray | null
  /** Everything it printed so far. */
  readonly output: () => string
  /** SIGKILL, and wait until the process is gone (idempotent; the scope does it too). */
  readonly kill: Effect.Effect<void>
}

/**
 * Runs `deno run <args>` in a child process and waits (at most `timeoutMs`)
 * until its stdout matches `ready`; then keeps draining stdout so the child
 * never blocks on a full pipe. The scope kills it.
 */
export const startProcess = (
  args: ReadonlyArray<string>,
  ready: RegExp,
  timeoutMs = 10_000,
): Effect.Effect<ChildProcess, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", ...args],
        stdout: "piped",
        stderr: "inherit",
      }).spawn()
      const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader()
      let out = ""
      let match: RegExpExecArray | null = null
      const deadline = Date.now() + timeoutMs
      while (match === null && Date.now() < deadline) {
        const { value, done } = await reader.read()
        if (done) break
        out += value
        match = ready.exec(out)
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
      const started: ChildProcess = {
        pid: child.pid,
        ready: match,
        output: () => out,
        kill: Effect.asVoid(Effect.promise(kill)),
      }
      return started
    }),
    (started) => started.kill,
  )

/** Starts the daemon process and waits for its start line; the scope kills it. */
export const startDaemonProcess = (config: DaemonConfig = {}): Effect.Effect<DaemonProcess, never, Scope.Scope> =>
  Effect.gen(function* () {
    const p = yield* startProcess(
      ["--allow-net", "--allow-read", "--allow-write", "--allow-env", MAIN, JSON.stringify(config)],
      /^listening on (\d+)@/m,
    )
    if (p.ready === null) {
      yield* p.kill
      return yield* Effect.die(new Error(`the daemon process printed no start line: ${JSON.stringify(p.output())}`))
    }
    const running: DaemonProcess = {
      address: { _tag: "Tcp", hostname: "127.0.0.1", port: Number(p.ready[1]) },
      pid: p.pid,
      output: p.output,
      kill: p.kill,
    }
    return running
  })
