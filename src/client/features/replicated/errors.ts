/**
 * The replica's typed failure.
 *
 * @module
 */
import { type Cause, Data } from "effect"

/**
 * Why a replica failed, or an update did.
 *
 * - `Decode`: a message on the group is not a replica message this member can
 *   read (wrong schema, another application on the group): the replica
 *   stops rather than diverge.
 * - `Encode`: an operation (or the value, for a transfer) does not satisfy
 *   its schema; the update is refused, the replica goes on.
 * - `Apply`: the `apply` or merge function threw; the replica stops.
 * - `TransferTimeout`: no state transfer came within `transferTimeout`.
 * - `Overflow`: more than `maxKept` events arrived while joining or merging.
 * - `Discontinuity`: the connection replaced its session (`reconnect`);
 *   updates in flight may or may not have been applied; the replica joins
 *   again and receives the state anew.
 * - `Connection`: the connection failed or closed.
 *
 * @since 0.3.0
 * @category models
 */
export type ReplicaErrorReason =
  | "Decode"
  | "Encode"
  | "Apply"
  | "TransferTimeout"
  | "Overflow"
  | "Discontinuity"
  | "Connection"

/**
 * The fields of {@link ReplicaError}.
 *
 * @since 0.3.0
 * @category models
 */
export interface ReplicaErrorFields {
  /** Why. */
  readonly reason: ReplicaErrorReason
  /** The replica's group. */
  readonly group: string
  /** What failed, quoting the value. */
  readonly detail: string
  /** The underlying error, if any. */
  readonly cause?: unknown
}

/**
 * The tagged-error base of {@link ReplicaError}, typed explicitly so the
 * public API has no inferred types.
 *
 * @since 0.3.0
 * @category errors
 */
export const ReplicaErrorBase: new (
  args: ReplicaErrorFields,
) => Cause.YieldableError & { readonly _tag: "ReplicaError" } & Readonly<ReplicaErrorFields> = Data.TaggedError(
  "ReplicaError",
)

/**
 * A replica failed (or one update did, for `Encode`).
 *
 * @since 0.3.0
 * @category errors
 */
export class ReplicaError extends ReplicaErrorBase {
  /**
   * `Replica of "group" failed (reason): detail`.
   *
   * @since 0.3.0
   */
  override get message(): string {
    return `Replica of ${JSON.stringify(this.group)} failed (${this.reason}): ${this.detail}`
  }
}
