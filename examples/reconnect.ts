/**
 * Reconnecting: a listener subscribed to "news" survives its daemon going
 * away. The daemon stops; a new one starts on the same port; the listener's
 * connection reconnects on its schedule, joins "news" again, and the same
 * subscription goes on — with a discontinuity mark where messages may have
 * been lost (Spread replays nothing).
 *
 * Run: `deno run --allow-net --allow-read --allow-write --allow-env examples/reconnect.ts`
 *
 * @module
 */
import { Console, Deferred, Effect, Exit, Fiber, Option, Scope, Stream } from "effect"
import {
  connect,
  type Connection,
  type ConnectionEvent,
  isDiscontinuity,
  isRegular,
  reconnectBackoff,
  type ServerMessage,
  text,
} from "../mod.ts"
import * as Daemon from "../src/daemon/mod.ts"

const NEWS = "news"

/** What the listener's screen shows for a message (membership messages show nothing). */
const line = (m: ServerMessage): Option.Option<string> =>
  isDiscontinuity(m)
    ? Option.some(`-- gap: reconnected as ${m.privateGroup}, rejoined ${m.rejoined.join(", ")}; news may be missing --`)
    : isRegular(m)
    ? Option.some(`news: ${text(m)}`)
    : Option.none()

const event = (e: ConnectionEvent): Option.Option<string> => {
  switch (e._tag) {
    case "Disconnected":
      return Option.some(`event: disconnected (${e.error.reason})`)
    case "Reconnected":
      return Option.some(`event: reconnected after ${e.attempts} attempt(s), rejoined ${e.rejoined.join(", ")}`)
    default:
      return Option.none()
  }
}

/** Waits until `listener` is in the view of "news". */
const inNews = (listener: Connection) =>
  listener.watch(NEWS).pipe(
    Stream.filter((v) => Option.isSome(v) && v.value.members.includes(listener.privateGroup)),
    Stream.take(1),
    Stream.runDrain,
  )

/** Starts a daemon on `port` (0: a free one) in a scope of its own, to stop it at will. */
const daemonOn = (port: number) =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const daemon = yield* Daemon.make({ port, unixSocket: false }).pipe(Scope.extend(scope), Effect.orDie)
    return { daemon, stop: Scope.close(scope, Exit.void) }
  })

/** Publishes one item from a short-lived connection. */
const publish = (daemon: string, item: string) =>
  Effect.scoped(Effect.flatMap(connect({ daemon }), (p) => p.multicast({ groups: NEWS, data: item })))

/**
 * The run: answers the lines the listener showed, events included, in order.
 *
 * @since 0.2.0
 */
export const main: Effect.Effect<ReadonlyArray<string>> = Effect.scoped(Effect.gen(function* () {
  const first = yield* daemonOn(0)
  const address = first.daemon.spreadName
  const listener = yield* connect({
    daemon: address,
    name: "listener",
    // Retry after 20 ms, doubling up to 200 ms apart; give up after 50 retries.
    reconnect: reconnectBackoff({ delay: "20 millis", maxDelay: "200 millis", attempts: 50 }),
  }).pipe(Effect.orDie)
  const shown: Array<string> = []
  const show = (s: Option.Option<string>): Effect.Effect<void> =>
    Option.match(s, {
      onNone: () => Effect.void,
      onSome: (l) => Effect.zipRight(Console.log(l), Effect.sync(() => shown.push(l))),
    })
  const back = yield* Deferred.make<void>()
  yield* Effect.fork(Stream.runForEach(listener.events, (e) =>
    Effect.zipRight(
      show(event(e)),
      e._tag === "Reconnected" ? Deferred.succeed(back, undefined) : Effect.void,
    )))
  const screen = yield* Effect.fork(
    listener.subscribe(NEWS).pipe(
      Stream.tap((m) => show(line(m))),
      Stream.takeUntil((m) => isRegular(m) && text(m) === "the daemon is back"),
      Stream.runDrain,
    ),
  )
  yield* inNews(listener).pipe(Effect.orDie)
  yield* publish(address, "all quiet").pipe(Effect.orDie)

  // The daemon goes away, and a new one starts on the same port.
  yield* Effect.sleep("100 millis")
  yield* first.stop
  const second = yield* daemonOn(first.daemon.port)
  // Back, and a member of "news" again on the new daemon.
  yield* Deferred.await(back)
  yield* inNews(listener).pipe(Effect.orDie)
  yield* publish(address, "the daemon is back").pipe(Effect.orDie)
  yield* Fiber.join(screen).pipe(Effect.orDie)
  yield* second.stop
  return shown
}))

if (import.meta.main) Effect.runPromise(main)
