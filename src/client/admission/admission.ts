/**
 * Admission: the one place that decides whether a frame goes out now or
 * waits. A frame is admitted when the flow window's credit covers its cost
 * (counting.ts's one rule) and the coalescing buffer has room; it is then
 * encoded in place, in the same synchronous step.
 *
 * - The synchronous step, {@link Admission.tryAdmit}, is the fast path's
 *   success case: no Effect, no allocation. The sender's one-step path
 *   (send.ts) is the same step specialised to one cached destination, and
 *   asks {@link Admission.isOpen} the same question first.
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
 * The admission outlives sessions and keeps no copy of where frames go: it
 * reads its {@link Target} — the current session's buffer, window and
 * private group, or the gap buffers while reconnecting — from the
 * connection's one state value at each step, so waiting senders carry on in
 * a new session.
 *
 * @module
 */
import { Effect } from "effect"
import { encodeInto, frameBound } from "../../protocol/encode.ts"
import type { ConnectionError } from "../core/errors.ts"
import type { Counting } from "./counting.ts"
import type { PreparedFrame } from "./frames.ts"
import type { Outbound } from "./outbound.ts"
import type { FlowControl } from "./window.ts"

// A sender in the waiter list, with its frame; `wake` is set while it waits
// for its turn; `admitted` once the sender before it admitted its frame too.
interface Turn {
  readonly p: PreparedFrame
  wake: (() => void) | undefined
  admitted: boolean
}

/**
 * Where frames go: a buffer, its flow window, and the private group whose
 * name (`nameField`, 32 zero-padded bytes) goes into each frame. A session
 * is one; so are the gap buffers while reconnecting.
 *
 * @since 0.3.0
 * @category models
 */
export interface Target {
  readonly out: Outbound
  readonly flow: FlowControl
  readonly privateGroup: string
  readonly nameField: Uint8Array
}

/**
 * Where a connection's frames go now, and the one decision of whether each
 * goes at once or waits its turn.
 *
 * @since 0.3.0
 * @category models
 */
export class Admission {
  readonly #target: () => Target
  readonly #counting: Counting
  readonly #failSticky: Effect.Effect<never, ConnectionError>
  readonly #turns: Array<Turn> = []

  /** `target` answers where frames go now (read from the connection's state at each step). */
  constructor(target: () => Target, counting: Counting, failSticky: Effect.Effect<never, ConnectionError>) {
    this.#target = target
    this.#counting = counting
    this.#failSticky = failSticky
  }

  /** Where frames go now. */
  get target(): Target {
    return this.#target()
  }

  /** Senders in the waiter list. */
  get waiting(): number {
    return this.#turns.length
  }

  /** Whether a frame may try to go at once to `to`: its buffer is open and nobody waits (first come, first served). */
  isOpen(to: Target): boolean {
    return this.#turns.length === 0 && !to.out.closed
  }

  /**
   * The synchronous step: counts `p` and encodes it in place when the
   * window's credit and the buffer's room allow; answers whether it did.
   * Unless `ahead` (a best-effort frame that never waits), it does not go
   * ahead of waiting senders.
   */
  tryAdmit(p: PreparedFrame, ahead = false): boolean {
    const to = this.#target()
    if (!(ahead ? !to.out.closed : this.isOpen(to))) return false
    return this.#encode(p, to)
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
    if (items.length === 0) return this.#target().out.closed ? this.#failSticky : Effect.void
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
      const turn: Turn = { p, wake: undefined, admitted: false }
      this.#turns.push(turn)
      return Effect.ensuring(
        Effect.zipRight(this.#awaitTurn(turn), Effect.suspend(() => turn.admitted ? Effect.void : this.#first(p))),
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
      const to = this.#target()
      const { flow, out } = to
      if (out.closed || flow.ended) return this.#failSticky
      if (this.#encode(p, to)) return Effect.void
      if (p.cost > flow.credit) return Effect.zipRight(flow.acquire(p.cost), attempt)
      return Effect.zipRight(out.awaitRoom, attempt)
    })
    return attempt
  }

  // Counts `p`, and encodes it into `to` when credit and room allow.
  #encode(p: PreparedFrame, to: Target): boolean {
    const { flow, out } = to
    this.#counting.count(p, flow, to.privateGroup)
    const buf = out.room(frameBound(p))
    if (buf === undefined || !flow.tryUse(p.cost)) return false
    out.commit(encodeInto(buf, out.end, to.nameField, p))
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
  // While the senders waiting next can go at once, their frames are admitted
  // here, in list order, and they are woken done: one pass instead of one
  // fiber hop per waiting frame. The first that cannot go is woken to wait
  // for what it lacks. (A waiter not yet parked in #awaitTurn has no `wake`
  // and takes its turn itself.)
  #leave(turn: Turn): void {
    const i = this.#turns.indexOf(turn)
    if (i < 0) return
    this.#turns.splice(i, 1)
    if (i !== 0) return
    while (this.#turns.length > 0) {
      const next = this.#turns[0]
      const wake = next.wake
      if (wake === undefined) return
      next.wake = undefined
      const to = this.#target()
      if (!to.out.closed && !to.flow.ended && this.#encode(next.p, to)) {
        next.admitted = true
        this.#turns.shift()
        wake()
        continue
      }
      wake()
      return
    }
  }
}
