/**
 * The TLS byte streams themselves (src/transport/tls_*.ts): the node:tls
 * listener's stream and the dialer's, with the same contract as TCP's.
 */
import { beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import type { TransportError } from "../../src/transport/errors.ts"
import { classifyTlsFailure, dialTls } from "../../src/transport/tls_dialer.ts"
import { listenTls } from "../../src/transport/tls_listener.ts"
import { type Certs, makeCerts } from "../relay/_fixtures.ts"

let certs: Certs
beforeAll(async () => {
  certs = await makeCerts()
})

const T = 15_000

const pair = Effect.gen(function* () {
  const listener = yield* listenTls({ hostname: "127.0.0.1", port: 0 }, {
    cert: certs.server.cert,
    key: certs.server.key,
    ca: certs.ca.cert,
  })
  const port = listener.address._tag === "Tcp" ? listener.address.port : 0
  const client = yield* dialTls({ hostname: "127.0.0.1", port }, {
    caCerts: [certs.ca.cert],
    cert: certs.reader1.cert,
    key: certs.reader1.key,
  })
  const server = yield* listener.accept
  yield* Effect.addFinalizer(() => server.close)
  return { client, server }
})

/** Reads until `n` bytes arrived (or EOF); answers them joined. */
const readBytes = (read: Effect.Effect<Uint8Array | undefined, TransportError>, n: number) =>
  Effect.gen(function* () {
    const out = new Uint8Array(n)
    let got = 0
    while (got < n) {
      const chunk = yield* read
      if (chunk === undefined) break
      out.set(chunk, got)
      got += chunk.length
    }
    return out.subarray(0, got)
  })

describe("TLS byte streams", () => {
  it.scopedLive("carry 1 MiB each way, in order, across many writes", () =>
    Effect.gen(function* () {
      const { client, server } = yield* pair
      const data = new Uint8Array(1024 * 1024)
      for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 10)) & 0xff
      const send = (w: (b: Uint8Array) => Effect.Effect<void, TransportError>) =>
        Effect.gen(function* () {
          for (let o = 0; o < data.length; o += 10_000) yield* w(data.subarray(o, Math.min(data.length, o + 10_000)))
        })
      // Each side reads while it writes (both writing first would fill
      // every buffer on the way and wait on each other).
      const [toServer, toClient] = yield* Effect.all([
        readBytes(server.read, data.length),
        readBytes(client.read, data.length),
        send((b) => client.write(b)),
        send((b) => server.write(b)),
      ], { concurrency: "unbounded" })
      // (compared here, not with toEqual, which is slow on a megabyte)
      const same = (a: Uint8Array) => a.length === data.length && a.every((b, i) => b === data[i])
      expect(same(toServer)).toBe(true)
      expect(same(toClient)).toBe(true)
      // The promise twins see the same stream.
      yield* Effect.promise(() => client.writeNow(Uint8Array.of(1, 2, 3)))
      expect(yield* Effect.promise(() => server.readNow())).toEqual(Uint8Array.of(1, 2, 3))
    }), T)

  it.scopedLive(
    "close is idempotent, settles a pending read with Closed, and later writes fail with Closed",
    () =>
      Effect.gen(function* () {
        const { server } = yield* pair
        const pending = server.readNow().then(() => "read", (e: TransportError) => e.reason)
        yield* server.close
        yield* server.close
        expect(server.isClosed()).toBe(true)
        expect(yield* Effect.promise(() => pending)).toBe("Closed")
        const w = yield* Effect.either(server.write(Uint8Array.of(1)))
        expect(w._tag === "Left" && w.left.reason).toBe("Closed")
      }),
    T,
  )

  it.scopedLive("the peer's close reads as the bytes it sent, then EOF", () =>
    Effect.gen(function* () {
      const { client, server } = yield* pair
      yield* client.write(new TextEncoder().encode("last words"))
      yield* client.close
      const got = yield* readBytes(server.read, 100)
      expect(new TextDecoder().decode(got)).toBe("last words")
      expect(yield* server.read).toBe(undefined)
    }), T)

  it.scopedLive("an interrupted read loses nothing: the bytes go to the next read", () =>
    Effect.gen(function* () {
      const { client, server } = yield* pair
      const r = yield* Effect.timeout(server.read, 50).pipe(Effect.either)
      expect(r._tag).toBe("Left")
      yield* client.write(Uint8Array.of(9, 8, 7))
      expect(yield* readBytes(server.read, 3)).toEqual(Uint8Array.of(9, 8, 7))
    }), T)

  it.scopedLive(
    "dialTls with a server name other than the host (Deno.startTls, no client certificate) verifies that name",
    () =>
      Effect.gen(function* () {
        // No client certificates asked for: the dial goes through Deno.connect + Deno.startTls.
        const listener = yield* listenTls({ hostname: "127.0.0.1", port: 0 }, {
          cert: certs.server.cert,
          key: certs.server.key,
        })
        const port = listener.address._tag === "Tcp" ? listener.address.port : 0
        const at = { hostname: "127.0.0.1", port }
        const client = yield* dialTls(at, { caCerts: [certs.ca.cert], serverName: "localhost" })
        const server = yield* listener.accept
        yield* Effect.addFinalizer(() => server.close)
        yield* client.write(Uint8Array.of(1, 2))
        expect(yield* readBytes(server.read, 2)).toEqual(Uint8Array.of(1, 2))
        const wrong = yield* Effect.either(dialTls(at, { caCerts: [certs.ca.cert], serverName: "relay.example.com" }))
        expect(wrong._tag === "Left" && wrong.left.reason).toBe("ConnectFailed")
        expect(wrong._tag === "Left" && classifyTlsFailure(wrong.left)).toBe("NameMismatch")
      }),
    T,
  )
})
