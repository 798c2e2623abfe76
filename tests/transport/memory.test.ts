/**
 * The Transport service: the sockets by default, an in-memory network when
 * provided — on which a client and the embedded daemon talk with no socket
 * opened — and the in-memory streams' contract (the same as a socket's).
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Exit, Fiber, Layer, Schedule, Scope, Stream } from "effect"
import { connect } from "../../src/client/connection.ts"
import type { ConnectionEvent } from "../../src/client/core/events.ts"
import { isRegular, text } from "../../src/client/core/refinements.ts"
import * as Daemon from "../../src/daemon/mod.ts"
import type { ByteStream, Listener } from "../../src/transport/conn.ts"
import { layerMemory, memoryPair, memoryTransport } from "../../src/transport/memory.ts"
import { layerTest, SpreadDaemon } from "../../src/testing/mod.ts"
import { Spread } from "../../src/client/config/spread.ts"
import { socketTransport, Transport } from "../../src/transport/transport.ts"
import { eventually, quiet } from "../_helpers/fixtures.ts"

const T = 20_000

/** A TCP port nothing listens on, and whether the port is free to bind. */
const portIsFree = (port: number): boolean => {
  try {
    Deno.listen({ hostname: "127.0.0.1", port }).close()
    return true
  } catch {
    return false
  }
}

const fileExists = (path: string): boolean => {
  try {
    Deno.lstatSync(path)
    return true
  } catch {
    return false
  }
}

describe("Transport", () => {
  it.effect("is the sockets when nothing is provided, and what is provided otherwise", () =>
    Effect.gen(function* () {
      expect(yield* Transport).toBe(socketTransport)
      const memory = memoryTransport()
      expect(yield* Effect.provideService(Transport, memory)(Transport)).toBe(memory)
      expect((yield* Effect.provide(Transport, layerMemory)).name).toBe("memory")
    }))

  it.scopedLive(
    "by default the daemon binds a real port and a client connects over TCP",
    () =>
      quiet(Effect.gen(function* () {
        const daemon = yield* Daemon.make({ port: 0, name: "localhost", unixSocket: false })
        expect(portIsFree(daemon.port)).toBe(false)
        const raw = yield* Effect.promise(() => Deno.connect({ hostname: "127.0.0.1", port: daemon.port }))
        raw.close()
        const spread = yield* connect({ daemon: daemon.spreadName, name: "tcp" })
        expect(spread.privateGroup).toBe("#tcp#localhost")
      })),
    T,
  )

  it.scopedLive(
    "over the in-memory transport a client connects, joins, multicasts and receives from the embedded daemon, with no socket",
    () =>
      quiet(Effect.gen(function* () {
        const daemon = yield* Daemon.make({ port: 0, name: "localhost" })
        // Nothing is bound: not the TCP port, not the Unix socket file.
        expect(portIsFree(daemon.port)).toBe(true)
        expect(daemon.unixPath).toBe(`/tmp/${daemon.port}`)
        expect(fileExists(`/tmp/${daemon.port}`)).toBe(false)
        const alice = yield* connect({ daemon: daemon.spreadName, name: "alice" })
        // The Unix address of the same daemon works too (a name, no file).
        const bob = yield* connect({ daemon: `${daemon.port}`, name: "bob" })
        yield* alice.join("chat")
        yield* bob.join("chat")
        expect(yield* eventually(() => daemon.members("chat").length === 2)).toBe(true)
        yield* alice.multicast({ groups: "chat", data: "hello over memory", service: "Agreed" })
        for (const who of [alice, bob]) {
          const got = yield* who.messages.pipe(Stream.filter(isRegular), Stream.take(1), Stream.runCollect)
          const m = Chunk.unsafeHead(got)
          expect(text(m)).toBe("hello over memory")
          expect(m.sender).toBe("#alice#localhost")
        }
        expect(daemon.stats().sessions).toBe(2)
      })).pipe(Effect.provide(layerMemory)),
    T,
  )

  it.scopedLive(
    "a process run with --deny-net (no socket allowed) hosts a daemon and clients over memory",
    () =>
      Effect.gen(function* () {
        const app = new URL("./_memory_app.ts", import.meta.url).pathname
        const run = (file: string) =>
          Effect.promise(() =>
            new Deno.Command(Deno.execPath(), {
              args: ["run", "--deny-net", "--allow-read", "--allow-env", file],
              stdout: "piped",
              stderr: "piped",
            }).output()
          )
        const out = yield* run(app)
        expect(new TextDecoder().decode(out.stderr)).toBe("")
        expect(new TextDecoder().decode(out.stdout)).toBe("#a#memory: no socket here\n")
        expect(out.code).toBe(0)
      }),
    T,
  )

  it.scopedLive(
    "a client reconnects over the in-memory transport when the daemon comes back on the same port",
    () =>
      quiet(Effect.gen(function* () {
        const firstScope = yield* Scope.make()
        const first = yield* Scope.extend(Daemon.make({ port: 0, name: "localhost" }), firstScope)
        const events: Array<ConnectionEvent["_tag"]> = []
        const spread = yield* connect({
          daemon: first.spreadName,
          name: "again",
          reconnect: Schedule.spaced("20 millis").pipe(Schedule.intersect(Schedule.recurs(200))),
        })
        yield* Effect.forkScoped(Stream.runForEach(spread.events, (e) => Effect.sync(() => events.push(e._tag))))
        yield* spread.join("g")
        yield* Scope.close(firstScope, Exit.void)
        expect(yield* eventually(() => events.includes("Disconnected"), 5000)).toBe(true)
        const second = yield* Daemon.make({ port: first.port, name: "localhost" })
        expect(yield* eventually(() => events.includes("Reconnected"), 5000)).toBe(true)
        expect(yield* eventually(() => second.members("g").length === 1)).toBe(true)
        expect(portIsFree(first.port)).toBe(true)
      })).pipe(Effect.provide(layerMemory)),
    T,
  )

  it.scopedLive(
    "the testing layer (an embedded daemon and a connected Spread) runs over memory when given layerMemory",
    () =>
      quiet(Effect.gen(function* () {
        const spread = yield* Spread
        const daemon = yield* SpreadDaemon
        expect(portIsFree(daemon.port)).toBe(true)
        yield* spread.join("t")
        yield* spread.multicast({ groups: "t", data: "echo" })
        const got = yield* spread.messages.pipe(Stream.filter(isRegular), Stream.take(1), Stream.runCollect)
        expect(text(Chunk.unsafeHead(got))).toBe("echo")
      })).pipe(Effect.provide(layerTest().pipe(Layer.provide(layerMemory)))),
    T,
  )

  it.scopedLive(
    "a client on one in-memory network does not reach a daemon on another",
    () =>
      quiet(Effect.gen(function* () {
        const daemon = yield* Effect.provideService(Daemon.make({ port: 0 }), Transport, memoryTransport())
        const exit = yield* Effect.exit(
          Effect.provideService(connect({ daemon: daemon.spreadName }), Transport, memoryTransport()),
        )
        expect(Exit.isFailure(exit) && exit.cause._tag === "Fail" && exit.cause.error.reason).toBe("CouldNotConnect")
      })),
    T,
  )
})

const pair = (transport = memoryTransport()) =>
  Effect.gen(function* () {
    const listener = yield* transport.listen({ _tag: "Tcp", hostname: "127.0.0.1", port: 0 })
    const client = yield* transport.dial(listener.address)
    const server = yield* listener.accept
    return { listener, client, server }
  })

const readAll = (s: ByteStream) =>
  Effect.gen(function* () {
    const parts: Array<number> = []
    for (;;) {
      const c = yield* s.read
      if (c === undefined) return parts
      parts.push(...c)
    }
  })

describe("memoryTransport streams", () => {
  it.scoped("carry bytes both ways; a write's buffer may be reused at once; EOF after what the peer wrote", () =>
    Effect.gen(function* () {
      const { client, server } = yield* pair()
      const buf = Uint8Array.of(1, 2, 3)
      yield* client.write(buf)
      buf.fill(9)
      yield* Effect.promise(() => client.writeNow(Uint8Array.of(4)))
      yield* server.write(Uint8Array.of(7))
      expect(yield* client.read).toEqual(Uint8Array.of(7))
      yield* client.close
      expect(yield* readAll(server)).toEqual([1, 2, 3, 4])
      // Writing to a peer that closed fails.
      const w = yield* Effect.either(server.write(Uint8Array.of(1)))
      expect(w._tag === "Left" && w.left.reason).toBe("WriteFailed")
    }))

  it.scoped("close settles a pending read with Closed and is idempotent; later writes fail with Closed", () =>
    Effect.gen(function* () {
      const { server } = yield* pair()
      const reading = yield* Effect.fork(Effect.either(server.read))
      yield* Effect.yieldNow()
      yield* server.close
      yield* server.close
      const r = yield* Fiber.join(reading)
      expect(r._tag === "Left" && r.left.reason).toBe("Closed")
      expect(server.isClosed()).toBe(true)
      const w = yield* Effect.either(server.write(Uint8Array.of(1)))
      expect(w._tag === "Left" && w.left.reason).toBe("Closed")
      const p = yield* Effect.promise(() => server.readNow().then(() => "read", (e) => e.reason))
      expect(p).toBe("Closed")
    }))

  it.scoped("a writer waits while 64 writes wait unread (backpressure), and goes on once the reader reads", () =>
    Effect.gen(function* () {
      const { client, server } = yield* pair()
      for (let i = 0; i < 64; i++) yield* client.write(Uint8Array.of(i))
      const blocked = yield* Effect.fork(client.write(Uint8Array.of(64)))
      yield* Effect.yieldNow()
      yield* Effect.yieldNow()
      expect(blocked.unsafePoll()).toBeNull()
      expect(yield* server.read).toEqual(Uint8Array.of(0))
      yield* Fiber.join(blocked)
    }))

  it.scoped("dial with nothing listening fails ConnectFailed; a second listen on a port fails ListenFailed", () =>
    Effect.gen(function* () {
      const t = memoryTransport()
      const none = yield* Effect.either(t.dial({ _tag: "Tcp", hostname: "localhost", port: 4803 }))
      expect(none._tag === "Left" && none.left.reason).toBe("ConnectFailed")
      const l = yield* t.listen({ _tag: "Tcp", hostname: "127.0.0.1", port: 4803 })
      // Every host name is this one machine.
      yield* t.dial({ _tag: "Tcp", hostname: "localhost", port: 4803 })
      const again = yield* Effect.either(t.listen({ _tag: "Tcp", hostname: "0.0.0.0", port: 4803 }))
      expect(again._tag === "Left" && again.left.reason).toBe("ListenFailed")
      yield* l.close
      const after = yield* Effect.either(t.dial({ _tag: "Tcp", hostname: "localhost", port: 4803 }))
      expect(after._tag === "Left" && after.left.reason).toBe("ConnectFailed")
    }))

  it.scoped("port 0 hands out ports from 61000, past the OS's outgoing ones, wraps around, and fails once all are bound", () =>
    Effect.gen(function* () {
      const t = memoryTransport()
      const at0 = { _tag: "Tcp", hostname: "127.0.0.1", port: 0 } as const
      const portOf = (l: Listener) => (l.address._tag === "Tcp" ? l.address.port : -1)
      const first = yield* t.listen(at0)
      expect(portOf(first)).toBe(61000)
      yield* t.listen({ ...at0, port: 65535 })
      // 61001 to 65534, then nothing is left.
      for (let p = 61001; p <= 65534; p++) expect(portOf(yield* t.listen(at0))).toBe(p)
      const full = yield* Effect.either(t.listen(at0))
      expect(full._tag === "Left" && full.left.reason).toBe("ListenFailed")
      // A port given back is handed out again.
      yield* first.close
      expect(portOf(yield* t.listen(at0))).toBe(61000)
    }))

  it.scoped("closing a listener fails a pending accept with Closed and closes connections not yet accepted", () =>
    Effect.gen(function* () {
      const t = memoryTransport()
      const l = yield* t.listen({ _tag: "Unix", path: "/tmp/spreadfx-memory-test" })
      expect(fileExists("/tmp/spreadfx-memory-test")).toBe(false)
      const waiting = yield* t.dial(l.address)
      yield* l.accept
      const pending = yield* t.dial(l.address)
      yield* l.close
      expect(yield* pending.read).toBeUndefined()
      const accepting = yield* Effect.either(l.accept)
      expect(accepting._tag === "Left" && accepting.left.reason).toBe("Closed")
      expect(waiting.isClosed()).toBe(false)
    }))

  it.scoped("memoryPair connects two streams with no listener", () =>
    Effect.gen(function* () {
      const { client, server } = yield* memoryPair()
      yield* server.write(Uint8Array.of(5))
      expect(yield* client.read).toEqual(Uint8Array.of(5))
      expect(client.address).toBe("memory:client")
    }))

  it.scoped("carries no TLS: dialTls and listenTls fail, saying so", () =>
    Effect.gen(function* () {
      const t = memoryTransport()
      const d = yield* Effect.either(t.dialTls({ hostname: "127.0.0.1", port: 1 }, {}))
      expect(d._tag === "Left" && d.left.reason).toBe("ConnectFailed")
      expect(d._tag === "Left" && d.left.message).toContain("no TLS")
      const l = yield* Effect.either(t.listenTls({ hostname: "127.0.0.1", port: 0 }, { cert: "", key: "" }))
      expect(l._tag === "Left" && l.left.reason).toBe("ListenFailed")
    }))
})
