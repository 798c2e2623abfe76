/**
 * The four tools in a terminal: each runs under a pseudo-terminal (`script
 * -qec`, as a user's shell would run it) with the permissions its `deno task`
 * grants, and must never stop on a Deno permission prompt ("Deno requests …
 * access"). Deno prompts only when standard input is a terminal, which is why
 * the piped-stdio tests in tools.test.ts cannot see one. The user tool must
 * also get the first line typed (a prompt would eat it).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Daemon from "../../src/daemon/mod.ts"

const ROOT = new URL("../../", import.meta.url).pathname
const PERMS = ["--allow-net", "--allow-read", "--allow-write", "--allow-env"]
const PROMPT = /requests \S+ access/

const quote = (s: string): string => `'${s.replaceAll("'", `'\\''`)}'`

/** A tool under a pseudo-terminal: what it printed so far, and a way to type. */
class TerminalTool {
  readonly child: Deno.ChildProcess
  output = ""
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>
  readonly done: Promise<Deno.CommandStatus>

  constructor(script: string, args: ReadonlyArray<string>) {
    const cmd = [Deno.execPath(), "run", ...PERMS, `${ROOT}src/cli/${script}`, ...args].map(quote).join(" ")
    this.child = new Deno.Command("script", {
      args: ["-qec", cmd, "/dev/null"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      cwd: ROOT,
      env: { NO_COLOR: "1", TERM: "dumb" },
    }).spawn()
    this.#writer = this.child.stdin.getWriter()
    const pump = async (s: ReadableStream<Uint8Array>) => {
      const d = new TextDecoder()
      for await (const c of s) this.output += d.decode(c, { stream: true })
    }
    const pumps = Promise.all([pump(this.child.stdout), pump(this.child.stderr)])
    this.done = this.child.status.then(async (s) => {
      await pumps
      return s
    })
  }

  async type(line: string): Promise<void> {
    await this.#writer.write(new TextEncoder().encode(line + "\n"))
  }

  /** Waits until the output contains `text`; fails at once on a permission prompt, or after `ms`. */
  async waitFor(text: string, ms = 10_000): Promise<void> {
    const until = Date.now() + ms
    while (!this.output.includes(text)) {
      if (PROMPT.test(this.output)) throw new Error(`permission prompt:\n${this.output}`)
      if (Date.now() > until) throw new Error(`timed out waiting for ${JSON.stringify(text)}:\n${this.output}`)
      await new Promise((r) => setTimeout(r, 25))
    }
  }

  async kill(): Promise<void> {
    try {
      this.child.kill("SIGKILL")
    } catch {
      // already gone
    }
    await this.#writer.close().catch(() => {})
    await this.done.catch(() => {})
  }
}

const inTerminal = <A>(script: string, args: ReadonlyArray<string>, f: (t: TerminalTool) => Promise<A>) =>
  Effect.promise(async () => {
    const t = new TerminalTool(script, args)
    try {
      return await f(t)
    } finally {
      await t.kill()
    }
  })

const withDaemon = <A>(f: (d: Daemon.Daemon) => Effect.Effect<A>) =>
  Effect.scoped(Effect.flatMap(Daemon.make({ port: 0, unixSocket: false }), f))

describe("tools in a terminal", () => {
  it.live(
    "daemon starts under a pseudo-terminal without a permission prompt",
    () =>
      inTerminal("daemon.ts", ["--port", "0", "--no-unix"], async (t) => {
        await t.waitFor("listening on")
        expect(t.output).not.toMatch(PROMPT)
      }),
    20_000,
  )

  it.live(
    "user starts under a pseudo-terminal without a permission prompt and gets the first line typed",
    () =>
      withDaemon((d) =>
        inTerminal("user.ts", ["-s", d.spreadName, "-u", "tty"], async (t) => {
          await t.waitFor("User> ")
          await t.type("j first")
          await t.waitFor("Due to the JOIN of #tty#localhost")
          expect(d.members("first")).toEqual(["#tty#localhost"])
          await t.type("q")
          await t.waitFor("Bye.")
          expect((await t.done).code).toBe(0)
          expect(t.output).not.toMatch(PROMPT)
        })
      ),
    20_000,
  )

  it.live(
    "flooder runs under a pseudo-terminal without a permission prompt",
    () =>
      withDaemon((d) =>
        inTerminal("flooder.ts", ["-s", d.spreadName, "-m", "20", "-b", "10", "-q"], async (t) => {
          await t.waitFor("received 20 messages")
          expect((await t.done).code).toBe(0)
          expect(t.output).not.toMatch(PROMPT)
        })
      ),
    20_000,
  )

  it.live(
    "ping runs under a pseudo-terminal without a permission prompt",
    () =>
      withDaemon((d) =>
        inTerminal("ping.ts", ["-s", d.spreadName, "-c", "5", "-w", "1"], async (t) => {
          await t.waitFor("5 round trips")
          expect((await t.done).code).toBe(0)
          expect(t.output).not.toMatch(PROMPT)
        })
      ),
    20_000,
  )
})

describe("imports", () => {
  it("no module of src/ imports the @effect/platform barrel (it loads msgpackr's native addon, an ffi prompt)", () => {
    const offenders: Array<string> = []
    const walk = (dir: URL) => {
      for (const e of Deno.readDirSync(dir)) {
        if (e.isDirectory) walk(new URL(`${e.name}/`, dir))
        else if (e.name.endsWith(".ts")) {
          const text = Deno.readTextFileSync(new URL(e.name, dir))
          if (/from\s+["']@effect\/platform["']/.test(text)) offenders.push(`${dir.pathname}${e.name}`)
        }
      }
    }
    walk(new URL("src/", `file://${ROOT}`))
    expect(offenders).toEqual([])
  })
})
