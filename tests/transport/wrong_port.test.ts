/**
 * The wrong port, each way: a plain client on a daemon's TLS port, and a
 * TLS client on its plain port, each get an error that says what is wrong,
 * and the daemon logs the same with the peer's address. TLS refusals name
 * the peer too.
 */
import { beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Layer, Logger, LogLevel } from "effect"
import { connect } from "../../src/client/connection.ts"
import type { ConnectError } from "../../src/client/core/connect_error.ts"
import {
  captureLogs,
  type Certs,
  eventually,
  type LogLine,
  makeCerts,
  quiet,
  startRelay,
  tlsAddress,
} from "../relay/_fixtures.ts"

let certs: Certs
beforeAll(async () => {
  certs = await makeCerts()
})

const T = 15_000

const failure = <A>(exit: Exit.Exit<A, ConnectError>): ConnectError => {
  if (Exit.isSuccess(exit)) throw new Error("connect succeeded where it should have failed")
  if (exit.cause._tag !== "Fail") throw new Error(`connect died: ${String(exit.cause)}`)
  return exit.cause.error
}

/** A relay daemon whose log lines go to `lines` (Debug and up). */
const relayLogging = (lines: Array<LogLine>) =>
  startRelay(certs).pipe(Effect.provide(Layer.merge(captureLogs(lines), Logger.minimumLogLevel(LogLevel.Debug))))

const warningsMatching = (lines: ReadonlyArray<LogLine>, re: RegExp) =>
  lines.filter((l) => l.level === LogLevel.Warning && re.test(l.message))

describe("Wrong port", () => {
  it.scopedLive(
    "a plain client on the TLS port fails with PlainOnTlsPort: this port expects TLS; logged with the peer",
    () =>
      quiet(Effect.gen(function* () {
        const lines: Array<LogLine> = []
        const daemon = yield* relayLogging(lines)
        const e = failure(yield* Effect.exit(connect({ daemon: tlsAddress(daemon), name: "plain" })))
        expect(e.reason).toBe("PlainOnTlsPort")
        expect(e.message).toContain("this port expects TLS")
        expect(e.message).toContain("\\x15\\x03\\x03") // the TLS alert it got
        const re = /^Refused TLS client 127\.0\.0\.1:\d+: .*this port expects TLS/
        expect(yield* eventually(() => warningsMatching(lines, re).length === 1)).toBe(true)
        expect(daemon.stats().sessions).toBe(0)
      })),
    T,
  )

  it.scopedLive(
    "a TLS client on the plain port fails with TlsOnPlainPort: this port speaks plain Spread, not TLS; logged with the peer",
    () =>
      quiet(Effect.gen(function* () {
        const lines: Array<LogLine> = []
        const daemon = yield* relayLogging(lines)
        const tls = { caCerts: [certs.ca.cert], cert: certs.reader1.cert, key: certs.reader1.key }
        // Deno's TLS, and node:tls (a client certificate with another server name).
        for (const options of [tls, { ...tls, serverName: "localhost" }]) {
          const e = failure(yield* Effect.exit(connect({ daemon: daemon.spreadName, tls: options })))
          expect(e.reason).toBe("TlsOnPlainPort")
          expect(e.message).toContain("this port speaks plain Spread, not TLS")
        }
        const re = new RegExp(
          `^Refused TLS client 127\\.0\\.0\\.1:\\d+ on the plain port ${daemon.port}@127\\.0\\.0\\.1: ` +
            "this port speaks plain Spread, not TLS$",
        )
        expect(yield* eventually(() => warningsMatching(lines, re).length === 2)).toBe(true)
        // Nothing about the ClientHello's bytes read as a connect message.
        expect(lines.filter((l) => /private name length/.test(l.message))).toEqual([])
        expect(daemon.stats().sessions).toBe(0)
        // The port still serves plain clients.
        const ok = yield* connect({ daemon: daemon.spreadName, name: "plain" })
        expect(ok.privateGroup).toBe("#plain#localhost")
      })),
    T,
  )

  it.scopedLive("a refused TLS client is logged with its address, not as unknown", () =>
    quiet(Effect.gen(function* () {
      const lines: Array<LogLine> = []
      const daemon = yield* relayLogging(lines)
      // No client certificate, then one from another authority.
      for (const tls of [{ caCerts: [certs.ca.cert] }, { caCerts: [certs.ca.cert], ...certs.intruder }]) {
        const e = failure(yield* Effect.exit(connect({ daemon: tlsAddress(daemon), tls })))
        expect(e.reason).toBe("TlsCertificateRefused")
      }
      const refused = () => lines.filter((l) => l.message.startsWith("Refused TLS client"))
      expect(yield* eventually(() => refused().length === 2)).toBe(true)
      for (const l of refused()) expect(l.message).toMatch(/^Refused TLS client 127\.0\.0\.1:\d+: TLS handshake failed/)
    })), T)
})
