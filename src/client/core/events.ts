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
 * - `Disconnected` (only with the `reconnect` option): the session was lost
 *   (`error`, the lost session's failure) and the connection reconnects.
 * - `Reconnected`: a new session is open and every group joined before the
 *   loss was joined again (see {@link ReconnectedEvent}).
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
  | {
    readonly _tag: "Disconnected"
    /** Why the session was lost. */
    readonly error: ConnectionError
    /** The daemon the lost session was connected to. */
    readonly address: string
  }
  | ReconnectedEvent
  | { readonly _tag: "Terminated"; readonly error: ConnectionError }

/**
 * A connection is back after a lost session, and what changed. Spread
 * replays nothing: messages multicast to this connection's groups while it
 * was away are lost, and so may be its own messages that had not come back
 * yet (`unconfirmed`) or were not yet written (`unsent`).
 *
 * @since 0.2.0
 * @category models
 */
export interface ReconnectedEvent {
  /** Discriminates the event. */
  readonly _tag: "Reconnected"
  /** The daemon of the new session. */
  readonly address: string
  /** The new session's private group. */
  readonly privateGroup: string
  /** The lost session's private group. */
  readonly previousPrivateGroup: string
  /**
   * Whether the private name changed: the daemon refused the old one (still
   * in use there), so a fresh one was taken.
   */
  readonly newPrivateGroup: boolean
  /** The groups joined again, in the order they were joined. */
  readonly rejoined: ReadonlyArray<string>
  /** Attempts made, this one included. */
  readonly attempts: number
  /** Own messages in flight when the session was lost (sent, not yet received back). */
  readonly unconfirmed: number
  /** Frames queued and not yet written when the session was lost (dropped). */
  readonly unsent: number
  /** Why the session was lost. */
  readonly cause: ConnectionError
}

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
