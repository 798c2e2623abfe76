/**
 * The life of a connection as one value: a tagged union that holds the
 * current session itself (and, while reconnecting, the buffers senders
 * queue into meanwhile), changed only by the named transitions below. Each
 * transition is a pure step that answers what the caller must do next; the
 * effects (closing the socket, waking fibers) run after it.
 *
 * The value lives in a `MutableRef`, Effect's synchronous reference: the
 * send path reads the current session's buffer and window in the one
 * synchronous step of a send (no Effect), and the connection's `privateGroup`
 * and the like are plain getters. Every transition is one synchronous
 * read-modify-write, so it is as atomic as `Ref.modify`.
 *
 * The sticky error is the state's `error`: everything that fails with it
 * reads it here.
 *
 * @module
 */
import { Effect, MutableRef } from "effect"
import type { ConnectionError } from "./errors.ts"

/**
 * The life of a connection, as its users see it.
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
 * The whole state: {@link ConnectionState} with the session `S` it is
 * about, and while reconnecting the gap buffers `G` senders queue into
 * (none under `whileReconnecting: "fail"`).
 *
 * @since 0.3.0
 * @category models
 */
export type Life<S, G> =
  | { readonly _tag: "Open"; readonly session: S }
  | {
    readonly _tag: "Reconnecting"
    readonly session: S
    readonly gap: G | undefined
    readonly cause: ConnectionError
    readonly error: ConnectionError
  }
  | { readonly _tag: "Failed"; readonly session: S; readonly error: ConnectionError }
  | { readonly _tag: "Closed"; readonly session: S; readonly error: ConnectionError }

/**
 * What closing must do, as decided by the {@link Lifecycle.close} transition.
 *
 * - `Graceful`: the connection was open: flush, send the disconnect (KILL),
 *   wait (bounded) for the daemon to close its side, then release.
 * - `AfterFailure`: it had failed: release at once.
 * - `DuringReconnect`: it was reconnecting: wake everything blocked with the
 *   `Closed` error, stop reconnecting, release.
 * - `Already`: another close ran or runs: wait for it.
 *
 * @since 0.2.0
 * @category models
 */
export type CloseStep = "Graceful" | "AfterFailure" | "DuringReconnect" | "Already"

/**
 * What a lost session must lead to, as decided by the {@link Lifecycle.lose}
 * transition.
 *
 * - `Reconnect`: the connection was open and reconnects.
 * - `Fail`: the connection was open and fails for good (no `reconnect`).
 * - `Ignore`: it had already failed, was closed, is reconnecting, or `s`
 *   is not its current session.
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
export class Lifecycle<S, G> {
  readonly #ref: MutableRef.MutableRef<Life<S, G>>

  /** A lifecycle `Open` on `session`. */
  constructor(session: S) {
    this.#ref = MutableRef.make<Life<S, G>>({ _tag: "Open", session })
  }

  /** The whole state now (synchronous). */
  get now(): Life<S, G> {
    return MutableRef.get(this.#ref)
  }

  /** The session the state is about: the open one, the lost one, or the last one. */
  get session(): S {
    return MutableRef.get(this.#ref).session
  }

  /** The state now, as users see it. */
  readonly get: Effect.Effect<ConnectionState> = Effect.sync(() => {
    const s = MutableRef.get(this.#ref)
    switch (s._tag) {
      case "Open":
        return { _tag: "Open" }
      case "Reconnecting":
        return { _tag: "Reconnecting", cause: s.cause, error: s.error }
      case "Failed":
      case "Closed":
        return { _tag: s._tag, error: s.error }
    }
  })

  #modify<A>(f: (s: Life<S, G>) => readonly [A, Life<S, G>]): A {
    const [a, next] = f(MutableRef.get(this.#ref))
    MutableRef.set(this.#ref, next)
    return a
  }

  /**
   * Session `lost` is gone. When it is the open one: Open →
   * Reconnecting(cause, error: `gapError`, `gap`) when `gapError` is given
   * (the connection reconnects; senders queue into `gap` meanwhile, or fail
   * with `gapError` when there is none), else Open → Failed(cause). Answers
   * the step to run.
   */
  lose(lost: S, cause: ConnectionError, gapError: ConnectionError | undefined, gap: G | undefined): LossStep {
    return this.#modify((s): readonly [LossStep, Life<S, G>] => {
      switch (s._tag) {
        case "Open":
          if (s.session !== lost) return ["Ignore", s]
          return gapError === undefined
            ? ["Fail", { _tag: "Failed", session: lost, error: cause }]
            : ["Reconnect", { _tag: "Reconnecting", session: lost, gap, cause, error: gapError }]
        case "Reconnecting":
        case "Failed":
        case "Closed":
          return ["Ignore", s]
      }
    })
  }

  /** Reconnecting → Open(next); answers whether it was reconnecting (not closed meanwhile). */
  resume(next: S): boolean {
    return this.#modify((s): readonly [boolean, Life<S, G>] => {
      switch (s._tag) {
        case "Reconnecting":
          return [true, { _tag: "Open", session: next }]
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
  fail(error: ConnectionError): boolean {
    return this.#modify((s): readonly [boolean, Life<S, G>] => {
      switch (s._tag) {
        case "Open":
        case "Reconnecting":
          return [true, { _tag: "Failed", session: s.session, error }]
        case "Failed":
        case "Closed":
          return [false, s]
      }
    })
  }

  /**
   * Open or Reconnecting → Closed(closed), Failed → Closed(its error);
   * answers the step to run, and the state closing started from.
   */
  close(closed: ConnectionError): readonly [CloseStep, Life<S, G>] {
    return this.#modify((s): readonly [readonly [CloseStep, Life<S, G>], Life<S, G>] => {
      switch (s._tag) {
        case "Open":
          return [["Graceful", s], { _tag: "Closed", session: s.session, error: closed }]
        case "Reconnecting":
          return [["DuringReconnect", s], { _tag: "Closed", session: s.session, error: closed }]
        case "Failed":
          return [["AfterFailure", s], { _tag: "Closed", session: s.session, error: s.error }]
        case "Closed":
          return [["Already", s], s]
      }
    })
  }

  /** The sticky error once the connection failed or closed; `undefined` while open or reconnecting. */
  get finalError(): ConnectionError | undefined {
    const s = MutableRef.get(this.#ref)
    return s._tag === "Failed" || s._tag === "Closed" ? s.error : undefined
  }

  /**
   * The sticky error: the recorded one, `closing` while the state is still
   * `Open`, or the gap's error while reconnecting.
   */
  sticky(closing: ConnectionError): ConnectionError {
    const s = MutableRef.get(this.#ref)
    return s._tag === "Open" ? closing : s.error
  }
}
