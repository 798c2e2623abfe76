/**
 * The inbound buffer between the reader fiber and the receivers.
 *
 * Overflow policy: **backpressure**. The buffer is a bounded queue; when it
 * is full the reader fiber waits to offer, so it stops reading the socket,
 * the kernel buffers fill, and the daemon queues for this session. Nothing
 * is dropped here. A daemon kills a session whose queue passes its limit
 * (1000 messages for a real one), so a consumer that stalls must be noticed
 * first: when the buffer reaches the slow-consumer mark (75% by default) a
 * `SlowConsumer` event is published, and `ConsumerCaughtUp` once it is back
 * below a quarter.
 *
 * When the connection ends the queue is shut down: buffered messages are
 * discarded and every receiver, waiting or later, gets the sticky error.
 *
 * @module
 */
import { Cause, Chunk, Effect, Option, PubSub, Queue } from "effect"
import type { ServerMessage } from "../protocol/messages.ts"
import type { ConnectionError } from "./errors.ts"

/**
 * Events about a connection's health, published to `events` subscribers.
 *
 * - `SlowConsumer`: the inbound buffer reached the slow-consumer mark; the
 *   connection will soon stop reading, and a daemon may then cut it off.
 * - `ConsumerCaughtUp`: the buffer went back below a quarter.
 * - `Terminated`: the connection failed or was closed, with its sticky error.
 *
 * @since 0.1.0
 * @category models
 */
export type ConnectionEvent =
  | { readonly _tag: "SlowConsumer"; readonly buffered: number; readonly capacity: number }
  | { readonly _tag: "ConsumerCaughtUp"; readonly buffered: number; readonly capacity: number }
  | { readonly _tag: "Terminated"; readonly error: ConnectionError }

/**
 * Whether the consumer is keeping up.
 *
 * @since 0.1.0
 * @category models
 */
export type ConsumerHealth = "Keeping up" | "Slow"

/** Most events kept for a subscriber that lags; older ones are dropped (sliding). */
const EVENT_BUFFER = 64

/** Most messages one receiver takes at once from the buffer. */
export const MAX_TAKE = 4096

/**
 * The bounded inbound queue, its slow-consumer detector, and the event hub.
 *
 * @since 0.1.0
 * @category models
 */
export class Inbound {
  readonly queue: Queue.Queue<ServerMessage>
  readonly events: PubSub.PubSub<ConnectionEvent>
  readonly capacity: number
  readonly #high: number
  readonly #low: number
  #health: ConsumerHealth = "Keeping up"
  #slowEvents = 0

  private constructor(
    queue: Queue.Queue<ServerMessage>,
    events: PubSub.PubSub<ConnectionEvent>,
    capacity: number,
    high: number,
    low: number,
  ) {
    this.queue = queue
    this.events = events
    this.capacity = capacity
    this.#high = high
    this.#low = low
  }

  /** Makes the buffer: `capacity` messages, slow at `high`, caught up at `low`. */
  static make(capacity: number, high: number, low: number): Effect.Effect<Inbound> {
    return Effect.map(
      Effect.zip(Queue.bounded<ServerMessage>(capacity), PubSub.sliding<ConnectionEvent>(EVENT_BUFFER)),
      ([q, p]) => new Inbound(q, p, capacity, high, low),
    )
  }

  /** The consumer's health as last observed by the reader. */
  get health(): ConsumerHealth {
    return this.#health
  }

  /** How many `SlowConsumer` events were published. */
  get slowEvents(): number {
    return this.#slowEvents
  }

  /**
   * Offers the messages decoded from one read, waiting while the buffer is
   * full (the reader stops reading), after updating the consumer's health.
   */
  offer(batch: ReadonlyArray<ServerMessage>): Effect.Effect<void> {
    return Effect.suspend(() => {
      const after = queued(this.queue) + batch.length
      let event: ConnectionEvent | undefined
      if (this.#health === "Keeping up" && after >= this.#high) {
        this.#health = "Slow"
        this.#slowEvents++
        event = { _tag: "SlowConsumer", buffered: after, capacity: this.capacity }
      } else if (this.#health === "Slow" && after <= this.#low) {
        this.#health = "Keeping up"
        event = { _tag: "ConsumerCaughtUp", buffered: after, capacity: this.capacity }
      }
      const offer = batch.length === 0 ? Effect.void : Queue.offerAll(this.queue, batch)
      return event === undefined ? offer : Effect.zipRight(PubSub.publish(this.events, event), offer)
    })
  }

  /**
   * One message, or the sticky error once the queue was shut down
   * (`onEnd` supplies it).
   */
  take(onEnd: Effect.Effect<ConnectionError>): Effect.Effect<ServerMessage, ConnectionError> {
    return Effect.catchAllCause(Queue.take(this.queue), (cause) => endOr(cause, onEnd))
  }

  /**
   * Between 1 and `max` messages, or the sticky error: whatever is buffered,
   * or, when nothing is, the next message and whatever came with it.
   */
  takeChunk(
    max: number,
    onEnd: Effect.Effect<ConnectionError>,
  ): Effect.Effect<Chunk.Chunk<ServerMessage>, ConnectionError> {
    const q = this.queue
    const take = Effect.flatMap(
      Queue.takeUpTo(q, max),
      (buffered) =>
        Chunk.isNonEmpty(buffered)
          ? Effect.succeed(buffered)
          : Effect.flatMap(Queue.take(q), (first) =>
            max === 1
              ? Effect.succeed(Chunk.of(first))
              : Effect.map(Queue.takeUpTo(q, max - 1), (rest) =>
                Chunk.prepend(rest, first))),
    )
    return Effect.catchAllCause(take, (cause) => endOr(cause, onEnd))
  }

  /** Messages buffered now (0 once shut down). */
  get buffered(): number {
    return queued(this.queue)
  }

  /** Ends the buffer: discards its messages and wakes every receiver. */
  readonly shutdown: Effect.Effect<void> = Effect.suspend(() => Queue.shutdown(this.queue))
}

// Messages in the queue. Effect's queue size goes negative while receivers
// wait on an empty queue (it counts them as takers); that is 0 messages.
const queued = (q: Queue.Queue<ServerMessage>): number => Math.max(0, Option.getOrElse(q.unsafeSize(), () => 0))

// A shut-down queue interrupts its takers; that is the end of the
// connection, reported as its sticky error. Any other cause passes through.
const endOr = <A>(
  cause: Cause.Cause<never>,
  onEnd: Effect.Effect<ConnectionError>,
): Effect.Effect<A, ConnectionError> =>
  Cause.isInterruptedOnly(cause) ? Effect.flatMap(onEnd, Effect.fail) : Effect.failCause(cause)
