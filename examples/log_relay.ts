/**
 * The fan-out relay, end to end: syslog-style lines arrive as UDP
 * datagrams on port 5140, the embedded daemon multicasts each into the
 * group "logs", and a TLS reader (with a client certificate the daemon
 * checks) prints them in order.
 *
 * Everything runs in this process with throwaway certificates made at
 * start-up (WebCrypto; nothing written to disk). The lines come from
 * `logger` (util-linux) when it is installed, else from a few lines of
 * Deno. With `--keep` it keeps printing until Ctrl-C, so you can send your
 * own: `logger -d -n 127.0.0.1 -P 5140 "hello relay"`.
 *
 * ```sh
 * deno run -A examples/log_relay.ts            # five lines, then exit 0
 * deno run -A examples/log_relay.ts --keep     # and wait for more
 * deno run -A examples/log_relay.ts --port 5141
 * ```
 *
 * `main` is the whole run as an Effect that answers the lines it printed
 * (tests/relay/example.test.ts runs it).
 *
 * Deno's UDP sockets are unstable in Deno 2.9: run with `--unstable-net`
 * (this repository's deno.json turns it on).
 */
import { Console, Effect, Stream } from "effect"
import { connect, isRegular, text } from "../mod.ts"
import * as Daemon from "../src/daemon/mod.ts"
import { makeAuthority } from "../tests/_helpers/certs.ts"

const LINES = [
  "<134>Dec  2 03:20:00 web-1 nginx[812]: GET /health 200 0.001",
  "<131>Dec  2 03:20:01 web-2 app[1201]: payment service timed out after 3000 ms",
  "<134>Dec  2 03:20:01 web-1 nginx[812]: GET /orders/17 200 0.012",
  "<132>Dec  2 03:20:02 db-1 postgres[77]: checkpoint took 4.2 s",
  "<134>Dec  2 03:20:03 web-2 app[1201]: payment service back",
]

/** How to run the example. */
export interface Options {
  /** The UDP port of the ingress (0 picks a free one). Default 5140. */
  readonly udpPort?: number
  /** Keep printing lines until interrupted. Default false. */
  readonly keep?: boolean
  /** Send with `logger` when it is installed. Default true. */
  readonly useLogger?: boolean
}

/** Sends the lines with `logger` when asked and it is there, else with a UDP socket of our own. */
const sendLines = (port: number, useLogger: boolean) =>
  Effect.promise(async () => {
    const viaLogger = useLogger &&
      await new Deno.Command("logger", { args: ["--version"], stdout: "null", stderr: "null" })
        .output().then((o) => o.success, () => false)
    if (viaLogger) {
      for (const line of LINES) {
        // -d UDP, --rfc3164 the classic one-line format, -t the tag.
        const msg = line.replace(/^<\d+>\S+\s+\d+\s+\S+\s+\S+\s+/, "")
        await new Deno.Command("logger", {
          args: ["-d", "-n", "127.0.0.1", "-P", String(port), "--rfc3164", "-t", "relay-example", msg],
        }).output()
      }
      return "logger"
    }
    const socket = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 })
    for (const line of LINES) {
      await socket.send(new TextEncoder().encode(line), { transport: "udp", hostname: "127.0.0.1", port })
    }
    socket.close()
    return "a Deno UDP socket"
  })

/**
 * The relay end to end; answers the lines the TLS reader printed (each as
 * `sender | line`).
 */
export const main = (options: Options = {}): Effect.Effect<ReadonlyArray<string>> =>
  Effect.scoped(
    Effect.gen(function* () {
      const keep = options.keep ?? false
      // Certificates: one authority issues the daemon's and the reader's.
      const ca = yield* Effect.promise(() => makeAuthority("log relay example CA"))
      const server = yield* Effect.promise(() => ca.issue("localhost", { dns: ["localhost"], ips: ["127.0.0.1"] }))
      const reader = yield* Effect.promise(() => ca.issue("tail-1"))

      const daemon = yield* Daemon.make({
        port: 0,
        unixSocket: false,
        tls: { port: 0, cert: server.cert, key: server.key, ca: ca.cert },
        udpIngress: [{ port: options.udpPort ?? 5140, group: "logs" }],
      }).pipe(Effect.orDie)
      const ingress = daemon.udpIngress[0]
      yield* Console.log(
        `relay: UDP ${ingress.host}:${ingress.port} -> group "logs" (sender ${ingress.privateGroup}); ` +
          `TLS sessions on ${daemon.tlsPort}@127.0.0.1, client certificates required`,
      )

      const tail = yield* connect({
        daemon: `${daemon.tlsPort}@127.0.0.1`,
        name: "tail",
        tls: { caCerts: [ca.cert], cert: reader.cert, key: reader.key },
      })
      yield* tail.join("logs", { confirmed: true })
      yield* Console.log(`reader ${tail.privateGroup} joined "logs" over TLS`)

      const printed: Array<string> = []
      const printing = tail.messages.pipe(
        Stream.filter(isRegular),
        Stream.take(keep ? Number.POSITIVE_INFINITY : LINES.length),
        Stream.map((m) => `${m.sender} | ${text(m)}`),
        Stream.runForEach((line) => Effect.zipRight(Effect.sync(() => printed.push(line)), Console.log(`  ${line}`))),
      )
      const via = yield* sendLines(ingress.port, options.useLogger ?? true)
      yield* Console.log(`sent ${LINES.length} lines with ${via}${keep ? "; waiting for more (Ctrl-C to stop)" : ""}`)
      yield* printing
      yield* Console.log(`relay totals: ${JSON.stringify(ingress.stats())}`)
      return printed
    }).pipe(Effect.orDie),
  )

if (import.meta.main) {
  const port = Deno.args.indexOf("--port")
  Effect.runPromise(main({
    udpPort: port >= 0 ? Number(Deno.args[port + 1]) : 5140,
    keep: Deno.args.includes("--keep"),
  })).then(
    () => Deno.exit(0),
    (e) => {
      console.error(e)
      Deno.exit(1)
    },
  )
}
