/**
 * A bounded outbox with a coalescing writer: producers enqueue frames
 * synchronously (no Effect per frame, never waiting); one writer fiber takes
 * everything queued as one buffer and writes it with one syscall.
 *
 * @module
 */
import { Effect } from "effect"

/**
 * Limits of an {@link Outbox}.
 *
 * @since 0.1.0
 * @category models
 */
export interface OutboxLimits {
  /** Most frames waiting (not yet handed to the socket). */
  readonly maxMessages: number
  /** Most bytes waiting. */
  readonly maxBytes: number
  /** Largest coalesced write, in bytes (a single larger frame is written alone). */
  readonly batchBytes?: number
}

/**
 * What {@link Outbox.offer} answers: queued, over a limit (nothing was
 * queued), or closed.
 *
 * @since 0.1.0
 * @category models
 */
export type OfferResult = "Queued" | "Overflow" | "Closed"

const DEFAULT_BATCH = 64 * 1024

// Coalescing buffers are reused. A writer asks for its next batch only
// after its previous write completed (see `take`), so the buffer that batch
// was copied into is free again by then; once an outbox is drained, its
// buffer goes back to a small pool shared by every outbox, so an idle
// session holds none. Without this, a daemon forwarding 10 KB messages
// allocated a fresh 64 KiB buffer per write, and V8 answered that external
// memory with a full mark-compact several times a second.
const POOL_MAX = 32
const pool: Array<Uint8Array> = []

/**
 * The bounded queue between producers and one writer fiber.
 *
 * @since 0.1.0
 * @category models
 */
export class Outbox {
  #frames: Array<Uint8Array> = []
  #head = 0
  #bytes = 0
  #closed = false
  #wake: (() => void) | undefined
  // The coalescing buffer of the batch handed out last, if any.
  #lent: Uint8Array | undefined
  readonly #limits: OutboxLimits
  readonly #batch: number

  constructor(limits: OutboxLimits) {
    this.#limits = limits
    this.#batch = limits.batchBytes ?? DEFAULT_BATCH
  }

  /** Frames waiting. */
  get messages(): number {
    return this.#frames.length - this.#head
  }

  /** Bytes waiting. */
  get bytes(): number {
    return this.#bytes
  }

  /** Whether {@link close} has run. */
  get closed(): boolean {
    return this.#closed
  }

  /** Queues a frame without waiting. On `Overflow` nothing was queued. */
  offer(frame: Uint8Array): OfferResult {
    if (this.#closed) return "Closed"
    if (this.messages >= this.#limits.maxMessages || this.#bytes + frame.length > this.#limits.maxBytes) {
      return "Overflow"
    }
    this.#frames.push(frame)
    this.#bytes += frame.length
    const w = this.#wake
    if (w !== undefined) {
      this.#wake = undefined
      w()
    }
    return "Queued"
  }

  /** Stops accepting frames; the writer drains what is queued, then ends. */
  close(): void {
    this.#closed = true
    const w = this.#wake
    if (w !== undefined) {
      this.#wake = undefined
      w()
    }
  }

  /**
   * Copies every queued frame that is a small view (under a quarter) of a
   * larger buffer, so frames waiting for a stuck reader keep only their own
   * bytes alive, not the whole read chunks they came in.
   */
  compact(): void {
    const frames = this.#frames
    for (let i = this.#head; i < frames.length; i++) frames[i] = compacted(frames[i])
  }

  /**
   * Drops everything queued (after a cut-off). A write may still be under
   * way from the last batch: its buffer is let go, not pooled.
   */
  clear(): void {
    this.#frames = []
    this.#head = 0
    this.#bytes = 0
    this.#lent = undefined
  }

  /**
   * Waits until frames are queued and takes them as one buffer (up to the
   * batch size, valid until the next `take`); `undefined` once closed and
   * drained.
   *
   * A writer calls this only after its previous write has completed (the
   * socket took every byte), and the wake-up `offer` gives is the only way
   * it resumes: that wake-up is the writer's "ready for more" flag. So a
   * writer whose socket is blocked is never handed new data out of turn —
   * frames wait here, in order, until it asks again. (`takeNow` keeps the
   * same rule for writers that are not fibers: the daemon's session starts
   * its writer on an offer only when none is running.)
   */
  get take(): Effect.Effect<Uint8Array | undefined> {
    // Made on first use: the daemon's sessions write with `takeNow` and
    // never pay for it (10,000 idle sessions are a design target).
    return this.#take ??= Effect.suspend(() => {
      if (this.messages > 0) return Effect.succeed(this.#drain())
      this.#giveBack()
      if (this.#closed) return Effect.succeed(undefined)
      return Effect.async<void>((resume) => {
        this.#wake = () => resume(Effect.void)
        return Effect.sync(() => {
          this.#wake = undefined
        })
      }).pipe(Effect.zipRight(this.take))
    })
  }
  #take: Effect.Effect<Uint8Array | undefined> | undefined

  /**
   * Takes what is queued as one buffer (up to the batch size, valid until
   * the next take) without waiting: `undefined` when nothing is queued. For
   * writers that are not fibers (the daemon's sessions start one only while
   * frames wait). The same rule as `take`: call it again only once the
   * previous batch was written, and not at all after a failed write.
   */
  takeNow(): Uint8Array | undefined {
    if (this.messages > 0) return this.#drain()
    this.#giveBack()
    return undefined
  }

  #giveBack(): void {
    const lent = this.#lent
    if (lent === undefined) return
    this.#lent = undefined
    if (lent.length === DEFAULT_BATCH && pool.length < POOL_MAX) pool.push(lent)
  }

  #drain(): Uint8Array {
    const frames = this.#frames
    const first = frames[this.#head]
    let end = this.#head + 1
    let size = first.length
    while (end < frames.length && size + frames[end].length <= this.#batch) size += frames[end++].length
    let out: Uint8Array
    if (end === this.#head + 1) {
      out = first
    } else {
      const buf = this.#lent ??= pool.length > 0 && this.#batch === DEFAULT_BATCH
        ? pool.pop() as Uint8Array
        : new Uint8Array(Math.max(this.#batch, size))
      out = buf.subarray(0, size)
      let o = 0
      for (let i = this.#head; i < end; i++) {
        out.set(frames[i], o)
        o += frames[i].length
      }
    }
    this.#bytes -= size
    if (end === frames.length) {
      this.#frames = []
      this.#head = 0
    } else {
      this.#head = end
      if (this.#head > 1024 && this.#head * 2 > frames.length) {
        this.#frames = frames.slice(this.#head)
        this.#head = 0
      }
    }
    return out
  }
}

/**
 * `bytes` itself, or a copy when it is a view of under a quarter of a
 * larger buffer (so keeping it does not keep the whole buffer alive).
 *
 * @since 0.1.0
 * @category combinators
 */
export const compacted = (bytes: Uint8Array): Uint8Array =>
  bytes.byteLength * 4 < bytes.buffer.byteLength ? bytes.slice() : bytes
