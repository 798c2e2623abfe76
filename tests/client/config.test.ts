import { describe, expect, it } from "@effect/vitest"
import { ConfigError, Duration, Effect, Layer } from "effect"
import { ConnectConfig, layerConfig } from "../../src/client/config/config.ts"
import { fixedWindow, noWindow } from "../../src/client/options.ts"
import { Spread } from "../../src/client/config/spread.ts"
import { envConfig } from "../_helpers/fixtures.ts"
import { startDaemon } from "./_fixtures.ts"

describe("layerConfig", () => {
  it.scopedLive("connects with the daemon, name and window from SPREAD_* settings", () =>
    Effect.gen(function* () {
      const d = yield* startDaemon()
      const spread = yield* Spread.pipe(
        Effect.provide(
          layerConfig().pipe(
            Layer.provide(
              envConfig({ SPREAD_DAEMON: d.spreadName, SPREAD_NAME: "cfg", SPREAD_WINDOW: "fixed:7" }),
            ),
          ),
        ),
      )
      // The layer is released once provided: the connection is closed now.
      expect(spread.privateGroup).toBe("#cfg#localhost")
      expect(spread.address).toBe(d.spreadName)
      expect((yield* spread.stats).window).toEqual(fixedWindow(7))
      expect((yield* spread.state)._tag).toBe("Closed")
    }), 10_000)

  it.effect("ConnectConfig reads every key, and leaves absent ones to connect's defaults", () =>
    Effect.gen(function* () {
      const none = yield* ConnectConfig.pipe(Effect.provide(envConfig({})))
      expect(none).toEqual({})
      const all = yield* ConnectConfig.pipe(Effect.provide(envConfig({
        SPREAD_DAEMON: "4804@example",
        SPREAD_NAME: "svc",
        SPREAD_CONNECT_TIMEOUT: "2 seconds",
        SPREAD_CLOSE_TIMEOUT: "250 millis",
        SPREAD_WINDOW: "off",
        SPREAD_INBOUND_CAPACITY: "64",
        SPREAD_MEMBERSHIP: "false",
      })))
      expect(all.daemon).toBe("4804@example")
      expect(all.name).toBe("svc")
      expect(Duration.toMillis(Duration.decode(all.connectTimeout ?? 0))).toBe(2000)
      expect(Duration.toMillis(Duration.decode(all.closeTimeout ?? 0))).toBe(250)
      expect(all.window).toEqual(noWindow)
      expect(all.inboundCapacity).toBe(64)
      expect(all.membership).toBe(false)
      const adaptive = yield* ConnectConfig.pipe(Effect.provide(envConfig({ SPREAD_WINDOW: "adaptive:200" })))
      expect(adaptive.window).toEqual({ _tag: "Adaptive", budget: 200 })
    }))

  it.effect("ConnectConfig turns TLS on with SPREAD_TLS or any SPREAD_TLS_* key, one CA string per PEM block", () =>
    Effect.gen(function* () {
      const ca1 = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"
      const ca2 = "-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----"
      const cert = "-----BEGIN CERTIFICATE-----\nCCCC\n-----END CERTIFICATE-----\n"
      const key = "-----BEGIN PRIVATE KEY-----\nDDDD\n-----END PRIVATE KEY-----\n"
      expect((yield* ConnectConfig.pipe(Effect.provide(envConfig({ SPREAD_DAEMON: "4803@h" })))).tls).toBeUndefined()
      expect((yield* ConnectConfig.pipe(Effect.provide(envConfig({ SPREAD_TLS: "false" })))).tls).toBeUndefined()
      expect((yield* ConnectConfig.pipe(Effect.provide(envConfig({ SPREAD_TLS: "true" })))).tls).toEqual({})
      const all = yield* ConnectConfig.pipe(Effect.provide(envConfig({
        SPREAD_TLS_CA: `${ca1}\n${ca2}\n`,
        SPREAD_TLS_CERT: cert,
        SPREAD_TLS_KEY: key,
        SPREAD_TLS_SERVER_NAME: "daemon.example",
      })))
      expect(all.tls).toEqual({ caCerts: [ca1, ca2], cert, key, serverName: "daemon.example" })
      const nameOnly = yield* ConnectConfig.pipe(Effect.provide(envConfig({ SPREAD_TLS_SERVER_NAME: "d" })))
      expect(nameOnly.tls).toEqual({ serverName: "d" })
    }))

  it.effect("a malformed setting fails the layer with a ConfigError naming the environment variable (SPREAD_WINDOW)", () =>
    Effect.gen(function* () {
      const bads: ReadonlyArray<Record<string, string>> = [
        { SPREAD_WINDOW: "fixed" },
        { SPREAD_WINDOW: "huge:3" },
        { SPREAD_INBOUND_CAPACITY: "many" },
        { SPREAD_TLS: "maybe" },
      ]
      for (const bad of bads) {
        const e = yield* Effect.flip(Effect.scoped(Layer.build(layerConfig().pipe(Layer.provide(envConfig(bad))))))
        expect(ConfigError.isConfigError(e)).toBe(true)
        expect(String(e)).toContain(Object.keys(bad)[0])
      }
    }))
})
