/**
 * What a connection receives: the protocol's typed messages, with
 * refinements for filtering a stream and a text view of a payload.
 *
 * @module
 */
import { MAX_GROUP_NAME, ServiceBits, type ServiceLevel, serviceLevelOf } from "../protocol/constants.ts"
import type { ProtocolError } from "../protocol/errors.ts"
import type { Frame } from "../protocol/frame.ts"
import {
  decodeServerMessage,
  type MembershipMessage,
  type RegularMessage,
  type RejectMessage,
  type SelfLeaveMessage,
  type ServerMessage,
  type TransitionalMessage,
} from "../protocol/messages.ts"

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
 * Whether a received message is a transitional membership signal.
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

/**
 * A data message read lazily from its frame: the sender and the groups are
 * decoded from the frame's bytes only when first read (most receivers of a
 * flood never look at them). Same fields as the codec's `RegularMessage`.
 *
 * @since 0.1.0
 * @category models
 */
export class LazyRegularMessage implements RegularMessage {
  readonly _tag = "Regular"
  readonly #frame: Frame
  readonly service: ServiceLevel

  constructor(frame: Frame, service: ServiceLevel) {
    this.#frame = frame
    this.service = service
  }

  /** The sender's private group. */
  get sender(): string {
    return this.#frame.sender
  }

  /** The destinations exactly as the sender wrote them. */
  get groups(): ReadonlyArray<string> {
    return this.#frame.groups
  }

  /** The raw type bits (marker removed). */
  get type(): number {
    return this.#frame.type
  }

  /** The 16-bit application message type. */
  get messType(): number {
    return this.#frame.messType
  }

  /** The original sender's byte order differs from little-endian. */
  get endianMismatch(): boolean {
    return !this.#frame.hintLittleEndian
  }

  /** The payload, a view into the received bytes. */
  get data(): Uint8Array {
    return this.#frame.data
  }
}

/**
 * Classifies a received frame: a data message lazily, anything else with
 * the codec's `decodeServerMessage`. Exactly the codec's classification: a
 * frame without REJECT_MESS that carries one of the six service bits is a
 * data message.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeMessage = (frame: Frame): ServerMessage | ProtocolError => {
  const t = frame.type
  if ((t & ServiceBits.REJECT_MESS) === 0 && (t & ServiceBits.REGULAR_MESS) !== 0) {
    const service = serviceLevelOf(t)
    if (service !== undefined) return new LazyRegularMessage(frame, service)
  }
  return decodeServerMessage(frame)
}

/**
 * Whether the name field (bytes 4..35) of `frame` holds the C string whose
 * bytes are `name`, without decoding it.
 *
 * @since 0.1.0
 * @category predicates
 */
export const nameFieldIs = (frame: Frame, name: Uint8Array): boolean => {
  const b = frame.bytes
  const n = name.length
  if (n >= MAX_GROUP_NAME) return false
  for (let i = 0; i < n; i++) if (b[4 + i] !== name[i]) return false
  return b[4 + n] === 0
}
