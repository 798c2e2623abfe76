/**
 * Refinements over what a connection receives, for filtering a stream by
 * the kind of message, and a text view of a data message's payload.
 *
 * @module
 */
import type {
  MembershipMessage,
  RegularMessage,
  RejectMessage,
  SelfLeaveMessage,
  ServerMessage,
  TransitionalMessage,
} from "../../protocol/server_messages.ts"

/**
 * Whether a received message is a data message.
 *
 * @since 0.1.0
 * @category refinements
 */
export const isRegular = (m: ServerMessage): m is RegularMessage => m._tag === "Regular"

/**
 * Whether a received message is a regular membership message (a new view).
 *
 * @since 0.1.0
 * @category refinements
 */
export const isMembership = (m: ServerMessage): m is MembershipMessage => m._tag === "Membership"

/**
 * Whether a received message is a transitional membership signal (a
 * daemon's, or a {@link Discontinuity} after a reconnect).
 *
 * @since 0.1.0
 * @category refinements
 */
export const isTransitional = (m: ServerMessage): m is TransitionalMessage => m._tag === "Transitional"

/**
 * Whether a received message confirms that this connection left a group.
 *
 * @since 0.1.0
 * @category refinements
 */
export const isSelfLeave = (m: ServerMessage): m is SelfLeaveMessage => m._tag === "SelfLeave"

/**
 * Whether a received message is a daemon's reject of something this
 * connection sent.
 *
 * @since 0.1.0
 * @category refinements
 */
export const isReject = (m: ServerMessage): m is RejectMessage => m._tag === "Reject"

const decoder = new TextDecoder()

/**
 * The payload of a data message decoded as UTF-8 (invalid bytes become
 * U+FFFD).
 *
 * @since 0.1.0
 * @category getters
 */
export const text = (m: RegularMessage | RejectMessage): string => decoder.decode(m.data)
