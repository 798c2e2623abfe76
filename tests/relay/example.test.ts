/**
 * examples/log_relay.ts runs end to end: five syslog lines over UDP reach
 * its TLS reader, in order, from the ingress's private name.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Logger, LogLevel } from "effect"
import { main } from "../../examples/log_relay.ts"

describe("examples/log_relay.ts", () => {
  it.live("relays its five lines to the TLS reader in order", () =>
    Effect.gen(function* () {
      const printed = yield* main({ udpPort: 0, useLogger: false }).pipe(
        Effect.timeout("15 seconds"),
        Effect.provide(Logger.minimumLogLevel(LogLevel.None)),
      )
      expect(printed.length).toBe(5)
      const [sender] = printed[0].split(" | ")
      expect(sender).toMatch(/^#udp-\d+#localhost$/)
      expect(printed.map((l) => l.split(" | ")[1])).toEqual([
        "<134>Dec  2 03:20:00 web-1 nginx[812]: GET /health 200 0.001",
        "<131>Dec  2 03:20:01 web-2 app[1201]: payment service timed out after 3000 ms",
        "<134>Dec  2 03:20:01 web-1 nginx[812]: GET /orders/17 200 0.012",
        "<132>Dec  2 03:20:02 db-1 postgres[77]: checkpoint took 4.2 s",
        "<134>Dec  2 03:20:03 web-2 app[1201]: payment service back",
      ])
    }), 20_000)
})
