/**
 * An Effect that tries its work synchronously first: the hot calls of the
 * API (`multicast`, `multicastMany`) are Effects whose common case —
 * credit in the window, room in the buffer — needs no waiting at all.
 *
 * Run as an Effect (forked, piped, repeated, passed to a combinator) it is
 * one `commit` step: the synchronous try, then the rest only when there is
 * a rest. Yielded in `Effect.gen` (`yield* conn.multicast(m)`, what a user
 * writes first), it does not go through the runtime at all when the try
 * succeeds: `yield*` asks it for an iterator, and it answers one that is
 * already done. Each `yield*` through the runtime costs a few hundred
 * nanoseconds (the generator yields, the fiber runs the effect, the
 * generator is resumed) — more than encoding a 1 KB message — so this is
 * what makes the plain call cheap. Only when the try does not finish the
 * work (the window or the buffer is full, or the message is invalid) does
 * `yield*` hand the runtime the Effect that does the rest.
 *
 * Laziness holds: the try runs when the Effect is run or yielded, never
 * when it is made, and every run or `yield*` tries again. What a fiber
 * gives up is the runtime's cooperative yield between the sends that
 * succeed at once; it still yields whenever a send waits, which the flow
 * window and the outbox limits bound (at most a window's worth of
 * messages, or the outbox's, between two waits).
 *
 * @module
 */
import { Effect, Effectable } from "effect"
import { YieldWrap } from "effect/Utils"

/** What `yield*` gets when the synchronous try did all the work. */
const DONE: IteratorResult<never, void> = { done: true, value: undefined }

// Shared: it holds no state (a `yield*` calls `next` once and reads DONE).
const doneIterator: Effect.EffectGenerator<Effect.Effect<void, never>> = { next: () => DONE }

// What `yield*` gets otherwise: yields the rest once, then returns its value.
class Rest<E> implements Effect.EffectGenerator<Effect.Effect<void, E>> {
  #yielded = false
  readonly #rest: Effect.Effect<void, E>
  constructor(rest: Effect.Effect<void, E>) {
    this.#rest = rest
  }
  next(value?: unknown): IteratorResult<YieldWrap<Effect.Effect<void, E>>, void> {
    if (this.#yielded) return { done: true, value: value as void }
    this.#yielded = true
    return { done: false, value: new YieldWrap(this.#rest) }
  }
  // As Effect's own single-shot iterator: a generator closed or thrown into
  // while it waits here ends or throws as if it had yielded the Effect itself.
  return(value?: unknown): IteratorResult<never, void> {
    return { done: true, value: value as void }
  }
  throw(e: unknown): never {
    throw e
  }
}

class SyncFirst<E> extends Effectable.Class<void, E> {
  readonly #step: () => Effect.Effect<void, E> | undefined
  constructor(step: () => Effect.Effect<void, E> | undefined) {
    super()
    this.#step = step
  }
  commit(): Effect.Effect<void, E> {
    return this.#step() ?? Effect.void
  }
  override [Symbol.iterator](): Effect.EffectGenerator<Effect.Effect<void, E>> {
    const rest = this.#step()
    return rest === undefined ? doneIterator : new Rest(rest)
  }
}

/**
 * An Effect of `step`: each run (or `yield*`) calls `step`, which does the
 * work synchronously when it can and answers `undefined`, or answers the
 * Effect that does the rest (waits, or fails).
 *
 * @since 0.2.0
 * @category constructors
 */
export const syncFirst = <E>(step: () => Effect.Effect<void, E> | undefined): Effect.Effect<void, E> =>
  new SyncFirst(step)
