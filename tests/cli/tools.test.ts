/**
 * The command-line tools as subprocesses against an embedded daemon run in
 * the test process. `@effect/platform`'s `Command` needs a CommandExecutor,
 * which only Node's platform package provides, so this uses `Deno.Command`.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import { connect } from "../../src/client/mod.ts"
import * as Daemon from "../../src/daemon/mod.ts"

const ROOT = new URL("../../", import.meta.url).pathname

/** A running tool: its stdin, its output so far, and its exit. */
class Tool {
  readonly child: Deno.ChildProcess
  stdout = ""
  stderr = ""
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>
  readonly done: Promise<Deno.CommandStatus>
  readonly #pumps: Promise<void>

  constructor(script: string, args: ReadonlyArray<string>) {
    this.child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-net", "--allow-read", "--allow-write", "--allow-env", `${ROOT}src/cli/${script}`, ...args],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      cwd: ROOT,
      env: { NO_COLOR: "1" },
    }).spawn()
    this.#writer = this.child.stdin.getWriter()
    const pump = async (s: ReadableStream<Uint8Array>, to: "stdout" | "stderr") => {
      const d = new TextDecoder()
      for await (const c of s) this[to] += d.decode(c, { stream: true })
    }
    this.#pumps = Promise.all([pump(this.child.stdout, "stdout"), pump(this.child.stderr, "stderr")]).then(() => {})
    this.done = this.child.status.then(async (s) => {
      await this.#pumps
      return s
    })
  }

  async send(line: string): Promise<void> {
    await this.#writer.write(new TextEncoder().encode(line + "\n"))
  }

  async closeStdin(): Promise<void> {
    await this.#writer.close().catch(() => {})
  }

  /** Waits until stdout contains `text`, failing after `ms`. */
  async waitFor(text: string, ms = 5000): Promise<void> {
    const until = Date.now() + ms
    while (!this.stdout.includes(text)) {
      if (Date.now() > until) {
        throw new Error(
          `timed out waiting for ${JSON.stringify(text)}; stdout:\n${this.stdout}\nstderr:\n${this.stderr}`,
        )
      }
      await new Promise((r) => setTimeout(r, 20))
    }
  }

  /** The exit status, failing if the tool is still running after `ms`. */
  async exit(ms = 5000): Promise<Deno.CommandStatus> {
    let timer: ReturnType<typeof setTimeout> | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`still running after ${ms} ms; stdout:\n${this.stdout}`)), ms)
    })
    try {
      return await Promise.race([this.done, timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  /** Cleanup for a failed test: never leave a child behind. */
  async kill(): Promise<void> {
    try {
      this.child.kill("SIGKILL")
    } catch {
      // already gone
    }
    await this.done.catch(() => {})
  }
}

const withDaemon = <A>(f: (d: Daemon.Daemon) => Promise<A>): Effect.Effect<A, unknown> =>
  Effect.scoped(Effect.flatMap(Daemon.make({ port: 0 }), (d) => Effect.promise(() => f(d))))

const withTool = async <A>(script: string, args: ReadonlyArray<string>, f: (t: Tool) => Promise<A>): Promise<A> => {
  const t = new Tool(script, args)
  try {
    return await f(t)
  } finally {
    await t.kill()
  }
}

describe("user", () => {
  it.live("user prints what it receives and exits 0 on q", () =>
    withDaemon((d) =>
      withTool("user.ts", ["-s", d.spreadName, "-u", "spu1"], async (t) => {
        await t.waitFor("User> ")
        await t.send("j grp")
        await t.waitFor("Due to the JOIN of #spu1#localhost")
        await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
          const c = yield* connect({ daemon: d.spreadName, name: "other" })
          yield* c.multicast({ groups: "grp", data: "hello from other", service: "Agreed", messType: 7 })
        })))
        await t.waitFor("received AGREED message from #other#localhost, of type 7, (endian 0) to 1 groups")
        await t.waitFor("(16 bytes): hello from other")
        await t.send("q")
        const s = await t.exit()
        expect(s.code).toBe(0)
        expect(t.stdout).toContain("Bye.")
        // The session is gone from the daemon.
        expect(d.stats().sessions).toBe(0)
      })
    ))

  it.live("user exits 0 at end of input", () =>
    withDaemon((d) =>
      withTool("user.ts", ["-s", d.spreadName], async (t) => {
        await t.waitFor("User> ")
        await t.closeStdin()
        const s = await t.exit()
        expect(s.code).toBe(0)
        expect(t.stdout).toContain("end of input")
      })
    ))

  it.live("user exits 1 promptly when the daemon shuts down while it blocks on input", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const d = yield* Scope.extend(Daemon.make({ port: 0 }), scope)
      yield* Effect.promise(() =>
        withTool("user.ts", ["-s", d.spreadName], async (t) => {
          await t.waitFor("User> ")
          const t0 = Date.now()
          await Effect.runPromise(Scope.close(scope, Exit.void))
          const s = await t.exit(3000)
          expect(s.code).toBe(1)
          expect(t.stderr).toContain("connection lost")
          expect(Date.now() - t0).toBeLessThan(3000)
        })
      )
    }))

  it.live("user exits 130 on SIGINT and disconnects from the daemon", () =>
    withDaemon((d) =>
      withTool("user.ts", ["-s", d.spreadName, "-u", "sig"], async (t) => {
        await t.waitFor("User> ")
        await t.send("j grp")
        await t.waitFor("Due to the JOIN of #sig#localhost")
        expect(d.members("grp")).toEqual(["#sig#localhost"])
        t.child.kill("SIGINT")
        const s = await t.exit()
        expect(s.code).toBe(130)
        // The scope closed: the daemon saw the disconnect.
        for (let i = 0; i < 50 && d.stats().sessions > 0; i++) await new Promise((r) => setTimeout(r, 20))
        expect(d.stats().sessions).toBe(0)
        expect(d.members("grp")).toEqual([])
      })
    ))

  it.live("user exits 143 on SIGTERM", () =>
    withDaemon((d) =>
      withTool("user.ts", ["-s", d.spreadName], async (t) => {
        await t.waitFor("User> ")
        t.child.kill("SIGTERM")
        expect((await t.exit()).code).toBe(143)
      })
    ))

  it.live("user reports a daemon that cannot be reached with exit 3", () =>
    Effect.promise(() =>
      withTool("user.ts", ["-s", "1@127.0.0.1"], async (t) => {
        const s = await t.exit()
        expect(s.code).toBe(3)
        expect(t.stderr).toContain("Cannot connect")
      })
    ))
})

describe("flooder", () => {
  const finalLine = /received (\d+) messages, (\d+) bytes in ([\d.]+) s: (\d+) msgs\/s, ([\d.]+) MB\/s/

  it.live("flooder's figures match the messages it received", () =>
    withDaemon((d) =>
      withTool("flooder.ts", ["-s", d.spreadName, "-m", "3000", "-b", "100", "-q"], async (t) => {
        const s = await t.exit(30000)
        expect(s.code).toBe(0)
        const m = finalLine.exec(t.stdout)
        expect(m, t.stdout).not.toBeNull()
        if (m === null) return
        const [count, bytes, seconds, rate, mbs] = [
          Number(m[1]),
          Number(m[2]),
          Number(m[3]),
          Number(m[4]),
          Number(m[5]),
        ]
        expect(count).toBe(3000)
        expect(bytes).toBe(3000 * 100)
        expect(Math.abs(rate - count / seconds) / rate).toBeLessThan(0.02)
        expect(Math.abs(mbs - bytes / seconds / 1e6)).toBeLessThan(0.02 + mbs * 0.02)
        expect(d.stats().messagesIn).toBe(3000)
      })
    ))

  it.live("flooder exits 1 when the daemon goes away while it waits for members", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const d = yield* Scope.extend(Daemon.make({ port: 0 }), scope)
      yield* Effect.promise(() =>
        withTool("flooder.ts", ["-s", d.spreadName, "-n", "2", "-m", "10", "-q"], async (t) => {
          await t.waitFor("connecting to")
          for (let i = 0; i < 100 && d.members("flooder").length === 0; i++) await new Promise((r) => setTimeout(r, 20))
          await Effect.runPromise(Scope.close(scope, Exit.void))
          const s = await t.exit(5000)
          expect(s.code).toBe(1)
          expect(t.stderr).toContain("connection lost")
        })
      )
    }))

  it.live("flooder's read-only member receives what a writer sends once both are present", () =>
    withDaemon((d) =>
      withTool(
        "flooder.ts",
        ["-s", d.spreadName, "-ro", "-n", "2", "-m", "1000", "-b", "50", "-q"],
        (reader) =>
          withTool("flooder.ts", ["-s", d.spreadName, "-n", "2", "-m", "1000", "-b", "50", "-q"], async (writer) => {
            const [r, w] = await Promise.all([reader.exit(30000), writer.exit(30000)])
            expect([r.code, w.code]).toEqual([0, 0])
            expect(reader.stdout).toContain("Only receiving messages")
            expect(reader.stdout).toMatch(/received 1000 messages, 50000 bytes/)
            expect(writer.stdout).toMatch(/received 1000 messages, 50000 bytes/)
          }),
      )
    ))
})

describe("ping", () => {
  it.live("ping prints min, p50, p99 and max", () =>
    withDaemon((d) =>
      withTool("ping.ts", ["-s", d.spreadName, "-c", "50", "-w", "5"], async (t) => {
        expect((await t.exit(15000)).code).toBe(0)
        expect(t.stdout).toMatch(/50 round trips of 64 bytes .*min \d+ µs, p50 \d+ µs, p99 \d+ µs, max \d+ µs/)
      })
    ))
})

describe("bad flags", () => {
  const cases: ReadonlyArray<[string, ReadonlyArray<string>, string]> = [
    ["user.ts", ["-x"], 'user: unknown flag "-x"'],
    ["user.ts", ["-s"], "user: -s needs a value"],
    ["user.ts", ["-u", "elevenbytes"], 'user: -u: Cannot use private name "elevenbytes" as it exceeds 10 bytes'],
    ["flooder.ts", ["-m", "many"], 'flooder: -m takes a whole number of at least 0, not "many"'],
    ["flooder.ts", ["-ro", "-wo"], "flooder: -ro and -wo exclude each other"],
    ["flooder.ts", ["-b", "200000"], 'flooder: -b takes a whole number from 0 to 143120, not "200000"'],
    ["flooder.ts", ["-u", "elevenbytes"], 'flooder: -u: Cannot use private name "elevenbytes"'],
    ["flooder.ts", ["--bogus"], 'flooder: unknown flag "--bogus"'],
    ["ping.ts", ["-c", "0"], 'ping: -c takes a whole number of at least 1, not "0"'],
    ["ping.ts", ["-ro"], 'ping: unknown flag "-ro"'],
    ["daemon.ts", ["--bogus"], 'daemon: unknown flag "--bogus"'],
  ]
  for (const [tool, args, text] of cases) {
    it.live(`${tool.replace(".ts", "")} ${args.join(" ")} is a usage error: exit 2, the problem, the short usage line`, () =>
      Effect.promise(() =>
        withTool(tool, args, async (t) => {
          expect((await t.exit()).code).toBe(2)
          expect(t.stderr).toContain(text)
          expect(t.stderr).toContain(`Usage: deno task ${tool.replace(".ts", "")} [`)
          expect(t.stderr).not.toContain("Flags:")
        })
      ))
  }

  for (const tool of ["daemon", "user", "flooder", "ping"]) {
    it.live(`${tool} --help prints the full help on stdout and exits 0`, () =>
      Effect.promise(() =>
        withTool(`${tool}.ts`, ["--help"], async (t) => {
          expect((await t.exit()).code).toBe(0)
          expect(t.stdout).toContain(`Usage: deno task ${tool} [flags]`)
          expect(t.stdout).toContain("Flags:")
          expect(t.stderr).toBe("")
        })
      ))
  }
})
