/**
 * Typed transport failures.
 *
 * @module
 */
import { Data } from "effect"

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
 * A byte-stream failure, with the address and the underlying cause.
 *
 * @since 0.1.0
 * @category errors
 */
export class TransportError extends Data.TaggedError("TransportError")<{
  readonly reason: TransportErrorReason
  readonly address: string
  readonly cause?: unknown
}> {
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
