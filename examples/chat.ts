/**
 * A chat room over `subscribe`: an embedded daemon and three users. Each
 * user's screen is a subscription to "chat"; Alice also keeps an archive —
 * a second subscription on the same connection, which gets every message
 * too (a broadcast, unlike `messages`, which is a work queue). Everyone
 * says hello; every screen shows all three greetings in the same order.
 *
 * Run: `deno run --allow-net --allow-read --allow-write --allow-env examples/chat.ts`
 *
 * @module
 */
import { Console, Effect, Fiber, Option, Stream } from "effect"
import { connect, type Connection, isMembership, isRegular, type ServerMessage, text } from "../mod.ts"
import * as Daemon from "../src/daemon/mod.ts"

const ROOM = "chat"

const line = (who: string, m: ServerMessage): string =>
  isRegular(m)
    ? `${who} sees ${m.sender}: ${text(m)}`
    : isMembership(m)
    ? `${who} sees ${m.changed ?? "someone"} ${m.cause === "Join" ? "join" : "leave"} (${m.members.length} here)`
    : `${who} sees ${m._tag}`

/** One screen: the room's messages until `greetings` greetings were shown; answers the greetings. */
const screen = (who: string, user: Connection, greetings: number) =>
  user.subscribe(ROOM).pipe(
    Stream.tap((m) => Console.log(line(who, m))),
    Stream.filter(isRegular),
    Stream.map((m) => `${m.sender}: ${text(m)}`),
    Stream.take(greetings),
    Stream.runCollect,
    Effect.map((c) => Array.from(c)),
  )

/** Waits until `user` sees `n` members in the room. */
const members = (user: Connection, n: number) =>
  user.watch(ROOM).pipe(
    Stream.filter((v) => Option.isSome(v) && v.value.members.length === n),
    Stream.take(1),
    Stream.runDrain,
  )

/**
 * The chat: answers what each screen (and Alice's archive) showed, by name.
 *
 * @since 0.2.0
 */
export const main: Effect.Effect<Record<string, ReadonlyArray<string>>> = Effect.scoped(Effect.gen(function* () {
  const daemon = yield* Daemon.make({ port: 0, unixSocket: false }).pipe(Effect.orDie)
  const names = ["alice", "bob", "carol"] as const
  const users = yield* Effect.forEach(names, (name) => connect({ daemon: daemon.spreadName, name })).pipe(Effect.orDie)
  const [alice] = users
  // Start every screen (each joins the room; Alice's archive shares her membership).
  const screens = yield* Effect.forEach(users, (u, i) => Effect.fork(screen(names[i], u, names.length)))
  const archive = yield* Effect.fork(screen("alice's archive", alice, names.length))
  yield* Effect.forEach(users, (u) => members(u, names.length)).pipe(Effect.orDie)
  yield* Effect.forEach(users, (u, i) => u.multicast({ groups: ROOM, data: `hello from ${names[i]}` })).pipe(
    Effect.orDie,
  )
  const shown = yield* Effect.forEach([...screens, archive], Fiber.join).pipe(Effect.orDie)
  return {
    alice: shown[0],
    bob: shown[1],
    carol: shown[2],
    "alice's archive": shown[3],
  }
}))

if (import.meta.main) Effect.runPromise(main)
