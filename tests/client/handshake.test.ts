import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import { connect } from "../../src/client/connection.ts"
import type { ConnectOptions } from "../../src/client/options.ts"
import { ConnectError, rejectReasons } from "../../src/client/core/connect_error.ts"
import { encodeAuthList, FrameDecoder, RejectCodes, ServiceBits } from "../../src/protocol/mod.ts"
import { acceptHandshake, authMethodsOf, type FakeConn, fakeDaemon, serveUntilKill } from "./_fixtures.ts"

const TIMEOUT = 10_000

// connect() in its own scope; answers the ConnectError it failed with.
const connectFailure = (options: ConnectOptions) =>
  Effect.gen(function* () {
    const exit = yield* Effect.exit(Effect.scoped(connect(options)))
    if (Exit.isSuccess(exit)) return expect.unreachable("connect succeeded")
    const e = exit.cause._tag === "Fail" ? exit.cause.error : undefined
    expect(e).toBeInstanceOf(ConnectError)
    return e as ConnectError
  })

const rejects: ReadonlyArray<[string, number]> = [...Object.entries(RejectCodes), ["Unknown", -42]]

describe("connect handshake", () => {
  it.scopedLive(
    "connect sends the connect message and the 90-byte auth choice each in one write",
    () =>
      Effect.gen(function* () {
        const seen: Array<Awaited<ReturnType<typeof acceptHandshake>>> = []
        const d = yield* fakeDaemon(async (c) => {
          seen.push(await acceptHandshake(c))
          await serveUntilKill(c)
        })
        const conn = yield* connect({ daemon: d.spreadName, name: "alice", priority: 1, membership: false })
        expect(conn.privateGroup).toBe("#alice#localhost")
        expect(conn.privateName).toBe("alice")
        expect(conn.daemonName).toBe("localhost")
        expect(conn.daemonVersion).toEqual({ major: 5, minor: 0, patch: 1 })
        const hs = seen[0]
        expect(hs).toBeDefined()
        if (hs === undefined) return
        // 5.0.1, flags = priority bit 0x10 without the membership bit, "alice"
        expect([...hs.connectChunk]).toEqual([5, 0, 1, 0x10, 5, 0x61, 0x6c, 0x69, 0x63, 0x65])
        expect(hs.authChunk.length).toBe(90)
        expect(authMethodsOf(hs.authChunk)).toEqual(["NULL"])
      }),
    TIMEOUT,
  )

  it.scopedLive("connect buffers an accept that arrives one byte at a time", () =>
    Effect.gen(function* () {
      const d = yield* fakeDaemon(async (c) => {
        await acceptHandshake(c, { split: true })
        await serveUntilKill(c)
      })
      const conn = yield* connect({ daemon: d.spreadName, name: "slowpoke" })
      expect(conn.privateGroup).toBe("#slowpoke#localhost")
    }), TIMEOUT)

  it.scopedLive("connect learns the name a daemon generated for an empty private name", () =>
    Effect.gen(function* () {
      const d = yield* fakeDaemon(async (c) => {
        await acceptHandshake(c)
        await serveUntilKill(c)
      })
      const conn = yield* connect({ daemon: d.spreadName, name: "" })
      expect(conn.privateName).toBe("gen1")
    }), TIMEOUT)

  it.live(
    "connect maps each reject byte sent in place of the auth list to a typed ConnectError",
    () =>
      Effect.gen(function* () {
        for (const [name, code] of rejects) {
          const e = yield* Effect.scoped(Effect.gen(function* () {
            const d = yield* fakeDaemon(async (c) => {
              await c.read()
              await c.write(Uint8Array.of(code & 0xff))
              c.close()
            })
            return yield* connectFailure({ daemon: d.spreadName })
          }))
          expect(e.reason).toBe(name === "Unknown" ? "RejectUnknown" : rejectReasons[name as keyof typeof RejectCodes])
          expect(e.code).toBe(code)
          expect(e.rejectCode).toBe(code)
        }
      }),
    TIMEOUT,
  )

  it.live(
    "connect maps each reject byte sent in place of the accept to a typed ConnectError",
    () =>
      Effect.gen(function* () {
        for (const [name, code] of rejects) {
          const e = yield* Effect.scoped(Effect.gen(function* () {
            const d = yield* fakeDaemon(async (c) => {
              await c.read()
              await c.write(encodeAuthList(["NULL"]))
              await c.readExactly(90)
              await c.write(Uint8Array.of(code & 0xff))
              c.close()
            })
            return yield* connectFailure({ daemon: d.spreadName })
          }))
          expect(e.reason).toBe(name === "Unknown" ? "RejectUnknown" : rejectReasons[name as keyof typeof RejectCodes])
          expect(e.code).toBe(code)
        }
      }),
    TIMEOUT,
  )

  it.scopedLive(
    "connect fails with RejectAuth, sending no choice, when the daemon does not offer the method",
    () =>
      Effect.gen(function* () {
        const after: Array<number> = []
        const d = yield* fakeDaemon(async (c) => {
          await c.read()
          await c.write(encodeAuthList(["IP"]))
          after.push((await c.readToEnd()).length)
        })
        const e = yield* connectFailure({ daemon: d.spreadName })
        expect(e.reason).toBe("RejectAuth")
        expect(e.detail).toContain(`"NULL"`)
        expect(e.detail).toContain(`"IP"`)
        yield* Effect.promise(() => new Promise((r) => setTimeout(r, 50)))
        expect(after).toEqual([0])
      }),
    TIMEOUT,
  )

  it.scopedLive("connect sends a requested auth method the daemon offers", () =>
    Effect.gen(function* () {
      const methods: Array<ReadonlyArray<string> | undefined> = []
      const d = yield* fakeDaemon(async (c) => {
        const hs = await acceptHandshake(c, { methods: ["NULL", "IP"] })
        if (hs !== undefined) methods.push(authMethodsOf(hs.authChunk))
        await serveUntilKill(c)
      })
      yield* connect({ daemon: d.spreadName, auth: "IP" })
      expect(methods).toEqual([["IP"]])
    }), TIMEOUT)

  it.scopedLive(
    "connect fails with ConnectionClosed when the daemon closes during the handshake",
    () =>
      Effect.gen(function* () {
        const d = yield* fakeDaemon(async (c) => {
          await c.read()
          await c.write(encodeAuthList(["NULL"]))
          await c.readExactly(90)
          await c.write(Uint8Array.of(1, 5, 0)) // a truncated accept
          c.close()
        })
        const e = yield* connectFailure({ daemon: d.spreadName })
        expect(e.reason).toBe("ConnectionClosed")
        expect(e.code).toBe(-8)
        expect(e.detail).toContain("accept")
      }),
    TIMEOUT,
  )

  it.scopedLive(
    "connect fails with ConnectionClosed when the accept names another session",
    () =>
      Effect.gen(function* () {
        const d = yield* fakeDaemon(async (c) => {
          await acceptHandshake(c, { daemonName: "x#y" })
          await c.readToEnd()
        })
        const e = yield* connectFailure({ daemon: d.spreadName, name: "bob" })
        expect(e.reason).toBe("ConnectionClosed")
        expect(e.detail).toContain("#bob#x#y")
      }),
    TIMEOUT,
  )

  it.scopedLive(
    "connect fails with Timeout in bounded time when the daemon never answers",
    () =>
      Effect.gen(function* () {
        let seen: FakeConn | undefined
        const d = yield* fakeDaemon(async (c) => {
          seen = c
          await c.readToEnd()
        })
        const t0 = Date.now()
        const e = yield* connectFailure({ daemon: d.spreadName, connectTimeout: "200 millis" })
        expect(e.reason).toBe("Timeout")
        expect(Date.now() - t0).toBeLessThan(1500)
        expect(seen).toBeDefined()
      }),
    TIMEOUT,
  )

  it.scopedLive(
    "connectTimeout holds while the TCP connect itself hangs (a listener whose accept backlog is full)",
    () =>
      Effect.gen(function* () {
        // A listener that never accepts: once its backlog is full the kernel
        // drops further SYNs, and a connect waits for the OS's retries.
        const l = Deno.listen({ hostname: "127.0.0.1", port: 0 })
        const port = (l.addr as Deno.NetAddr).port
        const held: Array<Deno.Conn> = []
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            for (const c of held) c.close()
            l.close()
          })
        )
        let hung = false
        for (let i = 0; i < 4096 && !hung; i++) {
          const ac = new AbortController()
          const timer = setTimeout(() => ac.abort(), 200)
          const r = yield* Effect.either(
            Effect.tryPromise(() => Deno.connect({ hostname: "127.0.0.1", port, signal: ac.signal })),
          )
          clearTimeout(timer)
          if (r._tag === "Right") held.push(r.right)
          else hung = true
        }
        expect(hung).toBe(true)
        const t0 = Date.now()
        const e = yield* connectFailure({ daemon: `${port}@127.0.0.1`, connectTimeout: "500 millis" })
        const elapsed = Date.now() - t0
        expect(e.reason).toBe("Timeout")
        expect(elapsed).toBeLessThan(1000)
      }),
    20_000,
  )

  it.scopedLive(
    "connect to something that is not a Spread daemon fails with NotSpreadDaemon, quoting its reply",
    () =>
      Effect.gen(function* () {
        // A NATS-like server speaks first; an HTTP-like one answers our bytes with a 400.
        const replies: ReadonlyArray<readonly [string, string]> = [
          ['INFO {"server_id":"NATS","version":"2.9.10"}\r\n', "INFO {"],
          ["HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 400"],
          ["SSH-2.0-OpenSSH_9.2\r\n", "SSH-2.0"],
        ]
        for (const [reply, quoted] of replies) {
          const l = Deno.listen({ hostname: "127.0.0.1", port: 0 })
          const port = (l.addr as Deno.NetAddr).port
          const served = (async () => {
            const c = await l.accept()
            await c.read(new Uint8Array(1024))
            await c.write(new TextEncoder().encode(reply))
            await new Promise((r) => setTimeout(r, 100))
            c.close()
          })()
          const e = yield* connectFailure({ daemon: `${port}@127.0.0.1` })
          yield* Effect.promise(() => served)
          l.close()
          expect(e.reason).toBe("NotSpreadDaemon")
          expect(e.message).toContain("not a Spread daemon")
          expect(e.message).toContain(quoted)
          expect(e.message).not.toContain("\r")
        }
      }),
    TIMEOUT,
  )

  it.live("connect fails with CouldNotConnect when nothing listens", () =>
    Effect.gen(function* () {
      const l = Deno.listen({ hostname: "127.0.0.1", port: 0 })
      const port = (l.addr as Deno.NetAddr).port
      l.close()
      const e = yield* connectFailure({ daemon: `${port}@127.0.0.1` })
      expect(e.reason).toBe("CouldNotConnect")
      expect(e.code).toBe(-2)
      const u = yield* connectFailure({ daemon: "/tmp/spreadfx-no-such-socket" })
      expect(u.reason).toBe("CouldNotConnect")
    }), TIMEOUT)

  it.scopedLive(
    "closing the scope sends the queued frames and then the disconnect (KILL) last, without waiting out closeTimeout",
    () =>
      Effect.gen(function* () {
        const received: Array<Uint8Array> = []
        const d = yield* fakeDaemon(async (c) => {
          await acceptHandshake(c)
          received.push(await serveUntilKill(c))
        })
        const t0 = Date.now()
        yield* Effect.scoped(Effect.gen(function* () {
          const conn = yield* connect({ daemon: d.spreadName, name: "k", closeTimeout: "5 seconds" })
          yield* conn.join("g")
          yield* conn.multicastMany([1, 2, 3].map((i) => ({ groups: "other", data: `m${i}` })))
        }))
        expect(Date.now() - t0).toBeLessThan(2000)
        yield* Effect.promise(() => new Promise((r) => setTimeout(r, 50)))
        const decoder = new FrameDecoder("toDaemon")
        decoder.push(received[0])
        const types: Array<number> = []
        for (let f = decoder.next(); f !== undefined; f = decoder.next()) {
          if (!("type" in f)) return expect.unreachable(f.message)
          types.push(f.type)
        }
        expect(types).toEqual([
          ServiceBits.JOIN_MESS,
          ServiceBits.AGREED_MESS,
          ServiceBits.AGREED_MESS,
          ServiceBits.AGREED_MESS,
          ServiceBits.KILL_MESS,
        ])
        expect(decoder.buffered).toBe(0)
      }),
    TIMEOUT,
  )
})
