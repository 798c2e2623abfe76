/**
 * TLS sessions: client certificates checked during the TLS handshake,
 * typed client errors for every refusal, the same session code as TCP.
 */
import { beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Layer, Scope, Stream } from "effect"
import { envConfig } from "../_helpers/fixtures.ts"
import { connect, type ConnectError, isRegular, layerConfig, Spread, text, type TlsOptions } from "../../mod.ts"
import type * as Daemon from "../../src/daemon/mod.ts"
import {
  captureLogs,
  type Certs,
  eventually,
  LogLevel,
  type LogLine,
  makeCerts,
  quiet,
  startRelay,
  tlsAddress,
} from "./_fixtures.ts"

let certs: Certs
beforeAll(async () => {
  certs = await makeCerts()
})

const T = 15_000

const failure = <A>(exit: Exit.Exit<A, ConnectError>): ConnectError => {
  if (Exit.isSuccess(exit)) throw new Error("connect succeeded where it should have been refused")
  const e = exit.cause._tag === "Fail" ? exit.cause.error : undefined
  if (e === undefined) throw new Error(`connect died: ${String(exit.cause)}`)
  return e
}

describe("TLS sessions", () => {
  it.scopedLive(
    "layerConfig connects over TLS from SPREAD_TLS_* settings; without the client certificate it is refused, typed",
    () =>
      quiet(Effect.gen(function* () {
        const daemon = yield* startRelay(certs)
        const settings = {
          SPREAD_DAEMON: tlsAddress(daemon),
          SPREAD_NAME: "cfgtls",
          SPREAD_TLS_CA: certs.ca.cert,
          SPREAD_TLS_CERT: certs.reader1.cert,
          SPREAD_TLS_KEY: certs.reader1.key,
        }
        const spread = yield* Spread.pipe(Effect.provide(layerConfig().pipe(Layer.provide(envConfig(settings)))))
        expect(spread.privateGroup).toBe("#cfgtls#localhost")
        expect(spread.address).toBe(tlsAddress(daemon))
        const { SPREAD_TLS_CERT: _c, SPREAD_TLS_KEY: _k, ...noCert } = settings
        const refused = yield* Effect.flip(
          Effect.scoped(Layer.build(layerConfig().pipe(Layer.provide(envConfig(noCert))))),
        )
        expect(refused._tag).toBe("ConnectError")
        expect(refused._tag === "ConnectError" && refused.reason).toBe("TlsCertificateRefused")
      })),
    T,
  )

  it.scopedLive(
    "A client with a certificate from the daemon's CA joins, multicasts and receives over TLS",
    () =>
      quiet(Effect.gen(function* () {
        const seenBy: Array<Daemon.AuthContext> = []
        const daemon = yield* startRelay(certs, {
          authMethods: [{ name: "NULL", authenticate: (c) => Effect.sync(() => seenBy.push(c)).pipe(Effect.as(true)) }],
        })
        const a = yield* connect({
          daemon: tlsAddress(daemon),
          name: "alice",
          tls: { caCerts: [certs.ca.cert], cert: certs.reader1.cert, key: certs.reader1.key },
        })
        const b = yield* connect({ daemon: daemon.spreadName, name: "bob" }) // plain TCP beside it
        // Auth methods learn which transport each session came in on.
        expect(seenBy.map((c) => [c.privateName, c.transport])).toEqual([["alice", "tls"], ["bob", "tcp"]])
        yield* a.join("chat")
        yield* b.join("chat")
        expect(yield* eventually(() => daemon.members("chat").length === 2)).toBe(true)
        yield* b.multicast({ groups: "chat", data: "over tcp", service: "Agreed" })
        yield* a.multicast({ groups: "chat", data: "over tls", service: "Agreed" })
        const seen = (c: typeof a) =>
          c.messages.pipe(Stream.filter(isRegular), Stream.take(2), Stream.map(text), Stream.runCollect)
        const [fromA, fromB] = yield* Effect.all([seen(a), seen(b)], { concurrency: 2 })
        expect([...fromA]).toEqual(["over tcp", "over tls"])
        expect([...fromB]).toEqual(["over tcp", "over tls"])
        expect(a.privateGroup).toBe("#alice#localhost")
      })),
    T,
  )

  it.scopedLive(
    "A client without a certificate is refused during the TLS handshake: TlsCertificateRefused, logged, no session",
    () =>
      Effect.gen(function* () {
        const lines: Array<LogLine> = []
        const daemon = yield* startRelay(certs).pipe(Effect.provide(captureLogs(lines)))
        const exit = yield* Effect.exit(
          connect({ daemon: tlsAddress(daemon), name: "anon", tls: { caCerts: [certs.ca.cert] } }),
        )
        const e = failure(exit)
        expect(e.reason).toBe("TlsCertificateRefused")
        expect(e.message).toContain("refused this client's certificate")
        expect(daemon.stats().sessions).toBe(0)
        expect(
          yield* eventually(() =>
            lines.some((l) => l.level === LogLevel.Warning && l.message.includes("Refused TLS client"))
          ),
        ).toBe(true)
      }),
    T,
  )

  it.scopedLive(
    "A client with a certificate from another CA is refused: TlsCertificateRefused, logged, no session",
    () =>
      Effect.gen(function* () {
        const lines: Array<LogLine> = []
        const daemon = yield* startRelay(certs).pipe(Effect.provide(captureLogs(lines)))
        const exit = yield* Effect.exit(connect({
          daemon: tlsAddress(daemon),
          name: "intruder",
          tls: { caCerts: [certs.ca.cert], cert: certs.intruder.cert, key: certs.intruder.key },
        }))
        expect(failure(exit).reason).toBe("TlsCertificateRefused")
        expect(daemon.stats().sessions).toBe(0)
        expect(daemon.members("#intruder#localhost")).toEqual([])
        expect(yield* eventually(() => lines.some((l) => l.message.includes("Refused TLS client")))).toBe(true)
      }),
    T,
  )

  it.scopedLive(
    "A client that does not trust the daemon's CA fails with TlsUnknownAuthority",
    () =>
      quiet(Effect.gen(function* () {
        const daemon = yield* startRelay(certs)
        const exit = yield* Effect.exit(connect({
          daemon: tlsAddress(daemon),
          tls: { caCerts: [certs.otherCa.cert], cert: certs.reader1.cert, key: certs.reader1.key },
        }))
        expect(failure(exit).reason).toBe("TlsUnknownAuthority")
      })),
    T,
  )

  it.scopedLive(
    "A certificate without the expected server name fails with TlsNameMismatch",
    () =>
      quiet(Effect.gen(function* () {
        const daemon = yield* startRelay(certs)
        const exit = yield* Effect.exit(connect({
          daemon: tlsAddress(daemon),
          tls: {
            caCerts: [certs.ca.cert],
            cert: certs.reader1.cert,
            key: certs.reader1.key,
            serverName: "relay.example.com",
          },
        }))
        expect(failure(exit).reason).toBe("TlsNameMismatch")
        // The name the certificate does carry passes.
        const ok = yield* connect({
          daemon: tlsAddress(daemon),
          tls: { caCerts: [certs.ca.cert], cert: certs.reader1.cert, key: certs.reader1.key, serverName: "localhost" },
        })
        expect(ok.daemonName).toBe("localhost")
      })),
    T,
  )

  it.scopedLive(
    "The node:tls dial (a serverName other than the host) types the same failures the same way",
    () =>
      quiet(Effect.gen(function* () {
        const daemon = yield* startRelay(certs)
        const dial = (tls: TlsOptions) => Effect.exit(connect({ daemon: tlsAddress(daemon), tls }))
        const via = { serverName: "localhost" } // the address is 127.0.0.1
        expect(failure(yield* dial({ ...via, caCerts: [certs.otherCa.cert], ...certs.reader1 })).reason).toBe(
          "TlsUnknownAuthority",
        )
        expect(failure(yield* dial({ ...via, caCerts: [certs.ca.cert] })).reason).toBe("TlsCertificateRefused")
        expect(failure(yield* dial({ ...via, caCerts: [certs.ca.cert], ...certs.intruder })).reason).toBe(
          "TlsCertificateRefused",
        )
        const ok = yield* connect({
          daemon: tlsAddress(daemon),
          tls: { ...via, caCerts: [certs.ca.cert], ...certs.reader1 },
        })
        expect(ok.daemonName).toBe("localhost")
      })),
    T,
  )

  it.scopedLive("allowSubjects lets in only the listed certificate subjects", () =>
    Effect.gen(function* () {
      const lines: Array<LogLine> = []
      const daemon = yield* startRelay(certs, {
        tls: {
          port: 0,
          cert: certs.server.cert,
          key: certs.server.key,
          ca: certs.ca.cert,
          allowSubjects: ["reader-1"],
        },
      }).pipe(Effect.provide(captureLogs(lines)))
      const tls = (c: { cert: string; key: string }) => ({ caCerts: [certs.ca.cert], cert: c.cert, key: c.key })
      const ok = yield* connect({ daemon: tlsAddress(daemon), tls: tls(certs.reader1) })
      expect(ok.daemonName).toBe("localhost")
      const exit = yield* Effect.exit(connect({ daemon: tlsAddress(daemon), tls: tls(certs.reader2) }))
      expect(failure(exit).reason).toBe("TlsCertificateRefused")
      expect(daemon.stats().sessions).toBe(1)
      expect(yield* eventually(() => lines.some((l) => l.message.includes(`"reader-2" is not allowed`)))).toBe(true)
    }), T)

  it.scopedLive("Options: tls needs a TCP address and a certificate goes with its key", () =>
    Effect.gen(function* () {
      const unix = yield* Effect.exit(connect({ daemon: "/tmp/nothing-here", tls: {} }))
      expect(failure(unix).reason).toBe("IllegalOption")
      const half = yield* Effect.exit(connect({ daemon: "4803@127.0.0.1", tls: { cert: certs.reader1.cert } }))
      expect(failure(half).reason).toBe("IllegalOption")
    }), T)

  it.scopedLive(
    "A TCP connection that never starts TLS is closed after the handshake timeout, and logged",
    () =>
      Effect.gen(function* () {
        const lines: Array<LogLine> = []
        const daemon = yield* startRelay(certs, { handshakeTimeoutMs: 300 }).pipe(Effect.provide(captureLogs(lines)))
        const silent = yield* Effect.acquireRelease(
          Effect.promise(() => Deno.connect({ hostname: "127.0.0.1", port: daemon.tlsPort ?? 0 })),
          (c) => Effect.sync(() => c.close()),
        )
        const started = Date.now()
        const n = yield* Effect.promise(() => silent.read(new Uint8Array(16)).catch(() => null))
        expect(n).toBe(null)
        expect(Date.now() - started).toBeLessThan(3000)
        expect(yield* eventually(() => lines.some((l) => l.message.includes("Refused TLS client")))).toBe(true)
      }),
    T,
  )

  it.scopedLive(
    "TLS handshakes are bounded: past maxHandshaking at once a new connection is closed and logged",
    () =>
      Effect.gen(function* () {
        const lines: Array<LogLine> = []
        const daemon = yield* startRelay(certs, { maxHandshaking: 2 }).pipe(Effect.provide(captureLogs(lines)))
        const open = () =>
          Effect.acquireRelease(
            Effect.promise(() => Deno.connect({ hostname: "127.0.0.1", port: daemon.tlsPort ?? 0 })),
            (c) => Effect.sync(() => c.close()),
          )
        yield* open()
        yield* open()
        yield* Effect.sleep(100)
        const third = yield* open()
        const n = yield* Effect.promise(() => third.read(new Uint8Array(16)).catch(() => null))
        expect(n).toBe(null)
        expect(yield* eventually(() => lines.some((l) => l.message.includes("2 TLS handshakes are already under way"))))
          .toBe(true)
      }),
    T,
  )

  it.scopedLive(
    "The daemon shuts down cleanly with TLS sessions open; their clients see the end",
    () =>
      quiet(Effect.gen(function* () {
        const daemonScope = yield* Scope.make()
        const daemon = yield* startRelay(certs).pipe(Scope.extend(daemonScope))
        const tlsPort = daemon.tlsPort ?? 0
        const tls = (c: { cert: string; key: string }) => ({ caCerts: [certs.ca.cert], cert: c.cert, key: c.key })
        const clients = yield* Effect.all([
          connect({ daemon: tlsAddress(daemon), tls: tls(certs.reader1) }),
          connect({ daemon: tlsAddress(daemon), tls: tls(certs.reader2) }),
        ])
        for (const c of clients) yield* c.join("logs")
        expect(yield* eventually(() => daemon.members("logs").length === 2)).toBe(true)
        const started = Date.now()
        yield* Scope.close(daemonScope, Exit.void)
        expect(Date.now() - started).toBeLessThan(3000)
        for (const c of clients) {
          const e = yield* c.awaitClosed.pipe(Effect.timeout(3000))
          expect(e.reason, e.detail + String(e.cause)).toBe("ConnectionClosed")
        }
        // The TLS port is free again.
        const again = Deno.listen({ hostname: "127.0.0.1", port: tlsPort })
        again.close()
      })),
    T,
  )
})
