/**
 * The general send path: a frame prepared and checked (frames.ts), counted
 * in the window (counting.ts), then encoded into the outbound buffer at
 * once when the window's credit and the buffer's room allow — else after
 * waiting for them, through the semaphore ({@link FlowControl.acquire}) and
 * the buffer's room signal, trying again after each wait.
 *
 * Everything the sender's one-step path does not take comes here: several
 * destinations, a name not validated before, a payload that may not fit,
 * joins and leaves, and any send that finds the window or the buffer full.
 * Both paths queue through the one {@link Binding}, so a sender moved to a
 * new session's buffer moves both.
 *
 * @module
 */
import { Effect } from "effect"
import type { ConnectionError } from "../errors.ts"
import type { Counting } from "./counting.ts"
import type { PreparedFrame } from "./frames.ts"
import { encodeInto, frameBound, groupEntry } from "../../protocol/encode.ts"
import type { Outbound, TryResult } from "./outbound.ts"
import type { FlowControl } from "./window.ts"

/**
 * Where the senders queue now: a session's buffer and window, and its
 * private group with that name as a frame field. Changed in place, only by
 * {@link Binding.move}, so the one-step path and the general path, which
 * share it, always agree.
 *
 * @since 0.2.0
 * @category models
 */
export class Binding {
  out: Outbound
  flow: FlowControl
  privateGroup: string
  /** `privateGroup` as a 32-byte, zero-padded frame field. */
  nameField: Uint8Array

  constructor(out: Outbound, flow: FlowControl, privateGroup: string) {
    this.out = out
    this.flow = flow
    this.privateGroup = privateGroup
    this.nameField = groupEntry(privateGroup)
  }

  /** Moves to another session's buffer and window, and private group. */
  move(out: Outbound, flow: FlowControl, privateGroup: string): void {
    this.out = out
    this.flow = flow
    if (privateGroup !== this.privateGroup) {
      this.privateGroup = privateGroup
      this.nameField = groupEntry(privateGroup)
    }
  }
}

/**
 * The general path of a connection's senders.
 *
 * @since 0.2.0
 * @category models
 */
export class Queueing {
  readonly #to: Binding
  readonly #counting: Counting
  readonly #failSticky: Effect.Effect<never, ConnectionError>

  constructor(to: Binding, counting: Counting, failSticky: Effect.Effect<never, ConnectionError>) {
    this.#to = to
    this.#counting = counting
    this.#failSticky = failSticky
  }

  /** Counts `p` and queues it: in one step when there is room and credit, else after waiting. */
  queue(p: PreparedFrame): Effect.Effect<void, ConnectionError> {
    this.count(p)
    return this.tryQueue(p) === "Queued" ? Effect.void : this.queueSlow(p)
  }

  /**
   * Queues counted frames in order, each at once while there is room and
   * credit, waiting where there is none. None at all still fails on a
   * closed connection.
   */
  queueAll(items: ReadonlyArray<PreparedFrame>): Effect.Effect<void, ConnectionError> {
    if (items.length === 0) return this.#to.out.closed ? this.#failSticky : Effect.void
    const from = (i: number): Effect.Effect<void, ConnectionError> => {
      while (i < items.length && this.tryQueue(items[i]) === "Queued") i++
      if (i === items.length) return Effect.void
      const k = i
      return Effect.flatMap(this.queueSlow(items[k]), () => from(k + 1))
    }
    return from(0)
  }

  /** Sets what `p` costs in the window now (see {@link Counting.count}). */
  count(p: PreparedFrame): void {
    this.#counting.count(p, this.#to.flow, this.#to.privateGroup)
  }

  /**
   * Counts `p` and queues it if that can be done at once (ahead of waiting
   * senders), never waiting; answers whether it did.
   */
  offer(p: PreparedFrame): boolean {
    this.count(p)
    return this.tryQueue(p, true) === "Queued"
  }

  /**
   * The synchronous step: encodes `p` in place when the window's credit and
   * the buffer have room; answers whether it did. A sender that has not
   * waited yet does not go ahead of senders that wait (first come, first
   * served).
   */
  tryQueue(p: PreparedFrame, waited = false): TryResult {
    const { flow, out } = this.#to
    if (out.closed) return "Closed"
    if (!waited && (out.waiting > 0 || flow.waiting > 0)) return "NoRoom"
    const buf = out.room(frameBound(p))
    if (buf === undefined) return "NoRoom"
    if (!flow.tryUse(p.cost)) return "NoCredit"
    out.commit(encodeInto(buf, out.end, this.#to.nameField, p))
    this.#counting.committed(p, flow)
    return "Queued"
  }

  /**
   * Waits for the window, then for room, as often as needed. Its cost is
   * counted again before each try: what it joined may have changed while it
   * waited. Interrupted, it queues nothing; permits it took stay in the
   * connection's credit. A buffer that closed meanwhile may have been
   * replaced by a new session's: the send fails with the sticky error only
   * when the current one is closed.
   */
  queueSlow(p: PreparedFrame): Effect.Effect<void, ConnectionError> {
    const tryNow = (): TryResult => {
      this.count(p)
      return this.tryQueue(p, true)
    }
    const attempt: Effect.Effect<void, ConnectionError> = Effect.suspend(() => {
      if (this.#to.out.closed) return this.#failSticky
      this.count(p)
      if (p.cost > this.#to.flow.credit) return Effect.zipRight(this.#to.flow.acquire(p.cost), attempt)
      return Effect.flatMap(this.#to.out.awaitRoom(tryNow), (r) => {
        switch (r) {
          case "Queued":
            return Effect.void
          case "Closed":
            // This buffer closed; the current one may be a new session's.
            return this.#to.out.closed ? this.#failSticky : attempt
          case "NoRoom":
          case "NoCredit":
            return attempt
        }
      })
    })
    return attempt
  }
}
