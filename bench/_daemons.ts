/**
 * Daemons the benchmarks run against: an embedded one in this
 * process (sharing its JavaScript thread with the client), one in its own
 * process (`src/cli/daemon.ts`, so client and daemon use two cores), and
 * the daemon named by SPREAD_DAEMON when set.
 *
 * @module
 */
import { Effect, Exit, Logger, LogLevel, Scope } from "effect"
import * as Daemon from "../src/daemon/mod.ts"

/**
 * The V8 flags `deno task daemon` runs the daemon with (from deno.json), so
 * a daemon process a benchmark starts is the documented one;
 * `DAEMON_V8_FLAGS` overrides them (`DAEMON_V8_FLAGS=` for V8's defaults).
 */
export const daemonV8Flags: ReadonlyArray<string> = (() => {
  const override = Deno.env.get("DAEMON_V8_FLAGS")
  if (override !== undefined) return override.split(",").filter((f) => f !== "")
  const config = JSON.parse(Deno.readTextFileSync(new URL("../deno.json", import.meta.url)))
  const m = /--v8-flags=(\S+)/.exec(String(config.tasks.daemon.command))
  return m === null ? [] : m[1].split(",")
})()

/**
 * `deno run` and its flags for the daemon command (`src/cli/daemon.ts`) as
 * `deno task daemon` runs it: its permissions (`--allow-ffi` unless `ffi`
 * is false) and its V8 flags; the daemon's own flags go after.
 */
export const daemonCommand = (ffi = true): Array<string> => [
  "run",
  "--allow-net",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  ...(ffi ? ["--allow-ffi"] : []),
  ...(daemonV8Flags.length === 0 ? [] : [`--v8-flags=${daemonV8Flags.join(",")}`]),
  new URL("../src/cli/daemon.ts", import.meta.url).pathname,
]

/** A daemon to measure against, and how to stop it. */
export interface Target {
  readonly label: string
  readonly spreadName: string
  /** The daemon's process id, when it runs in its own process. */
  readonly pid?: number
  readonly stop: () => Promise<void>
}

/** An embedded daemon in this process. */
export const inProcess = async (): Promise<Target> => {
  const scope = Effect.runSync(Scope.make())
  const daemon = await Effect.runPromise(
    Daemon.make({ port: 0 }).pipe(Scope.extend(scope), Logger.withMinimumLogLevel(LogLevel.Error)),
  )
  return {
    label: "in-process",
    spreadName: daemon.spreadName,
    stop: () => Effect.runPromise(Scope.close(scope, Exit.void)),
  }
}

/** An embedded daemon in a child process on `port` (0: a free one), with extra daemon flags. */
export const ownProcess = async (flags: ReadonlyArray<string> = [], port = 0): Promise<Target> => {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      ...daemonCommand(),
      "--port",
      String(port),
      "--no-unix",
      ...flags,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn()
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader()
  let text = ""
  let listening = 0
  while (listening === 0) {
    const { value, done } = await reader.read()
    if (done) throw new Error(`the daemon process exited: ${text}`)
    text += value
    const m = /listening on (\d+)@/.exec(text)
    if (m !== null) listening = Number(m[1])
  }
  return {
    label: "own process",
    spreadName: `${listening}@127.0.0.1`,
    pid: child.pid,
    stop: async () => {
      try {
        child.kill("SIGTERM")
      } catch { /* already exited (killed by the bench, say) */ }
      reader.releaseLock()
      await child.stdout.cancel().catch(() => undefined)
      await child.status
    },
  }
}

/** The daemons selected by the command line: `--in-process`, `--own-process`, or both (default), plus SPREAD_DAEMON. */
export const targets = (args: ReadonlyArray<string>): ReadonlyArray<() => Promise<Target>> => {
  const onlyIn = args.includes("--in-process")
  const onlyOwn = args.includes("--own-process")
  const out: Array<() => Promise<Target>> = []
  if (!onlyOwn) out.push(inProcess)
  if (!onlyIn) out.push(() => ownProcess())
  const spread = Deno.env.get("SPREAD_DAEMON")
  if (spread !== undefined && spread.length > 0) {
    out.push(() => Promise.resolve({ label: `SPREAD ${spread}`, spreadName: spread, stop: () => Promise.resolve() }))
  }
  return out
}

/** `1234567` as `1,234,567`. */
export const grouped = (n: number): string => Math.round(n).toLocaleString("en-US")
