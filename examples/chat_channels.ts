/**
 * The chat room of chat.ts on typed channels: lines (who, text, when) on the
 * channel `chat.line` and presence on `chat.presence`, both over one Spread
 * group. Each user's screen subscribes to the lines only, with the
 * decode-failure policy `"skip"` (a line some old client sent in a shape
 * the schema refuses is dropped and counted, the screen goes on). Everyone
 * says hello; every screen shows all three greetings in the same order,
 * and the one malformed line is counted, not shown.
 *
 * Run: `deno run --allow-net --allow-read --allow-write --allow-env examples/chat_channels.ts`
 *
 * @module
 */
import { Console, Effect, Fiber, Option, Schema, Stream } from "effect"
import { connect, type Connection, defineChannel, encodeEnvelope, openChannel } from "../mod.ts"
import * as Daemon from "../src/daemon/mod.ts"

const Line = defineChannel({
  name: "chat.line",
  group: "chat",
  schema: Schema.Struct({ from: Schema.String, text: Schema.NonEmptyString, at: Schema.Date }),
})
const Presence = defineChannel({
  name: "chat.presence",
  group: "chat",
  schema: Schema.Struct({ who: Schema.String, here: Schema.Boolean }),
})

/** One screen: `greetings` lines of the room; answers them and how many it skipped. */
const screen = (who: string, user: Connection, greetings: number) => {
  const lines = openChannel(user, Line)
  return lines.subscribe({ onDecodeError: "skip" }).pipe(
    Stream.tap((l) => Console.log(`${who} sees ${l.from}: ${l.text}`)),
    Stream.map((l) => `${l.from}: ${l.text}`),
    Stream.take(greetings),
    Stream.runCollect,
    Effect.zip(lines.decodeFailures),
  )
}

/**
 * The room: answers what each screen showed, and how many lines it skipped.
 *
 * @since 0.3.0
 */
export const main: Effect.Effect<Record<string, { readonly shown: ReadonlyArray<string>; readonly skipped: number }>> =
  Effect.scoped(Effect.gen(function* () {
    const daemon = yield* Daemon.make({ port: 0, unixSocket: false })
    const names = ["alice", "bob", "carol"]
    const users = yield* Effect.forEach(names, (name) => connect({ daemon: daemon.spreadName, name }))
    const screens = yield* Effect.forEach(users, (u, i) => Effect.fork(screen(names[i], u, names.length)))
    // Everyone is in the room before anyone speaks.
    yield* users[0].watch("chat").pipe(
      Stream.filter((v) => Option.isSome(v) && v.value.members.length === names.length),
      Stream.take(1),
      Stream.runDrain,
    )
    // An old client's line: the right channel, a shape the schema refuses.
    const malformed = encodeEnvelope({
      kind: "Message",
      idHigh: 0,
      idLow: 0,
      replyTo: "",
      headers: { channel: "chat.line" },
      body: new TextEncoder().encode('{"from":"mallory","text":""}'),
    })
    if (malformed !== undefined) yield* users[0].multicast({ groups: "chat", data: malformed })
    yield* Effect.forEach(users, (u, i) =>
      Effect.zipRight(
        openChannel(u, Presence).publish({ who: names[i], here: true }),
        openChannel(u, Line).publish({ from: names[i], text: `hello from ${names[i]}`, at: new Date() }),
      ))
    const shown: Record<string, { readonly shown: ReadonlyArray<string>; readonly skipped: number }> = {}
    for (const [i, f] of screens.entries()) {
      const [lines, skipped] = yield* Fiber.join(f)
      shown[names[i]] = { shown: [...lines], skipped }
    }
    return shown
  })).pipe(Effect.orDie)

if (import.meta.main) Effect.runPromise(main)
