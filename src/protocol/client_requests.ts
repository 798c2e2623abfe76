/**
 * What a client sends: multicasts (checked by {@link validateMulticast}
 * before encoding) and the join, leave and disconnect commands.
 *
 * @module
 */
import {
  MAX_GROUP_NAME,
  MAX_GROUPS_PER_MESSAGE,
  MAX_MESSAGE_PAYLOAD,
  ServiceBits,
  type ServiceLevel,
  serviceLevelBits,
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
 * Checks a multicast before anything is sent: 1..100 valid destinations,
 * a 16-bit mess_type, and `data + 32 * groups` within the size a real daemon
 * survives (143152 bytes).
 *
 * @since 0.1.0
 * @category validation
 */
export const validateMulticast = (spec: MulticastSpec): ProtocolError | undefined => {
  const n = spec.groups.length
  if (n === 0) return protocolError("Malformed", "groups", 0, "A multicast needs at least one group")
  if (n > MAX_GROUPS_PER_MESSAGE) {
    return protocolError("Oversize", "groups", n, `A multicast has at most ${MAX_GROUPS_PER_MESSAGE} groups`)
  }
  for (const g of spec.groups) {
    const err = validateGroupName(g, true)
    if (err !== undefined) return err
  }
  const mt = spec.messType ?? 0
  if (!Number.isInteger(mt) || mt < -32768 || mt > 65535) {
    return protocolError("Malformed", "mess_type", mt, "mess_type is a 16-bit integer")
  }
  if (!(spec.service in serviceLevelBits)) {
    return protocolError("IllegalService", "service", String(spec.service), "Unknown service level")
  }
  const size = spec.data.length + MAX_GROUP_NAME * n
  if (size > MAX_MESSAGE_PAYLOAD) {
    return protocolError(
      "Oversize",
      "data_len + 32 * num_groups",
      size,
      `Cannot send ${spec.data.length} bytes to ${n} group(s): data + 32 * groups exceeds ${MAX_MESSAGE_PAYLOAD}`,
    )
  }
  return undefined
}

/**
 * Encodes a multicast (call {@link validateMulticast} first).
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeMulticast = (spec: MulticastSpec): Uint8Array => {
  const le = spec.littleEndian ?? true
  return encodeFrame({
    type: serviceLevelBits[spec.service] | (spec.selfDiscard ? ServiceBits.SELF_DISCARD : 0),
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
