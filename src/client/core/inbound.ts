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
 * stream.
 *
 * Reconnect marks ({@link Discontinuity}) never wait and never pile up
 * ({@link Inbound.mark}): a mark goes in at once when there is room, else it
 * is held (one at most) and goes in ahead of the next messages or as soon as
 * a receiver makes room; a mark that finds the previous one still unread,
 * with no message after it, is coalesced into it (its `reconnects` counts
 * both). So a buffer nobody reads holds one mark, however many reconnects. When the connection ends, buffered messages are discarded and
 * every receiver, waiting or later, gets the sticky error.
 *
 * @module
 */
import { Chunk, Effect, Exit, Mailbox, Option, Stream } from "effect"
import type { ServerMessage } from "../../protocol/server_messages.ts"
import type { ConnectionError } from "./errors.ts"
import type { Discontinuity } from "./discontinuity.ts"
import type { Events } from "./events.ts"

type Mutable<T> = { -readonly [K in keyof T]: T[K] }

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
  // The last reconnect mark put in the mailbox while no receiver took it,
  // and how many messages were put in after it.
  #boxed: Mutable<Discontinuity> | undefined
  #afterBoxed = 0
  // A mark waiting for room (the mailbox was full).
  #held: Mutable<Discontinuity> | undefined
  #ended = false
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
    // The mailbox always ends with the sticky error; "no such element" is
    // only the type's other case.
    this.take = Effect.map(
      Effect.catchTag(mailbox.take, "NoSuchElementException", () => onEnd),
      (m) => {
        if (m === this.#boxed) this.#boxed = undefined
        if (this.#held !== undefined) this.#release()
        return m
      },
    )
    this.stream = Stream.mapChunks(Mailbox.toStream(mailbox), (c) => this.#took(c))
  }

  /**
   * Puts a reconnect mark in the buffer without waiting (see the module
   * notes): at once if there is room, else held until there is; coalesced
   * into the previous mark when that one is unread and nothing came after
   * it. Nothing once the buffer ended.
   */
  mark(d: Discontinuity): void {
    if (this.#ended) return
    if (this.#held !== undefined) return coalesce(this.#held, d)
    if (this.#boxed !== undefined && this.#afterBoxed === 0) return coalesce(this.#boxed, d)
    const m: Mutable<Discontinuity> = { ...d }
    if (this.#mailbox.unsafeOffer(m)) {
      this.#boxed = m
      this.#afterBoxed = 0
    } else {
      this.#held = m
    }
  }

  /** Marks held outside the mailbox (0 or 1; for tests and stats). */
  get heldMarks(): number {
    return this.#held === undefined ? 0 : 1
  }

  // A receiver made room: the held mark goes in.
  #release(): void {
    const m = this.#held
    if (m === undefined || !this.#mailbox.unsafeOffer(m)) return
    this.#held = undefined
    this.#boxed = m
    this.#afterBoxed = 0
  }

  #took(c: Chunk.Chunk<ServerMessage>): Chunk.Chunk<ServerMessage> {
    if (this.#boxed !== undefined) {
      for (const m of c) {
        if (m === this.#boxed) {
          this.#boxed = undefined
          break
        }
      }
    }
    if (this.#held !== undefined) this.#release()
    return c
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
    // A held mark goes ahead of the messages that follow it.
    const held = this.#held
    if (held !== undefined) {
      this.#held = undefined
      this.#boxed = held
      this.#afterBoxed = batch.length
      batch.unshift(held)
    } else if (this.#boxed !== undefined) {
      this.#afterBoxed += batch.length
    }
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
      if (n > 0) return Effect.map(this.#mailbox.takeN(n), ([messages]) => this.#took(messages))
      if (max === 1) return Effect.map(this.take, Chunk.of)
      return Effect.flatMap(this.take, (first) => {
        const more = Math.min(max - 1, this.buffered)
        return more === 0
          ? Effect.succeed(Chunk.of(first))
          : Effect.map(this.#mailbox.takeN(more), ([rest]) => this.#took(Chunk.prepend(rest, first)))
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
      this.#ended = true
      this.#held = undefined
      this.#boxed = undefined
      m.unsafeDone(Exit.fail(error))
      // Shutting down discards the buffered messages, finishes the mailbox
      // with the exit just recorded, and resumes a waiting offer however
      // many messages it still holds (clearing would move them in a
      // capacity at a time).
      return Effect.asVoid(m.shutdown)
    })
  }
}

// Folds the later reconnect `d` into the unread mark `into`: the latest
// cause and session, the first lost session, both counted.
const coalesce = (into: Mutable<Discontinuity>, d: Discontinuity): void => {
  // In `messages` the mark names the newest private group.
  if (into.group === into.privateGroup) into.group = d.group
  into.cause = d.cause
  into.privateGroup = d.privateGroup
  into.rejoined = d.rejoined
  into.reconnects += d.reconnects
}
