/**
 * The flow window: an Effect `Semaphore` bounding the messages a connection
 * has multicast to groups it belongs to and not yet received back.
 *
 * - Adaptive: `budget` permits (500); a message takes as many permits as the
 *   largest destination group it belongs to has members (1 when unknown or
 *   when only its own private group is a destination), capped at the budget.
 * - Fixed: `size` permits; a message takes one.
 *
 * What counts: a multicast without SELF_DISCARD that names a group this
 * connection had joined when the multicast was queued, or its own private
 * group — exactly the messages the daemon delivers back to the sender.
 * SELF_DISCARD messages never come back and are not counted; neither are
 * messages to groups the sender is not a member of (open-group sends).
 *
 * A daemon delivers a sender's own messages back in the order sent, so the
 * permits of each counted message are kept in a FIFO and released when the
 * next own message arrives (or a daemon's reject of one of them).
 *
 * Cheap on the hot path: permits are taken from the semaphore in runs (up
 * to a quarter of the window at once) into a *credit* of this connection,
 * and a send that finds enough credit commits synchronously, with no Effect
 * step. The reader gives returned permits back once per socket read: to
 * the semaphore when a sender waits for it, else straight to the credit.
 * The semaphore stays the bound: permits in flight plus credit are permits
 * taken from it, so in-flight permits never exceed the window.
 *
 * @module
 */
import { Effect } from "effect"
import type { FlowWindow } from "../options.ts"

/**
 * The window of one connection, with gauges for tests and monitoring.
 *
 * @since 0.1.0
 * @category models
 */
export class FlowControl {
  readonly window: FlowWindow
  /** Permits in total (0 when the window is off). */
  readonly capacity: number
  readonly #sem: Effect.Semaphore | undefined
  #costs: Array<number> = []
  // Per in-flight message: the one join it counts through (see commit), or undefined.
  #via: Array<string | undefined> = []
  #head = 0
  #inUse = 0
  #peakInUse = 0
  #peakInFlight = 0
  // Permits taken from the semaphore and not yet committed to a message.
  #credit = 0
  // Senders waiting in the semaphore (admission lets only its first waiter wait here).
  #waiting = 0
  // Permits the senders waiting in the semaphore ask for, together.
  #asked = 0
  #isEnded = false

  constructor(window: FlowWindow) {
    this.window = window
    switch (window._tag) {
      case "Adaptive":
        this.capacity = window.budget
        break
      case "Fixed":
        this.capacity = window.size
        break
      case "Off":
        this.capacity = 0
        break
    }
    this.#sem = this.capacity > 0 ? Effect.unsafeMakeSemaphore(this.capacity) : undefined
  }

  /** Whether own messages are counted at all. */
  get enabled(): boolean {
    return this.#sem !== undefined
  }

  /** Whether the window's session ended ({@link end}). */
  get ended(): boolean {
    return this.#isEnded
  }

  /** Permits held by messages in flight. */
  get inUse(): number {
    return this.#inUse
  }

  /** The highest {@link inUse} seen. */
  get peakInUse(): number {
    return this.#peakInUse
  }

  /** Permits taken from the semaphore and not yet used by a message. */
  get credit(): number {
    return this.#credit
  }

  /** Senders waiting in the semaphore. */
  get waiting(): number {
    return this.#waiting
  }

  /** Own messages in flight. */
  get inFlight(): number {
    return this.#costs.length - this.#head
  }

  /** The highest {@link inFlight} seen. */
  get peakInFlight(): number {
    return this.#peakInFlight
  }

  /**
   * Permits a message to groups of `groupSize` members (the largest counted
   * destination) takes; call only for counted messages.
   */
  costOf(groupSize: number): number {
    switch (this.window._tag) {
      case "Adaptive":
        return Math.min(this.capacity, Math.max(1, groupSize))
      case "Fixed":
        return 1
      case "Off":
        return 0
    }
  }

  /** Largest permit count taken from the semaphore at once. */
  get batchLimit(): number {
    return Math.max(1, Math.floor(this.capacity / 4))
  }

  /**
   * Uses `cost` permits of the credit, synchronously, when the credit has
   * them; answers whether it did. Follow with {@link commit}.
   */
  tryUse(cost: number): boolean {
    if (cost === 0) return true
    if (this.#credit < cost) return false
    this.#credit -= cost
    return true
  }

  /**
   * Waits (interruptibly) until the semaphore grants `cost` permits, and
   * adds them to the credit — with up to a quarter of the window more when
   * that many are free at once, so the sends that follow find credit. The
   * credit held before is given back first, so a large cost never waits on
   * permits this connection holds itself. Returns at once, with no permits,
   * once the window {@link end}ed. Follow with {@link tryUse}.
   */
  acquire(cost: number): Effect.Effect<void> {
    const sem = this.#sem
    if (sem === undefined || cost === 0 || this.#isEnded) return Effect.void
    return Effect.uninterruptibleMask((restore) =>
      Effect.suspend(() => {
        const back = this.#credit
        this.#credit = 0
        // Permits free in the semaphore: everything not in flight (the credit was just given back).
        const free = this.capacity - this.#inUse
        const n = free >= cost ? Math.max(cost, Math.min(free, this.batchLimit)) : cost
        this.#waiting++
        this.#asked += n
        return Effect.zipRight(
          back > 0 ? sem.release(back) : Effect.void,
          Effect.ensuring(
            Effect.map(restore(sem.take(n)), () => {
              this.#credit += n
            }),
            Effect.sync(() => {
              this.#waiting--
              this.#asked -= n
            }),
          ),
        )
      })
    )
  }

  /**
   * Gives `n` returned permits back: to the semaphore when a sender waits
   * there, else to the credit (synchronously; the answer is then
   * `Effect.void`).
   */
  giveBack(n: number): Effect.Effect<unknown> {
    if (n <= 0 || this.#sem === undefined) return Effect.void
    if (this.#waiting === 0) {
      this.#credit += n
      return Effect.void
    }
    return this.#sem.release(n)
  }

  /**
   * Records a queued, counted message holding `cost` permits (0 when it was
   * not expected to count when its permits were taken). Synchronous, so it
   * happens atomically with queueing the frame. `via` names the one join
   * the message counts through, when only one does (see {@link forget}).
   */
  commit(cost: number, via?: string): void {
    this.#costs.push(cost)
    this.#via.push(via)
    this.#inUse += cost
    if (this.#inUse > this.#peakInUse) this.#peakInUse = this.#inUse
    const n = this.#costs.length - this.#head
    if (n > this.#peakInFlight) this.#peakInFlight = n
  }

  /**
   * An own message came back: forgets the oldest in-flight message and
   * answers the permits to release (0 when nothing was in flight).
   */
  returned(): number {
    if (this.#head >= this.#costs.length) return 0
    const cost = this.#costs[this.#head++]
    this.#inUse -= cost
    if (this.#head === this.#costs.length) {
      this.#costs = []
      this.#via = []
      this.#head = 0
    } else if (this.#head > 1024 && this.#head * 2 > this.#costs.length) {
      this.#costs = this.#costs.slice(this.#head)
      this.#via = this.#via.slice(this.#head)
      this.#head = 0
    }
    return cost
  }

  /**
   * A join was refused: the in-flight messages that counted only through it
   * will never come back. Forgets them and answers the permits to release.
   */
  forget(via: string): number {
    let released = 0
    let w = this.#head
    for (let r = this.#head; r < this.#costs.length; r++) {
      if (this.#via[r] === via) {
        released += this.#costs[r]
        continue
      }
      this.#costs[w] = this.#costs[r]
      this.#via[w] = this.#via[r]
      w++
    }
    this.#costs.length = w
    this.#via.length = w
    this.#inUse -= released
    return released
  }

  /**
   * The window's session ended (lost, failed or closed): each sender
   * waiting in the semaphore is granted exactly the permits it asked for,
   * so it wakes (and finds the buffer closed); none waits again. Nothing
   * else is resized: the window is dead, its bound no longer matters.
   */
  readonly end: Effect.Effect<void> = Effect.suspend(() => {
    if (this.#isEnded) return Effect.void
    this.#isEnded = true
    return this.#sem === undefined || this.#asked === 0 ? Effect.void : this.#sem.release(this.#asked)
  })
}
