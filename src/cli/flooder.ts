/**
 * `flooder`: the `spflooder` workload. Joins the group `flooder` (unless
 * write-only), waits for the expected number of members, multicasts `-m`
 * messages of `-b` bytes (unless read-only) through the flow window, and
 * reads until every expected message came back. Prints progress lines on
 * long runs and a final line with messages, bytes, seconds, msgs/s and MB/s.
 *
 * Exit codes: 0 done, 1 connection lost, 2 usage error, 3 cannot connect,
 * 130/143 SIGINT/SIGTERM.
 *
 * @module
 */
import { Chunk, Console, Effect, Option, Stream } from "effect"
import { connect, fixedWindow, type OutgoingMessage } from "../client/mod.ts"
import { MAX_MESSAGE_PAYLOAD } from "../protocol/constants.ts"
import { bool, type FlagSpec, int, str, userFlag, withFlags } from "./args.ts"
import { TLS_CLIENT_FLAGS, tlsClientOptions } from "./relay_flags.ts"
import { clientExitCodes, runTool } from "./run.ts"

const FLAGS: ReadonlyArray<FlagSpec> = [
  userFlag,
  { names: ["-m", "--messages"], kind: "int", key: "m", help: "messages to send (default 10000)", value: "n" },
  {
    names: ["-n", "--members"],
    kind: "int",
    key: "n",
    min: 1,
    help: "members to wait for before starting (default 1)",
    value: "n",
  },
  {
    names: ["-b", "--bytes"],
    kind: "int",
    key: "b",
    max: MAX_MESSAGE_PAYLOAD - 32,
    help: "bytes per message (default 1000)",
    value: "n",
  },
  {
    names: ["-s", "--spread"],
    kind: "string",
    key: "spread",
    help: "daemon: port, port@host or a socket path (default 4803@127.0.0.1)",
    value: "address",
  },
  { names: ["-ro", "--read-only"], kind: "bool", key: "ro", help: "only receive" },
  { names: ["-wo", "--write-only"], kind: "bool", key: "wo", help: "only send (no membership)" },
  {
    names: ["--senders"],
    kind: "int",
    key: "senders",
    min: 1,
    help: "senders in the run: a reader expects senders × m messages (default 1)",
    value: "n",
  },
  {
    names: ["--window"],
    kind: "int",
    key: "window",
    min: 1,
    help: "fixed flow window in messages (default: adaptive, 500 / members)",
    value: "n",
  },
  { names: ["-q", "--quiet"], kind: "bool", key: "quiet", help: "no progress lines" },
  ...TLS_CLIENT_FLAGS,
]

const ABOUT = "The spflooder workload: one or more senders flood the group 'flooder', every member reads it back.\n" +
  "Exit codes: 0 done, 1 connection lost, 2 usage error, 3 cannot connect, 130/143 SIGINT/SIGTERM."

const GROUP = "flooder"

const main = (argv: ReadonlyArray<string>): Effect.Effect<number> =>
  withFlags("flooder", ABOUT, FLAGS, argv, (parsed, fail) =>
    Effect.gen(function* () {
      const m = int(parsed, "m", 10000)
      const size = int(parsed, "b", 1000)
      const members = int(parsed, "n", 1)
      const senders = int(parsed, "senders", 1)
      const ro = bool(parsed, "ro")
      const wo = bool(parsed, "wo")
      const quiet = bool(parsed, "quiet")
      const address = str(parsed, "spread", "4803@127.0.0.1")
      if (ro && wo) return yield* fail("-ro and -wo exclude each other")
      const tlsFlags = tlsClientOptions(parsed)
      if ("problem" in tlsFlags) return yield* fail(tlsFlags.problem)
      const tls = tlsFlags.tls === undefined ? {} : { tls: tlsFlags.tls }
      const window = parsed.values.has("window") ? fixedWindow(int(parsed, "window", 1)) : undefined

      return yield* Effect.scoped(Effect.gen(function* () {
        const conn = yield* connect({
          daemon: address,
          membership: !wo,
          ...(parsed.values.has("user") ? { name: str(parsed, "user", "") } : {}),
          ...(window === undefined ? {} : { window }),
          ...tls,
        })
        yield* Console.log(`flooder: connecting to ${address} with${wo ? "out" : ""} group membership`)
        if (ro) yield* Console.log("flooder: Only receiving messages")
        if (!wo) {
          yield* conn.join(GROUP)
          // Wait until the group has the expected members.
          yield* conn.watch(GROUP).pipe(
            Stream.filter((v) => Option.isSome(v) && v.value.members.length >= members),
            Stream.take(1),
            Stream.runDrain,
          )
        }
        const expected = wo ? 0 : m * senders
        let received = 0
        let receivedBytes = 0
        let sent = 0
        const start = performance.now()
        const reader = Effect.gen(function* () {
          while (received < expected) {
            const chunk = yield* conn.receiveChunk()
            for (const msg of Chunk.toReadonlyArray(chunk)) {
              if (msg._tag === "Regular") {
                received++
                receivedBytes += msg.data.length
              }
            }
          }
        })
        const writer = Effect.gen(function* () {
          if (ro) return
          yield* Console.log(`flooder: starting  multicast of ${m} messages, ${size} bytes each.`)
          const payload = new Uint8Array(size)
          const msg: OutgoingMessage = { groups: GROUP, data: payload, service: "Fifo" }
          const batch = 64
          while (sent < m) {
            const n = Math.min(batch, m - sent)
            yield* conn.multicastMany(Array.from({ length: n }, () => msg))
            sent += n
          }
        })
        const progress = Effect.forever(
          Effect.zipRight(
            Effect.sleep(2000),
            Effect.suspend(() =>
              Console.error(
                `flooder: ${((performance.now() - start) / 1000).toFixed(1)} s: sent ${sent}/${
                  ro ? 0 : m
                }, received ${received}/${expected}`,
              )
            ),
          ),
        )
        yield* Effect.all([writer, reader], { concurrency: 2, discard: true }).pipe(
          quiet ? (x) => x : Effect.raceFirst(progress),
        )
        const seconds = (performance.now() - start) / 1000
        if (!ro) yield* Console.log(`flooder: completed multicast of ${m} messages, ${size} bytes each.`)
        const count = wo ? sent : received
        const bytes = wo ? sent * size : receivedBytes
        yield* Console.log(
          `flooder: ${wo ? "sent" : "received"} ${count} messages, ${bytes} bytes in ${seconds.toFixed(3)} s: ${
            Math.round(count / seconds)
          } msgs/s, ${(bytes / seconds / 1e6).toFixed(2)} MB/s`,
        )
        return 0
      })).pipe(clientExitCodes("flooder"))
    }))

if (import.meta.main) runTool(main(Deno.args), { sigint: 130, sigterm: 143 })
