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
import type { ConnectionError } from "../errors.ts"

/**
 * The life of a connection.
 *
 * - `Open`: usable.
 * - `Reconnecting`: the session was lost (`cause`) and, with the `reconnect`
 *   option, a new one is being opened. Receivers and subscribers wait;
 *   senders wait, or fail with `error` (marked `reconnecting`) under
 *   `whileReconnecting: "fail"`; requests pending at the loss failed with
 *   `error`.
 * - `Failed`: the first failure was recorded; every call fails with `error`.
 * - `Closed`: closed locally (or closed after a failure); every call fails
 *   with `error` — the earlier failure, or a `Closed` error.
 *
 * @since 0.1.0
 * @category models
 */
export type ConnectionState =
  | { readonly _tag: "Open" }
  | { readonly _tag: "Reconnecting"; readonly cause: ConnectionError; readonly error: ConnectionError }
  | { readonly _tag: "Failed"; readonly error: ConnectionError }
  | { readonly _tag: "Closed"; readonly error: ConnectionError }

/**
 * What closing must do, as decided by the {@link Lifecycle.close} transition.
 *
 * - `Graceful`: the connection was open: flush, send the disconnect, wait
 *   (bounded) for the daemon to close its side, then release.
 * - `AfterFailure`: it had failed: release at once.
 * - `DuringReconnect`: it was reconnecting: wake everything blocked with the
 *   `Closed` error, stop reconnecting, release.
 * - `Already`: another close ran or runs: wait for it.
 *
 * @since 0.2.0
 * @category models
 */
export type CloseStep = "Graceful" | "AfterFailure" | "DuringReconnect" | "Already"

const OPEN: ConnectionState = { _tag: "Open" }

/**
 * What a lost session must lead to, as decided by the {@link Lifecycle.lose}
 * transition.
 *
 * - `Reconnect`: the connection was open and reconnects.
 * - `Fail`: the connection was open and fails for good (no `reconnect`).
 * - `Ignore`: it had already failed, was closed, or is reconnecting.
 *
 * @since 0.2.0
 * @category models
 */
export type LossStep = "Reconnect" | "Fail" | "Ignore"

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

  /**
   * Open → Reconnecting(cause, gap) when `gap` is given (the connection
   * reconnects; `gap` is what calls fail with meanwhile), else Open →
   * Failed(cause); answers the step to run.
   */
  lose(cause: ConnectionError, gap: ConnectionError | undefined): Effect.Effect<LossStep> {
    return Ref.modify(this.#ref, (s): readonly [LossStep, ConnectionState] => {
      switch (s._tag) {
        case "Open":
          return gap === undefined
            ? ["Fail", { _tag: "Failed", error: cause }]
            : ["Reconnect", { _tag: "Reconnecting", cause, error: gap }]
        case "Reconnecting":
        case "Failed":
        case "Closed":
          return ["Ignore", s]
      }
    })
  }

  /** Reconnecting → Open; answers whether it was reconnecting (not closed meanwhile). */
  get resume(): Effect.Effect<boolean> {
    return Ref.modify(this.#ref, (s): readonly [boolean, ConnectionState] => {
      switch (s._tag) {
        case "Reconnecting":
          return [true, OPEN]
        case "Open":
        case "Failed":
        case "Closed":
          return [false, s]
      }
    })
  }

  /**
   * Open or Reconnecting → Failed(error) (reconnecting gave up); answers
   * whether this was the first failure.
   */
  fail(error: ConnectionError): Effect.Effect<boolean> {
    return Ref.modify(this.#ref, (s): readonly [boolean, ConnectionState] => {
      switch (s._tag) {
        case "Open":
        case "Reconnecting":
          return [true, { _tag: "Failed", error }]
        case "Failed":
        case "Closed":
          return [false, s]
      }
    })
  }

  /**
   * Open or Reconnecting → Closed(closed), Failed → Closed(its error);
   * answers the step to run.
   */
  close(closed: ConnectionError): Effect.Effect<CloseStep> {
    return Ref.modify(this.#ref, (s): readonly [CloseStep, ConnectionState] => {
      switch (s._tag) {
        case "Open":
          return ["Graceful", { _tag: "Closed", error: closed }]
        case "Reconnecting":
          return ["DuringReconnect", { _tag: "Closed", error: closed }]
        case "Failed":
          return ["AfterFailure", { _tag: "Closed", error: s.error }]
        case "Closed":
          return ["Already", s]
      }
    })
  }

  /**
   * The sticky error: the recorded one, `closing` while the state is still
   * `Open`, or the gap's error while reconnecting.
   */
  sticky(closing: ConnectionError): Effect.Effect<ConnectionError> {
    return Effect.map(Ref.get(this.#ref), (s) => (s._tag === "Open" ? closing : s.error))
  }
}
