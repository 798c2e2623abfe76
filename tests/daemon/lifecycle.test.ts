/**
 * The daemon as a scoped resource: where it listens, how it refuses a bad
 * configuration, and how it lets go of everything when its scope closes.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import * as Daemon from "../../src/daemon/mod.ts"
import { RawClient, text, untext } from "../_helpers/raw_client.ts"
import { joinNow, quiet, startDaemon, tcp, unix } from "./_fixtures.ts"

const T = 10_000

const tmpPath = (tag: string): string => `/tmp/spreadfx-${tag}-${Deno.pid}-${Math.floor(Math.random() * 1e9)}`

const exists = (path: string): boolean => {
  try {
    Deno.lstatSync(path)
    return true
  } catch {
    return false
  }
}

/** Whether a TCP listener can be bound on the port right now. */
const canBind = (port: number): boolean => {
  try {
    Deno.listen({ hostname: "127.0.0.1", port }).close()
    return true
  } catch {
    return false
  }
}

const connectFails = (port: number): Effect.Effect<boolean> =>
  Effect.promise(() => Deno.connect({ hostname: "127.0.0.1", port }).then((c) => (c.close(), false), () => true))

describe("Daemon lifecycle", () => {
  it.scopedLive(
    "Daemon.make listens on a free TCP port for port 0 and reports it as port@host",
    () =>
      Effect.gen(function* () {
        const d = yield* startDaemon()
        expect(d.port).toBeGreaterThan(0)
        expect(d.host).toBe("127.0.0.1")
        expect(d.spreadName).toBe(`${d.port}@127.0.0.1`)
        expect(d.unixPath).toBe(`/tmp/${d.port}`) // the default, as Spread
        expect(d.config.maxSessionMessages).toBe(1000)
        const c = yield* RawClient.connect(tcp(d), { name: "alice" })
        expect(c.privateGroup).toBe("#alice#localhost")
      }).pipe(quiet),
    T,
  )

  it.scopedLive(
    "Daemon.make listens on /tmp/<port> for unixSocket: true and serves the same sessions there",
    () =>
      Effect.gen(function* () {
        const d = yield* startDaemon({ unixSocket: true })
        expect(d.unixPath).toBe(`/tmp/${d.port}`)
        expect(Deno.lstatSync(`/tmp/${d.port}`).isSocket).toBe(true)
        const viaUnix = yield* RawClient.connect(unix(d), { name: "u" })
        const viaTcp = yield* RawClient.connect(tcp(d), { name: "t" })
        yield* joinNow(viaUnix, "both")
        yield* joinNow(viaTcp, "both")
        yield* viaUnix.frame()
        yield* viaTcp.multicast({ service: "Agreed", groups: ["both"], data: text("across") })
        expect(untext((yield* viaUnix.frame()).data)).toBe("across")
        expect(untext((yield* viaTcp.frame()).data)).toBe("across")
      }).pipe(quiet),
    T,
  )

  it.scopedLive(
    "Daemon.make replaces a stale socket file at its Unix path but never a regular file",
    () =>
      Effect.gen(function* () {
        const stale = tmpPath("stale")
        // A process that dies without unlinking its socket leaves the file behind.
        const child = new Deno.Command(Deno.execPath(), {
          args: [
            "eval",
            `Deno.listen({ transport: "unix", path: ${JSON.stringify(stale)} }); setTimeout(() => {}, 60000)`,
          ],
          stdout: "null",
          stderr: "null",
        }).spawn()
        const deadline = Date.now() + 5000
        while (!exists(stale) && Date.now() < deadline) yield* Effect.sleep("10 millis")
        child.kill("SIGKILL")
        yield* Effect.promise(() => child.status)
        expect(Deno.lstatSync(stale).isSocket).toBe(true)
        const d = yield* startDaemon({ unixSocket: stale })
        yield* RawClient.connect(unix(d), { name: "fresh" })

        const regular = tmpPath("regular")
        Deno.writeTextFileSync(regular, "keep me")
        yield* Effect.addFinalizer(() => Effect.sync(() => Deno.removeSync(regular)))
        const r = yield* Effect.either(Daemon.make({ port: 0, unixSocket: regular }))
        expect(r._tag === "Left" && r.left.reason).toBe("ListenFailed")
        expect(Deno.readTextFileSync(regular)).toBe("keep me")
      }).pipe(quiet),
    T,
  )

  it.scopedLive(
    "Daemon.make refuses a bad name, port or limit with InvalidConfig, quoting the value",
    () =>
      Effect.gen(function* () {
        const cases: ReadonlyArray<[Daemon.DaemonConfig, RegExp]> = [
          [{ name: "" }, /name ""/],
          [{ name: "has#hash" }, /has#hash/],
          [{ name: "abcdefghijklmnopqrst" }, /abcdefghijklmnopqrst/],
          [{ name: "sp ace" }, /sp ace/],
          [{ port: 70000 }, /70000/],
          [{ port: -1 }, /-1/],
          [{ maxSessions: 0 }, /maxSessions 0/],
          [{ maxSessionMessages: 0 }, /maxSessionMessages 0/],
          [{ maxSessionBytes: -5 }, /maxSessionBytes -5/],
          [{ handshakeTimeoutMs: 0 }, /handshakeTimeoutMs 0/],
          [{ authMethods: [{ name: "TWO WORDS", authenticate: () => Effect.succeed(true) }] }, /TWO WORDS/],
        ]
        for (const [config, detail] of cases) {
          const r = yield* Effect.either(Daemon.make({ port: 0, ...config }))
          if (r._tag === "Right") return yield* Effect.dieMessage(`accepted ${JSON.stringify(config)}`)
          expect(r.left.reason).toBe("InvalidConfig")
          expect(r.left.message).toMatch(detail)
        }
      }).pipe(quiet),
    T,
  )

  it.scopedLive(
    "Daemon.make fails with ListenFailed naming the address when the port is taken",
    () =>
      Effect.gen(function* () {
        const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 })
        yield* Effect.addFinalizer(() => Effect.sync(() => taken.close()))
        const r = yield* Effect.either(Daemon.make({ port: taken.addr.port }))
        expect(r._tag === "Left" && r.left.reason).toBe("ListenFailed")
        expect(r._tag === "Left" && r.left.message).toContain(`${taken.addr.port}@127.0.0.1`)
      }).pipe(quiet),
    T,
  )

  it.live(
    "Daemon.layer provides SpreadDaemon for the layer's lifetime and frees the port after",
    () =>
      Effect.gen(function* () {
        const port = yield* Effect.gen(function* () {
          const d = yield* Daemon.SpreadDaemon
          const c = yield* RawClient.connect(tcp(d), { name: "viaLayer" })
          expect(c.privateGroup).toBe("#viaLayer#layered")
          return d.port
        }).pipe(Effect.scoped, Effect.provide(Daemon.layer({ port: 0, name: "layered" })))
        expect(canBind(port)).toBe(true)
      }).pipe(quiet),
    T,
  )

  it.live(
    "Closing the daemon's scope closes every session at once, frees the port and removes the socket file",
    () =>
      Effect.gen(function* () {
        const path = tmpPath("shutdown")
        const scope = yield* Scope.make()
        const d = yield* startDaemon({ unixSocket: path, maxSessionMessages: 1_000_000 }).pipe(Scope.extend(scope))
        const clients = yield* Scope.make()
        const open = <A>(e: Effect.Effect<A, never, Scope.Scope>) => Scope.extend(e, clients)
        const a = yield* open(RawClient.connect(tcp(d), { name: "a" }))
        const b = yield* open(RawClient.connect(unix(d), { name: "b" }))
        const sloth = yield* open(RawClient.connect(tcp(d), { name: "sloth" }))
        const half = yield* open(RawClient.open(tcp(d)))
        const silent = yield* open(RawClient.open(tcp(d)))
        yield* half.write(Uint8Array.of(5, 0, 1, 1, 4, ...text("half")))
        yield* joinNow(a, "g")
        yield* joinNow(sloth, "g")
        // The sloth never reads: its socket fills and a write stays in flight.
        const big = new Uint8Array(100_000)
        for (let i = 0; i < 100; i++) yield* a.multicast({ service: "Agreed", groups: ["#sloth#localhost"], data: big })
        yield* Effect.sleep("100 millis")
        expect(d.stats().connections).toBe(5)
        expect(d.stats().outboxDepth).toBeGreaterThan(0)

        const start = Date.now()
        yield* Scope.close(scope, Exit.void)
        const closedIn = Date.now() - start
        const eofs = yield* Effect.forEach([a, b, half, silent], (c) => c.awaitEof(1000))
        expect(eofs).toEqual([true, true, true, true])
        expect(yield* sloth.awaitEof(3000)).toBe(true)
        expect(closedIn).toBeLessThan(1000)
        expect(canBind(d.port)).toBe(true)
        expect(exists(path)).toBe(false)
        expect(yield* connectFails(d.port)).toBe(true)
        yield* Scope.close(clients, Exit.void)
      }).pipe(quiet),
    T,
  )

  it.live(
    "Daemon.make can start again on the same port and socket path right after a stop",
    () =>
      Effect.gen(function* () {
        const path = tmpPath("restart")
        let port = 0
        for (let i = 0; i < 3; i++) {
          yield* Effect.scoped(Effect.gen(function* () {
            const d = yield* Daemon.make({ port, unixSocket: path }).pipe(Effect.orDie)
            port = d.port
            const c = yield* RawClient.connect(unix(d), { name: `run${i}` })
            expect(c.privateGroup).toBe(`#run${i}#localhost`)
          }))
          expect(exists(path)).toBe(false)
        }
      }).pipe(quiet),
    T,
  )
})
