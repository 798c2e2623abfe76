/**
 * Typed daemon failures.
 *
 * @module
 */
import { type Cause, Data } from "effect"

/**
 * The fields of a {@link DaemonError}.
 *
 * @since 0.1.0
 * @category errors
 */
export interface DaemonErrorFields {
  /** What failed. */
  readonly reason: "InvalidConfig" | "ListenFailed" | "InvalidPartition"
  /** Which value or address, and why. */
  readonly detail: string
  /** The underlying error, if any. */
  readonly cause?: unknown
}

/**
 * The tagged-error base of {@link DaemonError}, typed explicitly so the
 * public API has no inferred ("slow") types.
 *
 * @since 0.1.0
 * @category errors
 */
export const DaemonErrorBase: new (
  args: DaemonErrorFields,
) => Cause.YieldableError & { readonly _tag: "DaemonError" } & Readonly<DaemonErrorFields> = Data.TaggedError(
  "DaemonError",
)

/**
 * Why a daemon could not start.
 *
 * - `InvalidConfig`: a configuration value breaks a rule (quoted in `detail`).
 * - `ListenFailed`: the TCP port or the Unix socket could not be bound.
 * - `InvalidPartition`: `Daemon.partition` was given components that do not
 *   name every virtual daemon exactly once (the problem quoted in `detail`).
 *
 * @since 0.1.0
 * @category errors
 */
export class DaemonError extends DaemonErrorBase {
  /**
   * A one-line description.
   *
   * @since 0.1.0
   */
  override get message(): string {
    return `${this.reason}: ${this.detail}`
  }
}
