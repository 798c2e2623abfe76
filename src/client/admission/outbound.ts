/**
 * The client's coalescing writer buffer: senders encode frames straight
 * into one growing buffer (no allocation per frame, no second copy), and
 * the writer fiber hands everything encoded so far to the socket in one
 * write, then swaps in the spare buffer so senders go on encoding while the
 * write is under way. At most two buffers exist: the one being filled and
 * the one being written.
 *
 * Overflow policy: **wait**. A frame that does not fit within the limits
 * (bytes and frames waiting, not counting the write under way) waits for
 * the writer's next swap ({@link Outbound.awaitRoom}; who waits, and in
 * which order, is admission.ts's); a frame is never split, dropped or
 * failed for lack of room. A lone frame larger than the byte limit is
 * accepted into an empty buffer (the buffer grows to hold it).
 *
 * Why not the transport's `Outbox`: that queues one allocated frame per
 * message and copies them again to coalesce; here a frame is written once,
 * in place.
 *
 * @module
 */
import { Effect } from "effect"
import { HEADER_SIZE } from "../../protocol/constants.ts"
import { frameLengthAt } from "../../protocol/encode.ts"

/** First size of a buffer; it doubles as frames need. */
const INITIAL_BYTES = 16 * 1024

/**
 * Limits of an {@link Outbound}.
 *
 * @since 0.2.0
 * @category models
 */
export interface OutboundLimits {
  /** Most frames waiting for the writer. */
  readonly maxFrames: number
  /** Most bytes waiting for the writer. */
  readonly maxBytes: number
}

/**
 * The buffer between the senders of one session and its writer fiber.
 *
 * @since 0.2.0
 * @category models
 */
export class Outbound {
  #fill: Uint8Array = new Uint8Array(INITIAL_BYTES)
  #spare: Uint8Array | undefined
  #len = 0
  #frames = 0
  #closed = false
  #wakeWriter: (() => void) | undefined
  // Whoever waits for the next swap (admission's first waiter).
  #roomWaiters: Array<() => void> = []
  readonly #limits: OutboundLimits
  /** Frames committed so far. */
  framesQueued = 0
  /** Writes handed out so far. */
  writes = 0

  constructor(limits: OutboundLimits) {
    this.#limits = limits
  }

  /** Whether the buffer was closed (the session ended or is closing). */
  get closed(): boolean {
    return this.#closed
  }

  /** Bytes encoded and not yet handed to the writer. */
  get bytes(): number {
    return this.#len
  }

  /** Frames encoded and not yet handed to the writer. */
  get frames(): number {
    return this.#frames
  }

  /**
   * The buffer to encode a frame of at most `n` bytes into, at offset
   * {@link end}, or `undefined` when it does not fit now (or the buffer is
   * closed). The caller encodes and then calls {@link commit} in the same
   * synchronous step.
   */
  room(n: number): Uint8Array | undefined {
    if (this.#closed) return undefined
    const len = this.#len
    if (len > 0 && (len + n > this.#limits.maxBytes || this.#frames >= this.#limits.maxFrames)) return undefined
    if (this.#fill.length < len + n) this.#grow(len + n)
    return this.#fill
  }

  /** Where the next frame goes in the buffer {@link room} answered. */
  get end(): number {
    return this.#len
  }

  /** Commits the `n` bytes encoded at {@link end}: one frame. */
  commit(n: number): void {
    this.#len += n
    this.#frames++
    this.framesQueued++
    const w = this.#wakeWriter
    if (w !== undefined) {
      this.#wakeWriter = undefined
      w()
    }
  }

  /**
   * Waits until there may be room: the writer's next swap empties the
   * buffer (into which any one frame fits), or the buffer closes. At once
   * when it is empty or closed already. Interruptible.
   */
  readonly awaitRoom: Effect.Effect<void> = Effect.suspend(() => {
    if (this.#len === 0 || this.#closed) return Effect.void
    return Effect.async<void>((resume) => {
      const wake = () => resume(Effect.void)
      this.#roomWaiters.push(wake)
      return Effect.sync(() => {
        const i = this.#roomWaiters.indexOf(wake)
        if (i >= 0) this.#roomWaiters.splice(i, 1)
      })
    })
  })

  /**
   * For the writer: waits until frames are encoded and takes them all as
   * one view to write (valid until the next `take`); `undefined` once
   * closed and drained.
   */
  readonly take: Effect.Effect<Uint8Array | undefined> = Effect.suspend(() => {
    if (this.#len > 0) return Effect.succeed(this.#swap())
    if (this.#closed) return Effect.succeed(undefined)
    return Effect.zipRight(
      Effect.async<void>((resume) => {
        this.#wakeWriter = () => resume(Effect.void)
        return Effect.sync(() => {
          this.#wakeWriter = undefined
        })
      }),
      this.take,
    )
  })

  /**
   * Puts `frames` whole frames (`bytes`) before everything encoded so far,
   * whatever the limits: a new session's joins, ahead of what senders
   * queued while it was being opened.
   */
  prepend(bytes: Uint8Array, frames: number): void {
    if (this.#closed || bytes.length === 0) return
    const len = this.#len
    if (this.#fill.length < len + bytes.length) this.#grow(len + bytes.length)
    this.#fill.copyWithin(bytes.length, 0, len)
    this.#fill.set(bytes, 0)
    this.#len = len + bytes.length
    this.#frames += frames
    this.framesQueued += frames
    const w = this.#wakeWriter
    if (w !== undefined) {
      this.#wakeWriter = undefined
      w()
    }
  }

  /**
   * Writes `nameField` (32 bytes) as the sender of every frame encoded so
   * far (a new session took another private name).
   */
  renameSender(nameField: Uint8Array): void {
    const b = this.#fill
    for (let o = 0; o + HEADER_SIZE < this.#len; o += frameLengthAt(b, o)) b.set(nameField, o + 4)
  }

  /** Appends the last frame (the disconnect), whatever the limits, and closes. */
  finish(last: Uint8Array): void {
    if (this.#closed) return
    if (this.#fill.length < this.#len + last.length) this.#grow(this.#len + last.length)
    this.#fill.set(last, this.#len)
    this.commit(last.length)
    this.close()
  }

  /** Closes: nothing more is accepted; the writer drains what is encoded, then ends. */
  close(): void {
    this.#closed = true
    this.#wakeAll()
  }

  /** Drops what is encoded and closes (after a failure). */
  abort(): void {
    this.#len = 0
    this.#frames = 0
    this.close()
  }

  #swap(): Uint8Array {
    // The writer calls `take` only after its previous write completed, so
    // the buffer written last time is free again: it becomes the one to fill.
    const full = this.#fill
    const out = full.subarray(0, this.#len)
    this.#fill = this.#spare ?? new Uint8Array(INITIAL_BYTES)
    this.#spare = full
    this.#len = 0
    this.#frames = 0
    this.writes++
    this.#wakeAll()
    return out
  }

  #grow(need: number): void {
    let size = this.#fill.length
    while (size < need) size *= 2
    const next = new Uint8Array(size)
    next.set(this.#fill.subarray(0, this.#len))
    this.#fill = next
  }

  #wakeAll(): void {
    const w = this.#wakeWriter
    if (w !== undefined && this.#closed) {
      this.#wakeWriter = undefined
      w()
    }
    const waiters = this.#roomWaiters
    if (waiters.length === 0) return
    this.#roomWaiters = []
    for (const wake of waiters) wake()
  }
}
