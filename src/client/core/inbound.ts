/**
 * The inbound buffer between the reader fiber and the receivers: an Effect
 * `Mailbox` whose failure is the connection's sticky error.
 *
 * Overflow policy: **backpressure**. The mailbox is bounded; when it is
 * full the reader waits to offer, so it stops reading the socket, the
 * kernel buffers fill, and the daemon queues for this session. Nothing is
 * dropped here. A daemon kills a session whose queue passes its limit (1000
 * messages for a real one), so a consumer that stalls must be noticed
 * first: when the buffer reaches the slow-consumer mark (75% by default) a
 * `SlowConsumer` event is published, and `ConsumerCaughtUp` once it is back
 * below a quarter.
 *
 * Receivers share the buffer: each message goes to one receiver (a work
 * queue), whether taken by `receive`, `receiveChunk` or a `messages`
 * stream. When the connection ends, buffered messages are discarded and
 * every receiver, waiting or later, gets the sticky error.
 *
 * @module
 */
import { Chunk, Effect, Exit, Mailbox, Option, type Stream } from "effect"
import type { ServerMessage } from "../../protocol/server_messages.ts"
import type { ConnectionError } from "../errors.ts"
import type { Events } from "./events.ts"

/**
 * Whether the consumer is keeping up.
 *
 * @since 0.1.0
 * @category models
 */
export type ConsumerHealth = "Keeping up" | "Slow"

/** Most messages one receiver takes at once from the buffer. */
export const MAX_TAKE = 4096

/**
 * The bounded inbound mailbox and its slow-consumer detector.
 *
 * @since 0.1.0
 * @category models
 */
export class Inbound {
  readonly #mailbox: Mailbox.Mailbox<ServerMessage, ConnectionError>
  readonly #events: Events
  readonly capacity: number
  readonly #high: number
  readonly #low: number
  readonly #group: string | undefined
  #health: ConsumerHealth = "Keeping up"
  #slowEvents = 0
  /** The messages as a stream, in the chunks they were buffered in; fails with the sticky error. */
  readonly stream: Stream.Stream<ServerMessage, ConnectionError>
  /** One message, or the sticky error. */
  readonly take: Effect.Effect<ServerMessage, ConnectionError>

  private constructor(
    mailbox: Mailbox.Mailbox<ServerMessage, ConnectionError>,
    events: Events,
    capacity: number,
    high: number,
    low: number,
    onEnd: Effect.Effect<never, ConnectionError>,
    group: string | undefined,
  ) {
    this.#group = group
    this.#mailbox = mailbox
    this.#events = events
    this.capacity = capacity
    this.#high = high
    this.#low = low
    this.stream = Mailbox.toStream(mailbox)
    // The mailbox always ends with the sticky error; "no such element" is
    // only the type's other case.
    this.take = Effect.catchTag(mailbox.take, "NoSuchElementException", () => onEnd)
  }

  /**
   * Makes the buffer: `capacity` messages, slow at `high`, caught up at
   * `low`; `group` names a `subscribe` buffer in its events.
   */
  static make(
    capacity: number,
    high: number,
    low: number,
    events: Events,
    onEnd: Effect.Effect<never, ConnectionError>,
    group?: string,
  ): Effect.Effect<Inbound> {
    return Effect.map(
      Mailbox.make<ServerMessage, ConnectionError>({ capacity, strategy: "suspend" }),
      (m) => new Inbound(m, events, capacity, high, low, onEnd, group),
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

  /** Messages buffered now (0 once ended). */
  get buffered(): number {
    return Option.getOrElse(this.#mailbox.unsafeSize(), () => 0)
  }

  /**
   * Offers the messages decoded from one read: synchronously while they
   * fit, else waiting for room (the reader stops reading); updates the
   * consumer's health first.
   */
  offer(batch: Array<ServerMessage>): Effect.Effect<void> {
    const after = this.buffered + batch.length
    if (this.#health === "Keeping up" && after >= this.#high) {
      this.#health = "Slow"
      this.#slowEvents++
      this.#events.publish(
        this.#group === undefined
          ? { _tag: "SlowConsumer", buffered: after, capacity: this.capacity }
          : { _tag: "SlowConsumer", buffered: after, capacity: this.capacity, group: this.#group },
      )
    } else if (this.#health === "Slow" && after <= this.#low) {
      this.#health = "Keeping up"
      this.#events.publish(
        this.#group === undefined
          ? { _tag: "ConsumerCaughtUp", buffered: after, capacity: this.capacity }
          : { _tag: "ConsumerCaughtUp", buffered: after, capacity: this.capacity, group: this.#group },
      )
    }
    const rest = this.#mailbox.unsafeOfferAll(batch)
    return Chunk.isEmpty(rest) ? Effect.void : Effect.asVoid(this.#mailbox.offerAll(rest))
  }

  /**
   * Between 1 and `max` messages, or the sticky error: whatever is
   * buffered, or, when nothing is, the next message and whatever came with it.
   */
  takeChunk(max: number): Effect.Effect<Chunk.Chunk<ServerMessage>, ConnectionError> {
    return Effect.suspend(() => {
      const n = Math.min(max, this.buffered)
      if (n > 0) return Effect.map(this.#mailbox.takeN(n), ([messages]) => messages)
      if (max === 1) return Effect.map(this.take, Chunk.of)
      return Effect.flatMap(this.take, (first) => {
        const more = Math.min(max - 1, this.buffered)
        return more === 0
          ? Effect.succeed(Chunk.of(first))
          : Effect.map(this.#mailbox.takeN(more), ([rest]) => Chunk.prepend(rest, first))
      })
    })
  }

  /**
   * Ends the buffer with the sticky error: discards what it holds (and a
   * waiting offer of the reader) and wakes every receiver.
   */
  end(error: ConnectionError): Effect.Effect<void> {
    const m = this.#mailbox
    return Effect.suspend(() => {
      m.unsafeDone(Exit.fail(error))
      // Shutting down discards the buffered messages, finishes the mailbox
      // with the exit just recorded, and resumes a waiting offer however
      // many messages it still holds (clearing would move them in a
      // capacity at a time).
      return Effect.asVoid(m.shutdown)
    })
  }
}
