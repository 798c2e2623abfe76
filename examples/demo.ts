/**
 * The main job: an embedded daemon and two clients. Alice and Bob join a
 * group, see each other's membership changes, exchange messages, Bob
 * leaves, and Alice sees him go. Exits 0.
 *
 * Run: `npm run demo` (or `deno task demo`).
 */
import { Console, Effect, Option, Stream } from "effect"
import { connect, type Connection, type ServerMessage } from "../mod.ts"
import * as Daemon from "../src/daemon/mod.ts"

const GROUP = "chat"
const text = new TextDecoder()

const describe = (m: ServerMessage): string => {
  switch (m._tag) {
    case "Regular":
      return `${m.service} message from ${m.sender}: "${text.decode(m.data)}"`
    case "Membership":
      return `view of ${m.group} #${m.groupId.index}: [${m.members.join(", ")}] (${m.cause} of ${m.changed ?? "?"})`
    case "SelfLeave":
      return `left ${m.group}`
    case "Transitional":
      return `transitional view of ${m.group}`
    case "Reject":
      return `rejected: ${text.decode(m.data)}`
  }
}

/** Prints `who`'s messages until one satisfies `done`. */
const until = (who: string, conn: Connection, done: (m: ServerMessage) => boolean) =>
  conn.messages.pipe(
    Stream.tap((m) => Console.log(`  ${who.padEnd(5)} <- ${describe(m)}`)),
    Stream.takeUntil(done),
    Stream.runDrain,
  )

const program = Effect.scoped(Effect.gen(function* () {
  const daemon = yield* Daemon.make({ port: 0 })
  yield* Console.log(`embedded daemon "${daemon.name}" listening on ${daemon.spreadName}`)

  const alice = yield* connect({ daemon: daemon.spreadName, name: "alice" })
  const bob = yield* connect({ daemon: daemon.spreadName, name: "bob" })
  yield* Console.log(`connected ${alice.privateGroup} and ${bob.privateGroup}`)

  yield* alice.join(GROUP)
  yield* until("alice", alice, (m) => m._tag === "Membership" && m.members.length === 1)
  yield* bob.join(GROUP)
  yield* Effect.all([
    until("alice", alice, (m) => m._tag === "Membership" && m.members.length === 2),
    until("bob", bob, (m) => m._tag === "Membership" && m.members.length === 2),
  ], { concurrency: 2 })

  yield* alice.multicast({ groups: GROUP, data: "hello, bob", service: "Agreed" })
  yield* Effect.all([
    until("alice", alice, (m) => m._tag === "Regular"),
    until("bob", bob, (m) => m._tag === "Regular"),
  ], { concurrency: 2 })
  yield* bob.multicast({ groups: alice.privateGroup, data: "hi alice (just you)", service: "Fifo" })
  yield* until("alice", alice, (m) => m._tag === "Regular")

  yield* bob.leave(GROUP)
  yield* Effect.all([
    until("bob", bob, (m) => m._tag === "SelfLeave"),
    until("alice", alice, (m) => m._tag === "Membership" && m.cause === "Leave"),
  ], { concurrency: 2 })

  const view = yield* alice.view(GROUP)
  yield* Console.log(
    `alice's view of ${GROUP} now: [${Option.match(view, { onNone: () => "", onSome: (v) => v.members.join(", ") })}]`,
  )
  yield* Console.log("done: the scope closes both connections and the daemon")
}))

Effect.runPromise(program.pipe(Effect.timeout("10 seconds"))).then(
  () => Deno.exit(0),
  (e) => {
    console.error(e)
    Deno.exit(1)
  },
)
