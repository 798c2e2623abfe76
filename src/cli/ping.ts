/**
 * `ping`: round-trip latency through a daemon. Sends one message, waits for
 * it to come back, and repeats; prints min, p50, p99 and max. By default the
 * message is self-delivered (the sender is a member of the group); with
 * `--peer` a second connection echoes it back.
 *
 * Exit codes: 0 done, 1 connection lost, 2 usage error, 3 cannot connect,
 * 130/143 SIGINT/SIGTERM.
 *
 * @module
 */
import { Console, Effect, Option, Stream } from "effect"
import { connect, type Connection, type ConnectionError } from "../client/mod.ts"
import { MAX_MESSAGE_PAYLOAD } from "../protocol/constants.ts"
import { bool, type FlagSpec, int, str, withFlags } from "./args.ts"
import { TLS_CLIENT_FLAGS, tlsClientOptions } from "./relay_flags.ts"
import { clientExitCodes, runTool } from "./run.ts"

const FLAGS: ReadonlyArray<FlagSpec> = [
  {
    names: ["-s", "--spread"],
    kind: "string",
    key: "spread",
    help: "daemon: port, port@host or a socket path (default 4803@127.0.0.1)",
    value: "address",
  },
  {
    names: ["-c", "--count"],
    kind: "int",
    key: "count",
    min: 1,
    help: "round trips to time (default 1000)",
    value: "n",
  },
  {
    names: ["-b", "--bytes"],
    kind: "int",
    key: "bytes",
    max: MAX_MESSAGE_PAYLOAD - 32,
    help: "bytes per message (default 64)",
    value: "n",
  },
  {
    names: ["-w", "--warmup"],
    kind: "int",
    key: "warmup",
    help: "untimed round trips first (default 1000)",
    value: "n",
  },
  {
    names: ["--peer"],
    kind: "bool",
    key: "peer",
    help: "a second connection echoes each message (default: self-delivery)",
  },
  ...TLS_CLIENT_FLAGS,
]

const ABOUT = "Round-trip latency of a message through a Spread daemon: min, p50, p99 and max.\n" +
  "Exit codes: 0 done, 1 connection lost, 2 usage error, 3 cannot connect, 130/143 SIGINT/SIGTERM."

/**
 * The value at quantile `q` (0..1) of sorted `xs`, nearest-rank.
 *
 * @since 0.1.0
 * @category statistics
 */
export const quantile = (xs: ReadonlyArray<number>, q: number): number =>
  xs.length === 0 ? NaN : xs[Math.min(xs.length - 1, Math.max(0, Math.ceil(q * xs.length) - 1))]

const waitMembers = (conn: Connection, group: string, n: number) =>
  conn.watch(group).pipe(
    Stream.filter((v) => Option.isSome(v) && v.value.members.length >= n),
    Stream.take(1),
    Stream.runDrain,
  )

// The next data message of `group` (membership messages are skipped).
const nextData = (conn: Connection, group: string) =>
  Effect.repeat(conn.receive, { until: (m) => m._tag === "Regular" && m.groups[0] === group })

const main = (argv: ReadonlyArray<string>): Effect.Effect<number> =>
  withFlags("ping", ABOUT, FLAGS, argv, (parsed, fail) =>
    Effect.gen(function* () {
      const tlsFlags = tlsClientOptions(parsed)
      if ("problem" in tlsFlags) return yield* fail(tlsFlags.problem)
      const tls = tlsFlags.tls === undefined ? {} : { tls: tlsFlags.tls }
      const count = int(parsed, "count", 1000)
      const size = int(parsed, "bytes", 64)
      const warmup = int(parsed, "warmup", 1000)
      const peer = bool(parsed, "peer")
      const address = str(parsed, "spread", "4803@127.0.0.1")

      return yield* Effect.scoped(Effect.gen(function* () {
        const conn = yield* connect({ daemon: address, ...tls })
        const group = `ping-${conn.privateName}`
        const reply = `pong-${conn.privateName}`
        yield* conn.join(peer ? reply : group)
        // With a peer, a round trip also ends (with its error) if the echo dies.
        let echoLost: Effect.Effect<never, ConnectionError> = Effect.never
        if (peer) {
          const echo = yield* connect({ daemon: address, ...tls })
          echoLost = Effect.flatMap(echo.awaitClosed, Effect.fail)
          yield* echo.join(group)
          yield* waitMembers(echo, group, 1)
          yield* Effect.forkScoped(Effect.forever(
            Effect.flatMap(nextData(echo, group), (m) =>
              m._tag === "Regular" ? echo.multicast({ groups: reply, data: m.data, service: "Agreed" }) : Effect.void),
          ))
        }
        yield* waitMembers(conn, peer ? reply : group, 1)
        const data = new Uint8Array(size)
        const inbox = peer ? reply : group
        const roundTrip = Effect.zipRight(
          conn.multicast({ groups: group, data, service: "Agreed" }),
          nextData(conn, inbox),
        )
        const once = peer ? Effect.raceFirst(roundTrip, echoLost) : roundTrip
        for (let i = 0; i < warmup; i++) {
          yield* once
        }
        const rtts = new Array<number>(count)
        for (let i = 0; i < count; i++) {
          const t0 = performance.now()
          yield* once
          rtts[i] = (performance.now() - t0) * 1000
        }
        rtts.sort((a, b) =>
          a - b
        )
        const f = (us: number) => `${us.toFixed(0)} µs`
        yield* Console.log(
          `ping: ${count} round trips of ${size} bytes via ${address} (${
            peer ? "echoed by a peer" : "self-delivered"
          }): ` +
            `min ${f(rtts[0])}, p50 ${f(quantile(rtts, 0.5))}, p99 ${f(quantile(rtts, 0.99))}, max ${
              f(rtts[count - 1])
            }`,
        )
        return 0
      })).pipe(clientExitCodes("ping"))
    }))

if (import.meta.main) runTool(main(Deno.args), { sigint: 130, sigterm: 143 })
