/**
 * `deno task daemon` (src/cli/daemon.ts): its flags, and the process —
 * start line, clean shutdown on SIGINT and SIGTERM, exit codes.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, LogLevel } from "effect"
import { parseArgs } from "../../src/cli/daemon.ts"
import { RawClient } from "../_helpers/raw_client.ts"
import { eventually } from "./_fixtures.ts"

const CLI = new URL("../../src/cli/daemon.ts", import.meta.url).pathname
const PERMS = ["--allow-net", "--allow-read", "--allow-write", "--allow-env"]

interface Running {
  readonly child: Deno.ChildProcess
  readonly line: string
  readonly port: number
  readonly unixPath: string | undefined
  readonly stdout: () => string
}

/** Starts the CLI and waits for its start line; the scope kills it if still running. */
const start = (args: ReadonlyArray<string>, maxFiles?: number) =>
  Effect.acquireRelease(
    Effect.promise(async (): Promise<Running> => {
      const argv = ["run", ...PERMS, CLI, ...args]
      // With maxFiles, a shell lowers the descriptor limit and then becomes Deno.
      const child = (maxFiles === undefined
        ? new Deno.Command(Deno.execPath(), { args: argv, stdout: "piped", stderr: "piped" })
        : new Deno.Command("sh", {
          args: ["-c", `ulimit -n ${maxFiles} && exec "$0" "$@"`, Deno.execPath(), ...argv],
          stdout: "piped",
          stderr: "piped",
        })).spawn()
      let out = ""
      const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader()
      const deadline = Date.now() + 8000
      let m: RegExpExecArray | null = null
      while (m === null && Date.now() < deadline) {
        const { value, done } = await reader.read()
        if (done) break
        out += value
        m = /^spreadfx daemon (\S+) listening on (\d+)@(\S+?)(?: and (\S+))?$/m.exec(out)
      }
      // Keep draining stdout so the child never blocks on a full pipe.
      void (async () => {
        for (;;) {
          const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }))
          if (done) {
            return
          }
          out += value
        }
      })()
      if (m === null) {
        throw new Error(`no start line in ${JSON.stringify(out)}`)
      }
      return {
        child,
        line: m[0],
        port: Number(m[2]),
        unixPath: m[4],
        stdout: () =>
          out,
      }
    }),
    (r) =>
      Effect.promise(async () => {
        try {
          r.child.kill("SIGKILL")
        } catch {
          // already gone
        }
        await r.child.status
        await r.child.stderr.cancel().catch(() => undefined)
      }),
  )

const run = (args: ReadonlyArray<string>) =>
  Effect.promise(async () => {
    const r = await new Deno.Command(Deno.execPath(), { args: ["run", ...PERMS, CLI, ...args] }).output()
    const dec = new TextDecoder()
    return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) }
  })

const exists = (path: string): boolean => {
  try {
    Deno.lstatSync(path)
    return true
  } catch {
    return false
  }
}

describe("parseArgs", () => {
  it("parseArgs defaults to Spread's Unix socket on and info logging", () => {
    expect(parseArgs([])).toEqual({ _tag: "Run", config: { unixSocket: true }, logLevel: LogLevel.Info, observe: {} })
  })

  it("parseArgs reads every flag, in both --flag value and --flag=value forms", () => {
    const r = parseArgs([
      "--port",
      "4805",
      "--host=0.0.0.0",
      "--unix",
      "/tmp/spx",
      "--name",
      "node1",
      "--max-sessions=5",
      "--max-group-members",
      "7",
      "--max-session-messages",
      "100",
      "--max-session-bytes",
      "65536",
      "--max-groups-per-session=3",
      "--max-groups",
      "9",
      "--max-handshaking",
      "11",
      "--partial-frame-timeout=2500",
      "--stats-interval",
      "5",
      "--metrics-port=9464",
      "--metrics-host",
      "0.0.0.0",
      "--log-level",
      "debug",
    ])
    expect(r).toEqual({
      _tag: "Run",
      config: {
        port: 4805,
        host: "0.0.0.0",
        unixSocket: "/tmp/spx",
        name: "node1",
        maxSessions: 5,
        maxGroupMembers: 7,
        maxSessionMessages: 100,
        maxSessionBytes: 65536,
        maxGroupsPerSession: 3,
        maxGroups: 9,
        maxHandshaking: 11,
        partialFrameTimeoutMs: 2500,
      },
      logLevel: LogLevel.Debug,
      observe: { statsIntervalS: 5, metricsPort: 9464, metricsHost: "0.0.0.0" },
    })
  })

  it("parseArgs takes --unix alone as /tmp/<port> and --no-unix as none", () => {
    expect(parseArgs(["--no-unix", "--unix"])).toMatchObject({ config: { unixSocket: true } })
    expect(parseArgs(["--unix", "--port", "1"])).toMatchObject({ config: { unixSocket: true, port: 1 } })
    expect(parseArgs(["--unix", "--no-unix"])).toMatchObject({ config: { unixSocket: false } })
    expect(parseArgs(["--log-level", "warning"])).toMatchObject({ logLevel: LogLevel.Warning })
    expect(parseArgs(["--log-level=error"])).toMatchObject({ logLevel: LogLevel.Error })
  })

  it("parseArgs answers Help for -h and --help, wherever they are", () => {
    expect(parseArgs(["--port", "1", "-h"])).toEqual({ _tag: "Help" })
    expect(parseArgs(["--help"])).toEqual({ _tag: "Help" })
  })

  it("parseArgs explains what is wrong with a bad flag", () => {
    const cases: ReadonlyArray<[ReadonlyArray<string>, string]> = [
      [["--bogus"], 'unknown flag "--bogus"'],
      [["--bogus=1"], 'unknown flag "--bogus"'],
      [["4803"], 'unexpected argument "4803"'],
      [["--port"], "--port needs a value"],
      [["--port", "http"], '--port takes a whole number from 0 to 65535, not "http"'],
      [["--port", "65536"], '--port takes a whole number from 0 to 65535, not "65536"'],
      [["--port", "-1"], '--port takes a whole number from 0 to 65535, not "-1"'],
      [["--port", "--name", "x"], "--port needs a value"],
      [["--max-sessions", "0"], '--max-sessions takes a whole number of at least 1, not "0"'],
      [["--max-group-members", "0"], '--max-group-members takes a whole number of at least 1, not "0"'],
      [["--max-session-messages", "1.5"], "--max-session-messages takes a whole number of at least 1"],
      [["--log-level", "loud"], '--log-level takes debug, info, warning or error, not "loud"'],
      [["--name"], "--name needs a value"],
      [["--no-unix=yes"], "--no-unix takes no value"],
      [["--unix="], "--unix= needs a path"],
    ]
    for (const [args, message] of cases) {
      const r = parseArgs(args)
      expect(r._tag, args.join(" ")).toBe("Invalid")
      if (r._tag === "Invalid") expect(r.message, args.join(" ")).toContain(message)
    }
  })
})

describe("deno task daemon", () => {
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    it.scopedLive(
      `cli/daemon.ts prints its start line, serves clients, and exits 0 on ${signal}`,
      () =>
        Effect.gen(function* () {
          const unixPath = `/tmp/spreadfx-cli-${Deno.pid}-${signal}`
          const r = yield* start(["--port", "0", "--unix", unixPath, "--name", "clitest", "--log-level", "warning"])
          expect(r.line).toBe(`spreadfx daemon clitest listening on ${r.port}@127.0.0.1 and ${unixPath}`)
          const a = yield* RawClient.connect({ _tag: "Tcp", hostname: "127.0.0.1", port: r.port }, { name: "a" })
          const b = yield* RawClient.connect({ _tag: "Unix", path: unixPath }, { name: "b" })
          expect([a.privateGroup, b.privateGroup]).toEqual(["#a#clitest", "#b#clitest"])
          const t0 = Date.now()
          r.child.kill(signal)
          const status = yield* Effect.promise(() => r.child.status)
          expect(status.code).toBe(0)
          expect(Date.now() - t0).toBeLessThan(3000)
          expect(yield* a.awaitEof(1000)).toBe(true)
          expect(yield* b.awaitEof(1000)).toBe(true)
          expect(exists(unixPath)).toBe(false)
          // Exactly one line on stdout at warning level.
          expect(r.stdout().trim().split("\n")).toEqual([r.line])
        }),
      15_000,
    )
  }

  it.scopedLive(
    "cli/daemon.ts listens on /tmp/<port> by default, and on TCP only with --no-unix",
    () =>
      Effect.gen(function* () {
        const r = yield* start(["--port", "0", "--log-level", "error"])
        expect(r.unixPath).toBe(`/tmp/${r.port}`)
        expect(Deno.lstatSync(`/tmp/${r.port}`).isSocket).toBe(true)
        r.child.kill("SIGTERM")
        expect((yield* Effect.promise(() => r.child.status)).code).toBe(0)
        expect(exists(`/tmp/${r.port}`)).toBe(false)
        const tcpOnly = yield* start(["--port", "0", "--no-unix"])
        expect(tcpOnly.unixPath).toBeUndefined()
        expect(tcpOnly.line).toBe(`spreadfx daemon localhost listening on ${tcpOnly.port}@127.0.0.1`)
      }),
    15_000,
  )

  it.scopedLive("cli/daemon.ts keeps accepting after running out of descriptors", () =>
    Effect.gen(function* () {
      const r = yield* start(["--port", "0", "--no-unix", "--log-level", "error"], 64)
      // More connections than descriptors: some accepts fail with EMFILE.
      const conns = yield* Effect.promise(() =>
        Promise.all(Array.from({ length: 80 }, () => Deno.connect({ hostname: "127.0.0.1", port: r.port })))
      )
      yield* Effect.sleep(500)
      for (const c of conns) c.close()
      yield* Effect.sleep(1500)
      // The daemon serves a new client again.
      const a = yield* RawClient.connect({ _tag: "Tcp", hostname: "127.0.0.1", port: r.port }, { name: "after" })
      expect(a.privateGroup).toBe("#after#localhost")
    }), 15_000)

  it.scopedLive("cli/daemon.ts logs at the level --log-level sets, info by default", () =>
    Effect.gen(function* () {
      const logsAt = (args: ReadonlyArray<string>) =>
        Effect.scoped(Effect.gen(function* () {
          const r = yield* start(["--port", "0", "--no-unix", ...args])
          const bad = yield* RawClient.open({ _tag: "Tcp", hostname: "127.0.0.1", port: r.port })
          expect(yield* bad.handshake({ name: "bad!" })).toMatchObject({ _tag: "Rejected", code: -5 })
          yield* RawClient.connect({ _tag: "Tcp", hostname: "127.0.0.1", port: r.port }, { name: "ok" })
          r.child.kill("SIGTERM")
          expect((yield* Effect.promise(() => r.child.status)).code).toBe(0)
          return r.stdout()
        }))
      const debug = yield* logsAt(["--log-level", "debug"])
      expect(debug).toMatch(/level=DEBUG .*Session #ok#localhost open/)
      expect(debug).toMatch(/level=INFO .*Rejected .*code -5/)
      const info = yield* logsAt([])
      expect(info).not.toContain("level=DEBUG")
      expect(info).toMatch(/level=INFO .*Rejected .*code -5/)
      const error = yield* logsAt(["--log-level", "error"])
      expect(error).not.toContain("level=")
    }), 15_000)

  it.live("cli/daemon.ts prints usage for --help and exits 0", () =>
    Effect.gen(function* () {
      const r = yield* run(["--help"])
      expect(r.code).toBe(0)
      expect(r.stdout).toContain("Usage: deno task daemon [flags]")
      for (const flag of ["--port n", "--unix [path]", "--no-unix", "--max-group-members n", "--log-level level"]) {
        expect(r.stdout).toContain(flag)
      }
    }), 15_000)

  it.live(
    "cli/daemon.ts exits 2 with the problem and the short usage line for a bad flag",
    () =>
      Effect.gen(function* () {
        const r = yield* run(["--port", "nope"])
        expect(r.code).toBe(2)
        expect(r.stderr).toContain('daemon: --port takes a whole number from 0 to 65535, not "nope"')
        expect(r.stderr).toContain("Usage: deno task daemon [--port n]")
        // The full help only for --help.
        expect(r.stderr).not.toContain("Flags:")
        const bad = yield* run(["--name", "has#hash", "--no-unix", "--port", "0"])
        expect(bad.code).toBe(2)
        expect(bad.stderr).toContain("InvalidConfig")
      }),
    15_000,
  )

  it.live("cli/daemon.ts exits 1 when its port is taken", () =>
    Effect.gen(function* () {
      const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 })
      const r = yield* run(["--port", String(taken.addr.port), "--no-unix"]).pipe(
        Effect.ensuring(Effect.sync(() => taken.close())),
      )
      expect(r.code).toBe(1)
      expect(r.stderr).toContain(`cannot listen on ${taken.addr.port}@127.0.0.1`)
    }), 15_000)
})

describe("deno task daemon observability", () => {
  it.scopedLive(
    "cli/daemon.ts --metrics-port serves Prometheus text on loopback and --stats-interval logs a stats line",
    () =>
      Effect.gen(function* () {
        const r = yield* start([
          "--port",
          "0",
          "--no-unix",
          "--name",
          "obs",
          "--metrics-port",
          "0",
          "--stats-interval",
          "1",
        ])
        const a = yield* RawClient.connect({ _tag: "Tcp", hostname: "127.0.0.1", port: r.port }, { name: "a" })
        yield* a.join("g")
        yield* a.frame()
        expect(yield* eventually(() => /metrics on http:\/\/127\.0\.0\.1:\d+\/metrics/.test(r.stdout()))).toBe(true)
        const url = /metrics on (http:\S+)/.exec(r.stdout())?.[1] ?? ""
        // Published once a second: wait for the session to show.
        let text = ""
        for (let i = 0; i < 40 && !text.includes('spreadfx_daemon_sessions{daemon="obs"} 1'); i++) {
          text = yield* Effect.promise(() => fetch(url).then((res) => res.text()))
          if (!text.includes('spreadfx_daemon_sessions{daemon="obs"} 1')) yield* Effect.sleep(100)
        }
        expect(text).toContain("# TYPE spreadfx_daemon_sessions gauge")
        expect(text).toContain('spreadfx_daemon_sessions{daemon="obs"} 1')
        expect(text).toContain("# TYPE spreadfx_daemon_messages_in counter")
        expect(text).toMatch(/^spreadfx_daemon_groups\{daemon="obs"\} 1$/m)
        const other = yield* Effect.promise(() => fetch(url.replace("/metrics", "/")).then((res) => res.status))
        expect(other).toBe(404)
        expect(
          yield* eventually(() => /stats: sessions=1 connections=1 handshaking=0 groups=1 /.test(r.stdout()), 4000),
        )
          .toBe(true)
      }),
    15_000,
  )
})
