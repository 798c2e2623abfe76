/**
 * The daemon's encoders of what it sends: membership, self-leave,
 * transitional and reject messages.
 *
 * @module
 */
import { writeU32 } from "./bytes.ts"
import { MAX_GROUP_NAME, MAX_GROUPS_PER_MESSAGE, ServiceBits } from "./constants.ts"
import { encodeFrame, type Frame } from "./frame.ts"
import type { GroupId } from "./server_messages.ts"

/**
 * Encodes a lightweight membership message (join, leave or disconnect): the
 * member list in the groups array and a 56-byte body whose one vs set holds
 * the changed member.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeMembership = (
  group: string,
  cause: "Join" | "Leave" | "Disconnect",
  members: ReadonlyArray<string>,
  groupId: GroupId,
  changed: string,
): Uint8Array => {
  const body = new Uint8Array(20 + 4 + MAX_GROUP_NAME)
  writeGroupId(body, 0, groupId)
  writeU32(body, 12, 1, true)
  writeU32(body, 16, 0, true)
  writeU32(body, 20, 1, true)
  for (let i = 0; i < changed.length && i < MAX_GROUP_NAME - 1; i++) body[24 + i] = changed.charCodeAt(i) & 0xff
  const causeBit = cause === "Join"
    ? ServiceBits.CAUSED_BY_JOIN
    : cause === "Leave"
    ? ServiceBits.CAUSED_BY_LEAVE
    : ServiceBits.CAUSED_BY_DISCONNECT
  return encodeFrame({ type: ServiceBits.REG_MEMB_MESS | causeBit, name: group, groups: members, data: body })
}

const writeGroupId = (b: Uint8Array, o: number, g: GroupId): void => {
  writeU32(b, o, g.procId, true)
  writeU32(b, o + 4, g.time, true)
  writeU32(b, o + 8, g.index, true)
}

/**
 * Encodes the header-only self-leave message.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeSelfLeave = (group: string): Uint8Array =>
  encodeFrame({ type: ServiceBits.CAUSED_BY_LEAVE, name: group, groups: [] })

/**
 * Encodes a transitional membership signal carrying the previous group id.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeTransitional = (group: string, previous: GroupId): Uint8Array => {
  const body = new Uint8Array(12)
  writeGroupId(body, 0, previous)
  return encodeFrame({ type: ServiceBits.TRANSITION_MESS, name: group, groups: [], data: body })
}

/**
 * Encodes the reject a daemon returns to the sender of a refused frame
 * (section 7.5): `old_type` after the header (JOIN and LEAVE become
 * CAUSED_BY_JOIN and CAUSED_BY_LEAVE) and the sender's private group added
 * to the groups (overwriting the last when there are already 100).
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeRejectFor = (frame: Frame, senderPrivateGroup: string): Uint8Array => {
  let old = frame.type
  if ((old & ServiceBits.JOIN_MESS) !== 0) old = (old & ~ServiceBits.JOIN_MESS) | ServiceBits.CAUSED_BY_JOIN
  if ((old & ServiceBits.LEAVE_MESS) !== 0) old = (old & ~ServiceBits.LEAVE_MESS) | ServiceBits.CAUSED_BY_LEAVE
  const groups = frame.groups.slice()
  if (groups.length >= MAX_GROUPS_PER_MESSAGE) groups[MAX_GROUPS_PER_MESSAGE - 1] = senderPrivateGroup
  else groups.push(senderPrivateGroup)
  return encodeFrame({
    type: ServiceBits.REJECT_MESS | (frame.type & ServiceBits.SELF_DISCARD),
    name: frame.sender,
    groups,
    hint: frame.hint,
    hintLittleEndian: frame.hintLittleEndian,
    data: frame.data,
    oldType: old,
  })
}
