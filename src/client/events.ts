/**
 * Health events of a connection, for any number of subscribers.
 *
 * @module
 */
import { Deferred, Effect, PubSub, Stream } from "effect"
import type { ConnectionError } from "./errors.ts"

/**
 * Events about a connection's health, published to `events` subscribers.
 *
 * - `SlowConsumer`: the inbound buffer (or, with `group`, the buffer of one
 *   `subscribe` stream of that group) reached the slow-consumer mark; the
 *   connection will soon stop reading, and a daemon may then cut it off.
 * - `ConsumerCaughtUp`: the buffer went back below a quarter.
 * - `Terminated`: the connection failed or was closed, with its sticky error.
 *
 * @since 0.1.0
 * @category models
 */
export type ConnectionEvent =
  | {
    readonly _tag: "SlowConsumer"
    readonly buffered: number
    readonly capacity: number
    /** The group of the `subscribe` buffer concerned; absent for the shared `messages` buffer. */
    readonly group?: string
  }
  | {
    readonly _tag: "ConsumerCaughtUp"
    readonly buffered: number
    readonly capacity: number
    /** The group of the `subscribe` buffer concerned; absent for the shared `messages` buffer. */
    readonly group?: string
  }
  | { readonly _tag: "Terminated"; readonly error: ConnectionError }

/** Most events kept for a subscriber that lags; older ones are dropped (sliding). */
const EVENT_BUFFER = 64

/**
 * The event hub of one connection: a sliding `PubSub` per subscriber, and
 * the sticky error that ends every subscription with one `Terminated` event.
 *
 * @since 0.2.0
 * @category models
 */
export class Events {
  readonly #hub: PubSub.PubSub<ConnectionEvent>
  readonly #terminated: Deferred.Deferred<ConnectionError>

  private constructor(hub: PubSub.PubSub<ConnectionEvent>, terminated: Deferred.Deferred<ConnectionError>) {
    this.#hub = hub
    this.#terminated = terminated
  }

  /** An event hub that ends when `terminated` completes. */
  static make(terminated: Deferred.Deferred<ConnectionError>): Effect.Effect<Events> {
    return Effect.map(PubSub.sliding<ConnectionEvent>(EVENT_BUFFER), (hub) => new Events(hub, terminated))
  }

  /** Publishes an event to the current subscribers (synchronously). */
  publish(event: ConnectionEvent): void {
    this.#hub.unsafeOffer(event)
  }

  /**
   * The events from the moment of subscription, ending with one
   * `Terminated` event when the connection ends (at once for a subscriber
   * that comes after the end). Subscribed before looking at the end, so no
   * event can fall between.
   */
  get stream(): Stream.Stream<ConnectionEvent> {
    const terminated = this.#terminated
    return Stream.unwrapScoped(
      Effect.map(PubSub.subscribe(this.#hub), (subscription) =>
        Stream.merge(
          Stream.fromQueue(subscription),
          Stream.fromEffect(
            Effect.map(Deferred.await(terminated), (error): ConnectionEvent => ({ _tag: "Terminated", error })),
          ),
          { haltStrategy: "right" },
        )),
    )
  }
}
