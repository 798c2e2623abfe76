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
 * Deno's UDP sockets are unstable in Deno 2.9: run with `--unstable-net`
 * (this repository's deno.json turns it on).
 */
import { Console, Effect, Stream } from "effect"
import { connect, isRegular, text } from "../mod.ts"
import * as Daemon from "../src/daemon/mod.ts"
import { makeAuthority } from "../tests/_helpers/certs.ts"

const portArg = Deno.args.indexOf("--port")
const UDP_PORT = portArg >= 0 ? Number(Deno.args[portArg + 1]) : 5140
const keep = Deno.args.includes("--keep")
const LINES = [
  "<134>Dec  2 03:20:00 web-1 nginx[812]: GET /health 200 0.001",
  "<131>Dec  2 03:20:01 web-2 app[1201]: payment service timed out after 3000 ms",
  "<134>Dec  2 03:20:01 web-1 nginx[812]: GET /orders/17 200 0.012",
  "<132>Dec  2 03:20:02 db-1 postgres[77]: checkpoint took 4.2 s",
  "<134>Dec  2 03:20:03 web-2 app[1201]: payment service back",
]

/** Sends the lines with `logger` when it is there, else with a UDP socket of our own. */
const sendLines = (port: number) =>
  Effect.promise(async () => {
    const viaLogger = await new Deno.Command("logger", { args: ["--version"], stdout: "null", stderr: "null" })
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

const program = Effect.scoped(Effect.gen(function* () {
  // Certificates: one authority issues the daemon's and the reader's.
  const ca = yield* Effect.promise(() => makeAuthority("log relay example CA"))
  const server = yield* Effect.promise(() => ca.issue("localhost", { dns: ["localhost"], ips: ["127.0.0.1"] }))
  const reader = yield* Effect.promise(() => ca.issue("tail-1"))

  const daemon = yield* Daemon.make({
    port: 0,
    tls: { port: 0, cert: server.cert, key: server.key, ca: ca.cert },
    udpIngress: [{ port: UDP_PORT, group: "logs" }],
  })
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
  yield* tail.join("logs")
  yield* Effect.sleep(50)
  yield* Console.log(`reader ${tail.privateGroup} joined "logs" over TLS`)

  const printing = tail.messages.pipe(
    Stream.filter(isRegular),
    Stream.take(keep ? Number.POSITIVE_INFINITY : LINES.length),
    Stream.runForEach((m) => Console.log(`  ${m.sender} | ${text(m)}`)),
  )
  const via = yield* sendLines(ingress.port)
  yield* Console.log(`sent ${LINES.length} lines with ${via}${keep ? "; waiting for more (Ctrl-C to stop)" : ""}`)
  yield* printing
  yield* Console.log(`relay totals: ${JSON.stringify(ingress.stats())}`)
}))

Effect.runPromise(program).then(
  () => Deno.exit(0),
  (e) => {
    console.error(e)
    Deno.exit(1)
  },
)
