/**
 * The life of a connection as one state machine: a `Ref` of a tagged
 * union, changed only by the named transitions below. Each transition is a
 * pure step inside `Ref.modify` that answers what the caller must do next;
 * the effects (closing the socket, waking fibers) run after it, in
 * connection.ts.
 *
 * @module
 */
import { Effect, Ref } from "effect"
import type { ConnectionError } from "./errors.ts"

/**
 * The life of a connection.
 *
 * - `Open`: usable.
 * - `Failed`: the first failure was recorded; every call fails with `error`.
 * - `Closed`: closed locally (or closed after a failure); every call fails
 *   with `error` — the earlier failure, or a `Closed` error.
 *
 * @since 0.1.0
 * @category models
 */
export type ConnectionState =
  | { readonly _tag: "Open" }
  | { readonly _tag: "Failed"; readonly error: ConnectionError }
  | { readonly _tag: "Closed"; readonly error: ConnectionError }

/**
 * What closing must do, as decided by the {@link Lifecycle.close} transition.
 *
 * - `Graceful`: the connection was open: flush, send the disconnect, wait
 *   (bounded) for the daemon to close its side, then release.
 * - `AfterFailure`: it had failed: release at once.
 * - `Already`: another close ran or runs: wait for it.
 *
 * @since 0.2.0
 * @category models
 */
export type CloseStep = "Graceful" | "AfterFailure" | "Already"

const OPEN: ConnectionState = { _tag: "Open" }

/**
 * The state of one connection and its transitions.
 *
 * @since 0.2.0
 * @category models
 */
export class Lifecycle {
  readonly #ref: Ref.Ref<ConnectionState>

  private constructor(ref: Ref.Ref<ConnectionState>) {
    this.#ref = ref
  }

  /** A lifecycle in the `Open` state. */
  static readonly make: Effect.Effect<Lifecycle> = Effect.map(Ref.make(OPEN), (ref) => new Lifecycle(ref))

  /** The state now. */
  get get(): Effect.Effect<ConnectionState> {
    return Ref.get(this.#ref)
  }

  /** Open → Failed(error); answers whether this was the first failure. */
  fail(error: ConnectionError): Effect.Effect<boolean> {
    return Ref.modify(this.#ref, (s): readonly [boolean, ConnectionState] => {
      switch (s._tag) {
        case "Open":
          return [true, { _tag: "Failed", error }]
        case "Failed":
        case "Closed":
          return [false, s]
      }
    })
  }

  /** Open → Closed(closed), Failed → Closed(its error); answers the step to run. */
  close(closed: ConnectionError): Effect.Effect<CloseStep> {
    return Ref.modify(this.#ref, (s): readonly [CloseStep, ConnectionState] => {
      switch (s._tag) {
        case "Open":
          return ["Graceful", { _tag: "Closed", error: closed }]
        case "Failed":
          return ["AfterFailure", { _tag: "Closed", error: s.error }]
        case "Closed":
          return ["Already", s]
      }
    })
  }

  /** The sticky error: the recorded one, or `closing` while the state is still `Open`. */
  sticky(closing: ConnectionError): Effect.Effect<ConnectionError> {
    return Effect.map(Ref.get(this.#ref), (s) => (s._tag === "Open" ? closing : s.error))
  }
}
