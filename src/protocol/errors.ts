/**
 * Typed errors of the pure codec.
 *
 * @module
 */
import { type Cause, Data } from "effect"
import { quoted } from "./printable.ts"

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
 * The fields of {@link ProtocolError}.
 *
 * @since 0.1.0
 * @category models
 */
export interface ProtocolErrorFields {
  /** What kind of rule the bytes break. */
  readonly reason: ProtocolErrorReason
  /** The field at fault, as the protocol reference names it. */
  readonly field: string
  /** The offending value. */
  readonly value: string | number
  /** What rule it breaks. */
  readonly detail: string
}

/**
 * The tagged-error base of {@link ProtocolError}, typed explicitly so the
 * public API has no inferred ("slow") types.
 *
 * @since 0.1.0
 * @category errors
 */
export const ProtocolErrorBase: new (
  args: ProtocolErrorFields,
) => Cause.YieldableError & { readonly _tag: "ProtocolError" } & Readonly<ProtocolErrorFields> = Data.TaggedError(
  "ProtocolError",
)

/**
 * A codec failure naming the field and the offending value.
 *
 * @since 0.1.0
 * @category errors
 */
export class ProtocolError extends ProtocolErrorBase {
  /**
   * A one-line description naming the field and the value.
   *
   * @since 0.1.0
   */
  override get message(): string {
    return `${this.reason}: ${this.field} = ${
      typeof this.value === "string" ? quoted(this.value) : this.value
    }: ${this.detail}`
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
