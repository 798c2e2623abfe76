/**
 * The gate in front of the transport outbox: frames are queued whole (one
 * `offer` per frame, so frames never interleave), each with a synchronous
 * commit step that runs atomically with the queueing; when the outbox is
 * full, senders wait, first come first served, and the writer fiber wakes
 * them as it takes batches out. Nothing is dropped and nobody fails for
 * lack of space.
 *
 * The outbox is sized one frame and 1 KiB above the user limits, so the
 * disconnect frame always fits when the connection is closed.
 *
 * @module
 */
import { Effect } from "effect"
import { Outbox } from "../transport/outbox.ts"

/**
 * What queueing a frame answers: queued, or the outbox is closed (the
 * connection ended).
 *
 * @since 0.1.0
 * @category models
 */
export type QueueResult = "Queued" | "Closed"

interface Waiter {
  readonly frame: Uint8Array
  readonly commit: () => void
  readonly resume: (result: QueueResult) => void
}

const QUEUED: Effect.Effect<QueueResult> = Effect.succeed("Queued")
const CLOSED: Effect.Effect<QueueResult> = Effect.succeed("Closed")

/**
 * Outbox access for the fibers of one connection.
 *
 * @since 0.1.0
 * @category models
 */
export class Sender {
  readonly outbox: Outbox
  readonly #maxMessages: number
  readonly #maxBytes: number
  #waiters: Array<Waiter> = []

  constructor(maxMessages: number, maxBytes: number) {
    this.#maxMessages = maxMessages
    this.#maxBytes = maxBytes
    this.outbox = new Outbox({ maxMessages: maxMessages + 1, maxBytes: maxBytes + 1024 })
  }

  /** Senders waiting for space. */
  get waiting(): number {
    return this.#waiters.length
  }

  // Queues within the user limits; `undefined` when there is no room.
  #tryQueue(frame: Uint8Array): QueueResult | undefined {
    const o = this.outbox
    if (o.closed) return "Closed"
    if (o.messages > 0 && (o.messages >= this.#maxMessages || o.bytes + frame.length > this.#maxBytes)) {
      return undefined
    }
    return o.offer(frame) === "Queued" ? "Queued" : "Closed"
  }

  /**
   * Queues `frame` and runs `commit` in the same synchronous step, waiting
   * for space when the outbox is full. Interrupting the wait queues nothing.
   */
  queue(frame: Uint8Array, commit: () => void): Effect.Effect<QueueResult> {
    return Effect.suspend(() => {
      if (this.#waiters.length === 0) {
        const r = this.#tryQueue(frame)
        if (r === "Queued") {
          commit()
          return QUEUED
        }
        if (r === "Closed") return CLOSED
      }
      return Effect.async<QueueResult>((resume) => {
        const waiter: Waiter = { frame, commit, resume: (r) => resume(r === "Queued" ? QUEUED : CLOSED) }
        this.#waiters.push(waiter)
        // Space may have been freed between the first try and this registration.
        this.spaceFreed()
        return Effect.sync(() => {
          const i = this.#waiters.indexOf(waiter)
          if (i >= 0) this.#waiters.splice(i, 1)
        })
      })
    })
  }

  /**
   * Queues as many of `frames[from..to)` as fit right now, committing each;
   * answers the index of the first frame not queued (`to` when all were).
   * Queues nothing while other senders are waiting (first come, first served).
   */
  queueNow(frames: ReadonlyArray<Uint8Array>, from: number, to: number, commit: (i: number) => void): number {
    if (this.#waiters.length > 0) return from
    let i = from
    for (; i < to; i++) {
      if (this.#tryQueue(frames[i]) !== "Queued") break
      commit(i)
    }
    return i
  }

  /**
   * Called by the writer after it took a batch, and on close: queues the
   * frames of waiting senders, in order, while they fit.
   */
  spaceFreed(): void {
    while (this.#waiters.length > 0) {
      const w = this.#waiters[0]
      const r = this.#tryQueue(w.frame)
      if (r === undefined) return
      this.#waiters.shift()
      if (r === "Queued") w.commit()
      w.resume(r)
    }
  }

  /** Queues the last frame (the disconnect) and closes the outbox. */
  finish(lastFrame: Uint8Array): void {
    if (!this.outbox.closed) this.outbox.offer(lastFrame)
    this.outbox.close()
    this.spaceFreed()
  }

  /** Drops everything queued and closes the outbox (after a failure). */
  abort(): void {
    this.outbox.clear()
    this.outbox.close()
    this.spaceFreed()
  }
}
