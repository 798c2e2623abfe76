/**
 * The relay daemon of `bench/relay.ts` in its own process: TLS sessions
 * (client certificates from the CA in DIR) and a UDP ingress into "logs",
 * on free loopback ports, printed as `relay tls <port> udp <port>`. Runs
 * until killed, then prints the ingress totals on stderr.
 *
 * ```sh
 * deno run -A bench/_relay_daemon.ts DIR   # DIR holds ca.pem, server.pem, server.key
 * ```
 *
 * @module
 */
import { Effect, Logger, LogLevel } from "effect"
import * as Daemon from "../src/daemon/mod.ts"

const dir = Deno.args[0]
if (dir === undefined) throw new Error("usage: _relay_daemon.ts DIR")

await Effect.runPromise(
  Effect.scoped(Effect.gen(function* () {
    const daemon = yield* Daemon.make({
      port: 0,
      unixSocket: false,
      tls: {
        port: 0,
        cert: { path: `${dir}/server.pem` },
        key: { path: `${dir}/server.key` },
        ca: { path: `${dir}/ca.pem` },
      },
      udpIngress: [{ port: 0, group: "logs" }],
    })
    console.log(`relay tls ${daemon.tlsPort} udp ${daemon.udpIngress[0].port}`)
    const report = () => console.error(`daemon: ingress ${JSON.stringify(daemon.udpIngress[0].stats())}`)
    Deno.addSignalListener("SIGTERM", () => {
      report()
      Deno.exit(0)
    })
    yield* Effect.never
  })).pipe(Logger.withMinimumLogLevel(LogLevel.Error)),
)
