/**
 * What a client sends: multicasts (checked by {@link checkMulticast}, with
 * the limits of the daemon they go to, before encoding) and the join, leave and disconnect commands.
 *
 * @module
 */
import {
  MAX_GROUP_NAME,
  MAX_GROUPS_PER_MESSAGE,
  MAX_MESSAGE_PAYLOAD,
  REAL_DAEMON_MAX_GROUPS,
  REAL_DAEMON_MAX_PAYLOAD,
  ServiceBits,
  serviceBitsOf,
  type ServiceLevel,
} from "./constants.ts"
import { type ProtocolError, protocolError } from "./errors.ts"
import { encodeFrame, hintOf } from "./frame.ts"
import { validateGroupName } from "./names.ts"

/**
 * A multicast as a client asks for it.
 *
 * @since 0.1.0
 * @category models
 */
export interface MulticastSpec {
  /** The sender's private group name. */
  readonly privateGroup: string
  /** Service level (ordering and reliability) to send with. */
  readonly service: ServiceLevel
  /** Do not deliver a copy to the sender. */
  readonly selfDiscard?: boolean
  /** Destination groups, ordinary or private; 1 to 100. */
  readonly groups: ReadonlyArray<string>
  /** 16-bit application message type, -32768..65535 (sign-extended on receipt). */
  readonly messType?: number
  /** The message payload. */
  readonly data: Uint8Array
  /** Byte order to write; little-endian by default. */
  readonly littleEndian?: boolean
}

/**
 * What a multicast may carry, by the daemon it goes to.
 *
 * @since 0.3.0
 * @category models
 */
export interface MulticastLimits {
  /** Whose limits these are, as error messages name them. */
  readonly name: string
  /** Most destination groups. */
  readonly maxGroups: number
  /** Largest `data_len + 32 * num_groups`. */
  readonly maxPayload: number
}

/**
 * The embedded daemon's limits: {@link MAX_GROUPS_PER_MESSAGE} groups and
 * {@link MAX_MESSAGE_PAYLOAD} bytes.
 *
 * @since 0.3.0
 * @category constants
 */
export const embeddedDaemonLimits: MulticastLimits = {
  name: "the embedded daemon",
  maxGroups: MAX_GROUPS_PER_MESSAGE,
  maxPayload: MAX_MESSAGE_PAYLOAD,
}

/**
 * What a real Spread 5.0.1 daemon survives and routes correctly:
 * {@link REAL_DAEMON_MAX_GROUPS} groups and {@link REAL_DAEMON_MAX_PAYLOAD}
 * bytes. The client sends within these.
 *
 * @since 0.3.0
 * @category constants
 */
export const spreadDaemonLimits: MulticastLimits = {
  name: "a real Spread 5.0.1 daemon",
  maxGroups: REAL_DAEMON_MAX_GROUPS,
  maxPayload: REAL_DAEMON_MAX_PAYLOAD,
}

/**
 * The fields of a multicast that {@link checkMulticast} judges.
 *
 * @since 0.3.0
 * @category models
 */
export interface MulticastFields {
  /** Destination groups, ordinary or private. */
  readonly groups: ReadonlyArray<string>
  /** Service level. */
  readonly service: ServiceLevel
  /** 16-bit application message type; 0 when absent. */
  readonly messType?: number
  /** Bytes of data (for text encoded later, the most it can take). */
  readonly dataLength: number
}

const destinationError = (name: string): ProtocolError | undefined => validateGroupName(name, true)

/**
 * The one multicast validator: 1 to `limits.maxGroups` destinations, each
 * accepted by `checkGroup` (a valid group name by default), a 16-bit
 * mess_type, a known service level, and `data + 32 * groups` within
 * `limits.maxPayload`. Answers the first problem, or `undefined`.
 *
 * @since 0.3.0
 * @category validation
 */
export const checkMulticast = (
  m: MulticastFields,
  limits: MulticastLimits,
  checkGroup: (name: string) => ProtocolError | undefined = destinationError,
): ProtocolError | undefined => {
  const n = m.groups.length
  if (n === 0) return protocolError("Malformed", "groups", 0, "A multicast needs at least one group")
  if (n > limits.maxGroups) {
    return protocolError(
      "Oversize",
      "groups",
      n,
      `Cannot send to ${n} groups: ${limits.name} delivers to at most ${limits.maxGroups}`,
    )
  }
  for (let i = 0; i < n; i++) {
    const err = checkGroup(m.groups[i])
    if (err !== undefined) return err
  }
  const mt = m.messType ?? 0
  if (!Number.isInteger(mt) || mt < -32768 || mt > 65535) {
    return protocolError("Malformed", "mess_type", mt, "mess_type is a 16-bit integer")
  }
  if (serviceBitsOf(m.service) === 0) {
    return protocolError("IllegalService", "service", String(m.service), "Unknown service level")
  }
  const size = m.dataLength + MAX_GROUP_NAME * n
  if (size > limits.maxPayload) {
    return protocolError(
      "Oversize",
      "data_len + 32 * num_groups",
      size,
      `Cannot send ${m.dataLength} bytes to ${n} group(s): data + 32 * groups exceeds ${limits.maxPayload}`,
    )
  }
  return undefined
}

/**
 * Checks a multicast before anything is sent, by {@link checkMulticast}
 * with `limits` (the embedded daemon's by default: 1..100 destinations and
 * `data + 32 * groups` up to 143152 bytes).
 *
 * @since 0.1.0
 * @category validation
 */
export const validateMulticast = (
  spec: MulticastSpec,
  limits: MulticastLimits = embeddedDaemonLimits,
): ProtocolError | undefined =>
  checkMulticast(
    { groups: spec.groups, service: spec.service, messType: spec.messType, dataLength: spec.data.length },
    limits,
  )

/**
 * Encodes a multicast (call {@link validateMulticast} first).
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeMulticast = (spec: MulticastSpec): Uint8Array => {
  const le = spec.littleEndian ?? true
  return encodeFrame({
    type: serviceBitsOf(spec.service) | (spec.selfDiscard ? ServiceBits.SELF_DISCARD : 0),
    name: spec.privateGroup,
    groups: spec.groups,
    hint: hintOf(spec.messType ?? 0, le),
    data: spec.data,
    littleEndian: le,
  })
}

/**
 * Encodes a join, leave or disconnect: one group entry, no data. For a
 * disconnect the entry is the sender's own private group.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeCommand = (
  command: "Join" | "Leave" | "Kill",
  privateGroup: string,
  group: string,
  littleEndian = true,
): Uint8Array =>
  encodeFrame({
    type: command === "Join"
      ? ServiceBits.JOIN_MESS
      : command === "Leave"
      ? ServiceBits.LEAVE_MESS
      : ServiceBits.KILL_MESS,
    name: privateGroup,
    groups: [group],
    littleEndian,
  })
