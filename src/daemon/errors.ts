/**
 * Typed daemon failures.
 *
 * @module
 */
import { Data } from "effect"

/**
 * Why a daemon could not start.
 *
 * - `InvalidConfig`: a configuration value breaks a rule (quoted in `detail`).
 * - `ListenFailed`: the TCP port or the Unix socket could not be bound.
 *
 * @since 0.1.0
 * @category errors
 */
export class DaemonError extends Data.TaggedError("DaemonError")<{
  readonly reason: "InvalidConfig" | "ListenFailed"
  readonly detail: string
  readonly cause?: unknown
}> {
  /**
   * A one-line description.
   *
   * @since 0.1.0
   */
  override get message(): string {
    return `${this.reason}: ${this.detail}`
  }
}
