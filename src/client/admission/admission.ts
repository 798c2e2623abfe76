/**
 * Admission: the one place that decides whether a frame goes out now or
 * waits. A frame is admitted when the flow window's credit covers its cost
 * (counting.ts's one rule) and the coalescing buffer has room; it is then
 * encoded in place, in the same synchronous step.
 *
 * - The synchronous step, {@link Admission.tryAdmit}, is the fast path's
 *   success case: no Effect, no allocation. The sender's one-step path
 *   (send.ts) is the same step specialised to one cached destination, and
 *   asks {@link Admission.open} the same question first.
 * - A frame that cannot go now joins the **one waiter list**, first come,
 *   first served; while anyone waits, nobody skips ahead (only a
 *   best-effort frame from a finalizer may, and it never waits). The first
 *   in the list waits for what it lacks — permits from the window's
 *   `Semaphore` (the bound of the flow window), or the writer's next swap
 *   of the buffer — counts its cost again, and tries again; when it is
 *   admitted, the next one takes its turn.
 * - A frame is never dropped or failed for lack of room or credit; it fails
 *   only with the sticky error once the buffer it would go to is closed
 *   (and not replaced by a new session's).
 *
 * The admission outlives sessions: {@link Admission.move} points it at a new
 * session's buffer, window and private group, so the waiting senders carry
 * on there.
 *
 * @module
 */
import { Effect } from "effect"
import { encodeInto, frameBound, groupEntry } from "../../protocol/encode.ts"
import type { ConnectionError } from "../errors.ts"
import type { Counting } from "./counting.ts"
import type { PreparedFrame } from "./frames.ts"
import type { Outbound } from "./outbound.ts"
import type { FlowControl } from "./window.ts"

// A sender in the waiter list; `wake` is set while it waits for its turn.
interface Turn {
  wake: (() => void) | undefined
}

/**
 * Where a connection's frames go now, and the one decision of whether each
 * goes at once or waits its turn.
 *
 * @since 0.3.0
 * @category models
 */
export class Admission {
  #out: Outbound
  #flow: FlowControl
  #privateGroup: string
  #nameField: Uint8Array
  readonly #counting: Counting
  readonly #failSticky: Effect.Effect<never, ConnectionError>
  readonly #turns: Array<Turn> = []

  constructor(
    out: Outbound,
    flow: FlowControl,
    privateGroup: string,
    counting: Counting,
    failSticky: Effect.Effect<never, ConnectionError>,
  ) {
    this.#out = out
    this.#flow = flow
    this.#privateGroup = privateGroup
    this.#nameField = groupEntry(privateGroup)
    this.#counting = counting
    this.#failSticky = failSticky
  }

  /** The buffer frames go to now. */
  get out(): Outbound {
    return this.#out
  }

  /** The flow window in force now. */
  get flow(): FlowControl {
    return this.#flow
  }

  /** The private group whose name goes into each frame. */
  get privateGroup(): string {
    return this.#privateGroup
  }

  /** {@link privateGroup} as a 32-byte, zero-padded frame field. */
  get nameField(): Uint8Array {
    return this.#nameField
  }

  /** Senders in the waiter list. */
  get waiting(): number {
    return this.#turns.length
  }

  /** Whether a frame may try to go at once: the buffer is open and nobody waits (first come, first served). */
  get open(): boolean {
    return this.#turns.length === 0 && !this.#out.closed
  }

  /** Points the admission at another session's buffer, window and private group. */
  move(out: Outbound, flow: FlowControl, privateGroup: string): void {
    this.#out = out
    this.#flow = flow
    if (privateGroup !== this.#privateGroup) {
      this.#privateGroup = privateGroup
      this.#nameField = groupEntry(privateGroup)
    }
  }

  /**
   * The synchronous step: counts `p` and encodes it in place when the
   * window's credit and the buffer's room allow; answers whether it did.
   * Unless `ahead` (a best-effort frame that never waits), it does not go
   * ahead of waiting senders.
   */
  tryAdmit(p: PreparedFrame, ahead = false): boolean {
    if (!(ahead ? !this.#out.closed : this.open)) return false
    return this.#encode(p)
  }

  /** Admits `p`: at once when it can go, else after waiting its turn. */
  admit(p: PreparedFrame): Effect.Effect<void, ConnectionError> {
    return this.tryAdmit(p) ? Effect.void : this.wait(p)
  }

  /**
   * Admits frames in order, each at once while it can go, waiting where it
   * cannot. None at all still fails on a closed connection.
   */
  admitAll(items: ReadonlyArray<PreparedFrame>): Effect.Effect<void, ConnectionError> {
    if (items.length === 0) return this.#out.closed ? this.#failSticky : Effect.void
    const from = (i: number): Effect.Effect<void, ConnectionError> => {
      while (i < items.length && this.tryAdmit(items[i])) i++
      if (i === items.length) return Effect.void
      const k = i
      return Effect.flatMap(this.wait(items[k]), () => from(k + 1))
    }
    return from(0)
  }

  /**
   * Joins the waiter list with `p` and, once first, waits for what it lacks
   * until it is admitted. Interrupted, it admits nothing and leaves the
   * list; permits it took stay in the connection's credit.
   */
  wait(p: PreparedFrame): Effect.Effect<void, ConnectionError> {
    return Effect.suspend(() => {
      const turn: Turn = { wake: undefined }
      this.#turns.push(turn)
      return Effect.ensuring(
        Effect.zipRight(this.#awaitTurn(turn), this.#first(p)),
        Effect.sync(() => this.#leave(turn)),
      )
    })
  }

  // The first in the list: counts `p` again (what it belongs to may have
  // changed while it waited), then waits for credit or room, as often as
  // needed. A buffer that closed meanwhile may have been replaced by a new
  // session's: it fails only when the current one is closed.
  #first(p: PreparedFrame): Effect.Effect<void, ConnectionError> {
    const attempt: Effect.Effect<void, ConnectionError> = Effect.suspend(() => {
      const out = this.#out
      const flow = this.#flow
      if (out.closed || flow.ended) return this.#failSticky
      if (this.#encode(p)) return Effect.void
      if (p.cost > flow.credit) return Effect.zipRight(flow.acquire(p.cost), attempt)
      return Effect.zipRight(out.awaitRoom, attempt)
    })
    return attempt
  }

  // Counts `p`, and encodes it when credit and room allow.
  #encode(p: PreparedFrame): boolean {
    const out = this.#out
    const flow = this.#flow
    this.#counting.count(p, flow, this.#privateGroup)
    const buf = out.room(frameBound(p))
    if (buf === undefined || !flow.tryUse(p.cost)) return false
    out.commit(encodeInto(buf, out.end, this.#nameField, p))
    this.#counting.committed(p, flow)
    return true
  }

  #awaitTurn(turn: Turn): Effect.Effect<void> {
    if (this.#turns[0] === turn) return Effect.void
    return Effect.async<void>((resume) => {
      turn.wake = () => resume(Effect.void)
      return Effect.sync(() => {
        turn.wake = undefined
      })
    })
  }

  // Leaves the list (admitted, failed or interrupted); the next one's turn.
  #leave(turn: Turn): void {
    const i = this.#turns.indexOf(turn)
    if (i < 0) return
    this.#turns.splice(i, 1)
    if (i !== 0) return
    const next = this.#turns[0]
    if (next?.wake !== undefined) {
      const wake = next.wake
      next.wake = undefined
      wake()
    }
  }
}
