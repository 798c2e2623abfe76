/**
 * The typed failures of request/reply: no reply in time, and an error reply
 * from a responder.
 *
 * @module
 */
import { type Cause, Data, Duration } from "effect"

/**
 * The fields of {@link RequestTimeout}.
 *
 * @since 0.2.0
 * @category models
 */
export interface RequestTimeoutFields {
  /** The group the request went to. */
  readonly group: string
  /** The timeout that passed. */
  readonly timeout: Duration.Duration
  /** The request's correlation id. */
  readonly correlationId: string
}

/**
 * The tagged-error base of {@link RequestTimeout}, typed explicitly so the
 * public API has no inferred ("slow") types.
 *
 * @since 0.2.0
 * @category errors
 */
export const RequestTimeoutBase: new (
  args: RequestTimeoutFields,
) => Cause.YieldableError & { readonly _tag: "RequestTimeout" } & Readonly<RequestTimeoutFields> = Data
  .TaggedError("RequestTimeout")

/**
 * No reply came within the request's timeout.
 *
 * @since 0.2.0
 * @category errors
 */
export class RequestTimeout extends RequestTimeoutBase {
  /**
   * A one-line description naming the group and the timeout.
   *
   * @since 0.2.0
   */
  override get message(): string {
    return `No reply from group "${this.group}" within ${Duration.format(this.timeout)} (request ${this.correlationId})`
  }
}

/**
 * The fields of {@link ResponderError}.
 *
 * @since 0.2.0
 * @category models
 */
export interface ResponderErrorFields {
  /** The group the request went to. */
  readonly group: string
  /** The responder's private group. */
  readonly responder: string
  /** What the responder reported. */
  readonly reason: string
  /** The request's correlation id. */
  readonly correlationId: string
}

/**
 * The tagged-error base of {@link ResponderError}, typed explicitly so the
 * public API has no inferred ("slow") types.
 *
 * @since 0.2.0
 * @category errors
 */
export const ResponderErrorBase: new (
  args: ResponderErrorFields,
) => Cause.YieldableError & { readonly _tag: "ResponderError" } & Readonly<ResponderErrorFields> = Data
  .TaggedError("ResponderError")

/**
 * The first reply to a request was an error reply: the responder's handler
 * failed.
 *
 * @since 0.2.0
 * @category errors
 */
export class ResponderError extends ResponderErrorBase {
  /**
   * A one-line description naming the responder and its reason.
   *
   * @since 0.2.0
   */
  override get message(): string {
    return `Responder ${this.responder} of group "${this.group}" failed: ${this.reason}`
  }
}
