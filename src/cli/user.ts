/**
 * `user`: the interactive Spread client, after Spread's `spuser`.
 *
 * Three fibers: the input fiber reads commands from standard input and
 * sends; the printer fiber prints every message and membership change as it
 * arrives; the main fiber owns the connection and waits for whichever ends
 * first — `q`, end of input, the daemon closing the connection (the input
 * fiber is interrupted even while blocked on the terminal), or SIGINT /
 * SIGTERM (which interrupt the main fiber). The connection's scope then
 * sends the disconnect and closes the socket.
 *
 * Exit codes: 0 after `q` or end of input; 1 when the connection was lost;
 * 2 for a usage error; 3 when the connection could not be made; 130 after
 * SIGINT and 143 after SIGTERM.
 *
 * @module
 */
import { Console, Effect, Fiber, Ref } from "effect"
import { connect, type Connection } from "../client/mod.ts"
import { type FlagSpec, str, userFlag, withFlags } from "./args.ts"
import { TLS_CLIENT_FLAGS, tlsClientOptions } from "./relay_flags.ts"
import { formatMessage } from "./format.ts"
import { LineReader } from "./lines.ts"
import { clientExitCodes, runTool } from "./run.ts"

const FLAGS: ReadonlyArray<FlagSpec> = [
  {
    names: ["-s", "--spread"],
    kind: "string",
    key: "spread",
    help: "daemon: port, port@host or a socket path (default 4803@127.0.0.1)",
    value: "address",
  },
  userFlag,
  { names: ["-r", "--random"], kind: "bool", key: "random", help: "use a random private name (the default)" },
  ...TLS_CLIENT_FLAGS,
]

const ABOUT = "Interactive Spread client: join and leave groups, send messages, print what arrives.\n" +
  "Exit codes: 0 quit or end of input, 1 connection lost, 2 usage error, 3 cannot connect, 130/143 SIGINT/SIGTERM."

const MENU = `
==========
User Menu:
----------

\tj <group> -- join a group
\tl <group> -- leave a group

\ts <group> [<group> ...] -- send a message
\tm <group> [<group> ...] -- send a multiline message. Terminate with empty line
\tb <group> -- send a burst of messages

\tr -- receive a message (stuck)
\tp -- poll for a message
\te -- enable asynchronous read (default)
\td -- disable asynchronous read

\tq -- quit
`

const encoder = new TextEncoder()
const out = (s: string) => Console.log(s)
const prompt = Effect.sync(() => Deno.stdout.writeSync(encoder.encode("\nUser> ")))
const ask = (s: string) => Effect.sync(() => Deno.stdout.writeSync(encoder.encode(s)))

type Ending = { readonly _tag: "Quit" } | { readonly _tag: "Eof" } | { readonly _tag: "Lost"; readonly why: string }

const session = (conn: Connection, input: LineReader) =>
  Effect.gen(function* () {
    // As spuser: "\n" + separator + message, then the prompt on a line of its own.
    const print = (m: Parameters<typeof formatMessage>[0]) => ask("\n" + formatMessage(m, conn.privateGroup))
    const printerLoop = Effect.forever(Effect.flatMap(conn.receive, (m) => Effect.zipRight(print(m), prompt)))
    const printer = yield* Ref.make(yield* Effect.fork(printerLoop))
    let asyncRead = true
    let total = 0
    const report = (e: { readonly message: string }) => out(`error: ${e.message}`)

    const readBody = (multi: boolean): Effect.Effect<string | undefined> =>
      Effect.gen(function* () {
        yield* ask("enter message: ")
        if (!multi) {
          const line = yield* input.readLine
          return line === undefined ? undefined : line + "\n"
        }
        let body = ""
        while (true) {
          const line = yield* input.readLine
          if (line === undefined) return body.length > 0 ? body : undefined
          if (line === "") return body
          body += line + "\n"
        }
      })

    while (true) {
      yield* prompt
      const line = yield* input.readLine
      if (line === undefined) return { _tag: "Eof" } as Ending
      const [cmd = "", ...args] = line.trim().split(/\s+/)
      switch (cmd) {
        case "":
          break
        case "j":
        case "l": {
          if (args.length !== 1) {
            yield* out(`usage: ${cmd} <group>`)
            break
          }
          yield* (cmd === "j" ? conn.join(args[0]) : conn.leave(args[0])).pipe(
            Effect.catchTag("RequestError", report),
          )
          break
        }
        case "s":
        case "m": {
          if (args.length === 0) {
            yield* out(`usage: ${cmd} <group> [<group> ...]`)
            break
          }
          const body = yield* readBody(cmd === "m")
          if (body === undefined) return { _tag: "Eof" } as Ending
          yield* conn.multicast({ groups: args, data: body, service: "Safe", messType: 1 }).pipe(
            Effect.catchTag("RequestError", report),
          )
          break
        }
        case "b": {
          if (args.length !== 1) {
            yield* out("usage: b <group>")
            break
          }
          yield* ask("enter size of each message: ")
          const sizeLine = yield* input.readLine
          if (sizeLine === undefined) return { _tag: "Eof" } as Ending
          const size = Number(sizeLine.trim())
          if (!Number.isInteger(size) || size < 1 || size > 100000) {
            yield* out(`size must be a whole number from 1 to 100000, not "${sizeLine.trim()}"`)
            break
          }
          yield* out(`sending 10 messages of ${size} bytes`)
          for (let i = 1; i <= 10; i++) {
            total++
            const data = new Uint8Array(size)
            data.set(encoder.encode(`mess num ${total} `).subarray(0, size))
            const sent = yield* conn.multicast({ groups: args[0], data, service: "Fifo", messType: 2 }).pipe(
              Effect.as(true),
              Effect.catchTag("RequestError", (e) => Effect.as(report(e), false)),
            )
            if (!sent) break
            yield* out(`sent message ${i} (total ${total})`)
          }
          break
        }
        case "r": {
          if (asyncRead) {
            yield* out("asynchronous read is on: messages print as they arrive (d turns it off)")
            break
          }
          yield* print(yield* conn.receive)
          break
        }
        case "p": {
          const s = yield* conn.stats
          yield* out(s.inbound === 0 ? "There is no message waiting" : `There are ${s.inbound} messages waiting`)
          break
        }
        case "e": {
          if (!asyncRead) {
            asyncRead = true
            yield* Ref.set(printer, yield* Effect.fork(printerLoop))
          }
          break
        }
        case "d": {
          if (asyncRead) {
            asyncRead = false
            yield* Fiber.interrupt(yield* Ref.get(printer))
          }
          break
        }
        case "q":
          return { _tag: "Quit" } as Ending
        default:
          yield* out(`unknown command "${cmd}"`)
          yield* out(MENU)
      }
    }
  })

const main = (argv: ReadonlyArray<string>): Effect.Effect<number> =>
  withFlags("user", ABOUT, FLAGS, argv, (parsed, fail) =>
    Effect.gen(function* () {
      const address = str(parsed, "spread", "4803@127.0.0.1")
      const tlsFlags = tlsClientOptions(parsed)
      if ("problem" in tlsFlags) return yield* fail(tlsFlags.problem)
      const tls = tlsFlags.tls === undefined ? {} : { tls: tlsFlags.tls }
      const name = parsed.values.has("user") ? str(parsed, "user", "") : undefined
      return yield* Effect.scoped(
        Effect.gen(function* () {
          const conn = yield* connect({ daemon: address, ...(name === undefined ? {} : { name }), ...tls })
          yield* out(`User: connected to ${address} with private group ${conn.privateGroup}`)
          yield* out(MENU)
          const input = new LineReader()
          const lost = Effect.map(conn.awaitClosed, (e): Ending => ({ _tag: "Lost", why: e.message }))
          const ending = yield* Effect.raceFirst(session(conn, input), lost)
          switch (ending._tag) {
            case "Quit":
              yield* out("\nBye.")
              return 0
            case "Eof":
              yield* out("\nBye (end of input).")
              return 0
            case "Lost":
              yield* Console.error(`\nuser: connection lost: ${ending.why}`)
              return 1
          }
        }),
      ).pipe(clientExitCodes("user"))
    }))

if (import.meta.main) runTool(main(Deno.args), { sigint: 130, sigterm: 143 })
