/**
 * Typed transport failures.
 *
 * @module
 */
import { type Cause, Data } from "effect"

/**
 * Why a byte stream failed.
 *
 * - `ConnectFailed`: the address could not be reached.
 * - `ListenFailed`: the address could not be bound.
 * - `Closed`: the peer closed the stream (EOF), or it was closed locally.
 * - `ReadFailed` / `WriteFailed`: the operating system reported an error.
 *
 * @since 0.1.0
 * @category models
 */
export type TransportErrorReason = "ConnectFailed" | "ListenFailed" | "Closed" | "ReadFailed" | "WriteFailed"

/**
 * The fields of {@link TransportError}.
 *
 * @since 0.1.0
 * @category models
 */
export interface TransportErrorFields {
  readonly reason: TransportErrorReason
  /** The address, in Spread's form. */
  readonly address: string
  /** The underlying error, when there is one. */
  readonly cause?: unknown
}

/**
 * The tagged-error base of {@link TransportError}, typed explicitly so the
 * public API has no inferred ("slow") types.
 *
 * @since 0.1.0
 * @category errors
 */
export const TransportErrorBase: new (
  args: TransportErrorFields,
) => Cause.YieldableError & { readonly _tag: "TransportError" } & Readonly<TransportErrorFields> = Data.TaggedError(
  "TransportError",
)

/**
 * A byte-stream failure, with the address and the underlying cause.
 *
 * @since 0.1.0
 * @category errors
 */
export class TransportError extends TransportErrorBase {
  /**
   * A one-line description.
   *
   * @since 0.1.0
   */
  override get message(): string {
    const c = this.cause instanceof Error ? `: ${this.cause.message}` : ""
    return `${this.reason} (${this.address})${c}`
  }
}
