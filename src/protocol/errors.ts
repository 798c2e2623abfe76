/**
 * Typed errors of the pure codec.
 *
 * @module
 */
import { Data } from "effect"

/**
 * What went wrong while decoding or encoding protocol bytes.
 *
 * - `Truncated`: the stream ended inside a frame.
 * - `Oversize`: a length or count exceeds the protocol maximum.
 * - `Negative`: a signed length or count is below zero.
 * - `Endian`: the endian marker bits are inconsistent.
 * - `IllegalService`: the service or command bits are not a legal combination.
 * - `IllegalName`: a private, group or daemon name breaks the naming rules.
 * - `IllegalHint`: the hint carries bits outside the mess_type and marker.
 * - `Malformed`: any other field holds a value the protocol does not allow.
 *
 * @since 0.1.0
 * @category models
 */
export type ProtocolErrorReason =
  | "Truncated"
  | "Oversize"
  | "Negative"
  | "Endian"
  | "IllegalService"
  | "IllegalName"
  | "IllegalHint"
  | "Malformed"

/**
 * A codec failure naming the field and the offending value.
 *
 * @since 0.1.0
 * @category errors
 */
export class ProtocolError extends Data.TaggedError("ProtocolError")<{
  readonly reason: ProtocolErrorReason
  readonly field: string
  readonly value: string | number
  readonly detail: string
}> {
  /**
   * A one-line description naming the field and the value.
   *
   * @since 0.1.0
   */
  override get message(): string {
    return `${this.reason}: ${this.field} = ${JSON.stringify(this.value)}: ${this.detail}`
  }
}

/**
 * Builds a {@link ProtocolError}.
 *
 * @since 0.1.0
 * @category constructors
 */
export const protocolError = (
  reason: ProtocolErrorReason,
  field: string,
  value: string | number,
  detail: string,
): ProtocolError => new ProtocolError({ reason, field, value, detail })
