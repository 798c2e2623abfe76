/**
 * What a daemon sends, typed: regular, membership, transitional, self-leave
 * and reject messages, group ids, and the membership body.
 *
 * @module
 */
import { readI32, readU32 } from "./bytes.ts"
import { MAX_GROUP_NAME, ServiceBits, type ServiceLevel, serviceLevelOf } from "./constants.ts"
import { type ProtocolError, protocolError } from "./errors.ts"
import type { Frame } from "./frame.ts"
import { readCString } from "./names.ts"

/**
 * A group id: `{daemon membership id, time, per-group index}`. Compare all
 * three fields; treat it as opaque.
 *
 * @since 0.1.0
 * @category models
 */
export interface GroupId {
  /** Daemon membership id: the proc_id of the daemon representing the membership. */
  readonly procId: number
  /** Daemon membership id: when that daemon membership formed, in seconds. */
  readonly time: number
  /** Per-group index, bumped on every join, leave or disconnect. */
  readonly index: number
}

/**
 * Whether two group ids are equal (`SP_equal_group_ids`).
 *
 * @since 0.1.0
 * @category predicates
 */
export const equalGroupIds = (a: GroupId, b: GroupId): boolean =>
  a.procId === b.procId && a.time === b.time && a.index === b.index

/**
 * Why a membership changed.
 *
 * @since 0.1.0
 * @category models
 */
export type MembershipCause = "Join" | "Leave" | "Disconnect" | "Network"

/**
 * A data message.
 *
 * @since 0.1.0
 * @category models
 */
export interface RegularMessage {
  /** Discriminates a regular (data) message. */
  readonly _tag: "Regular"
  /** The sender's private group. */
  readonly sender: string
  /** The destinations exactly as the sender wrote them. */
  readonly groups: ReadonlyArray<string>
  /** Service level the message was sent with. */
  readonly service: ServiceLevel
  /** The raw type bits (marker removed), including SELF_DISCARD and any oddities. */
  readonly type: number
  /** The sign-extended 16-bit application message type from the hint. */
  readonly messType: number
  /** The original sender's byte order differs from little-endian. */
  readonly endianMismatch: boolean
  /** The message payload. */
  readonly data: Uint8Array
}

/**
 * A regular membership message: the current view of a group.
 *
 * @since 0.1.0
 * @category models
 */
export interface MembershipMessage {
  /** Discriminates a membership message. */
  readonly _tag: "Membership"
  /** The group whose view this is. */
  readonly group: string
  /** Why the membership changed. */
  readonly cause: MembershipCause
  /** The group id of the new view. */
  readonly groupId: GroupId
  /** Current members, in the daemon's order. */
  readonly members: ReadonlyArray<string>
  /** Virtual-synchrony sets as sent. */
  readonly vsSets: ReadonlyArray<ReadonlyArray<string>>
  /** Index in `vsSets` of the receiver's own set. */
  readonly localVsSet: number
  /** The member that joined, left or disconnected (absent for Network). */
  readonly changed: string | undefined
}

/**
 * A transitional signal: the group's view is about to change.
 *
 * @since 0.1.0
 * @category models
 */
export interface TransitionalMessage {
  /** Discriminates a transitional signal. */
  readonly _tag: "Transitional"
  /** The group whose view is about to change. */
  readonly group: string
  /** The previous group id. */
  readonly groupId: GroupId | undefined
}

/**
 * This session has left the group.
 *
 * @since 0.1.0
 * @category models
 */
export interface SelfLeaveMessage {
  /** Discriminates a self-leave. */
  readonly _tag: "SelfLeave"
  /** The group this session left. */
  readonly group: string
}

/**
 * A message the daemon refused, returned to its sender only.
 *
 * @since 0.1.0
 * @category models
 */
export interface RejectMessage {
  /** Discriminates a rejected message. */
  readonly _tag: "Reject"
  /** The original type bits (marker removed); JOIN/LEAVE appear as CAUSED_BY_JOIN/LEAVE. */
  readonly oldType: number
  /** The original sender's private group. */
  readonly sender: string
  /** The original groups followed by the sender's private group. */
  readonly groups: ReadonlyArray<string>
  /** The original 16-bit application message type. */
  readonly messType: number
  /** The original message payload. */
  readonly data: Uint8Array
}

/**
 * Anything a daemon delivers to a client.
 *
 * @since 0.1.0
 * @category models
 */
export type ServerMessage =
  | RegularMessage
  | MembershipMessage
  | TransitionalMessage
  | SelfLeaveMessage
  | RejectMessage

const causeOf = (t: number): MembershipCause | undefined => {
  switch (t & 0x0f00) {
    case ServiceBits.CAUSED_BY_JOIN:
      return "Join"
    case ServiceBits.CAUSED_BY_LEAVE:
      return "Leave"
    case ServiceBits.CAUSED_BY_DISCONNECT:
      return "Disconnect"
    case ServiceBits.CAUSED_BY_NETWORK:
      return "Network"
    default:
      return undefined
  }
}

/**
 * A parsed membership body (section 7.2).
 *
 * @since 0.1.0
 * @category models
 */
export interface MembershipBody {
  /** The group id. */
  readonly groupId: GroupId
  /** The virtual-synchrony sets, each a list of private group names. */
  readonly vsSets: ReadonlyArray<ReadonlyArray<string>>
  /** Index in `vsSets` of the receiver's own set (-1 when there are none). */
  readonly localVsSet: number
  /** The raw `local_vs_set_offset`: byte offset from the start of the vs-set area to the receiver's set. */
  readonly localVsSetOffset: number
}

/**
 * Parses a membership body, checking every count against the bytes present.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeMembershipBody = (
  data: Uint8Array,
  littleEndian: boolean,
): MembershipBody | ProtocolError => {
  if (data.length < 20) {
    return protocolError("Truncated", "membership body", data.length, "A membership body has at least 20 bytes")
  }
  const groupId = readGroupId(data, 0, littleEndian)
  const numSets = readU32(data, 12, littleEndian)
  const localOffset = readU32(data, 16, littleEndian)
  const maxSets = (data.length - 20) / 4
  if (numSets > maxSets) {
    return protocolError("Oversize", "num_vs_sets", numSets, "More vs sets than the body holds")
  }
  const vsSets: Array<ReadonlyArray<string>> = []
  let localVsSet = -1
  let o = 20
  for (let s = 0; s < numSets; s++) {
    if (o - 20 === localOffset) localVsSet = s
    if (o + 4 > data.length) {
      return protocolError("Truncated", "vs_set count", s, "A vs set runs past the body")
    }
    const count = readU32(data, o, littleEndian)
    o += 4
    if (count > (data.length - o) / MAX_GROUP_NAME) {
      return protocolError("Oversize", "vs_set count", count, "A vs set has more members than the body holds")
    }
    const members = new Array<string>(count)
    for (let i = 0; i < count; i++, o += MAX_GROUP_NAME) members[i] = readCString(data, o, MAX_GROUP_NAME)
    vsSets.push(members)
  }
  if (numSets > 0 && localVsSet < 0) {
    return protocolError("Malformed", "local_vs_set_offset", localOffset, "The offset does not point at a vs set")
  }
  return { groupId, vsSets, localVsSet, localVsSetOffset: localOffset }
}

const readGroupId = (b: Uint8Array, o: number, le: boolean): GroupId => ({
  procId: readI32(b, o, le),
  time: readI32(b, o + 4, le),
  index: readI32(b, o + 8, le),
})

/**
 * Classifies a frame received from a daemon into a typed message.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeServerMessage = (frame: Frame): ServerMessage | ProtocolError => {
  const t = frame.type
  if ((t & ServiceBits.REJECT_MESS) !== 0) {
    return {
      _tag: "Reject",
      oldType: frame.oldType,
      sender: frame.sender,
      groups: frame.groups,
      messType: frame.messType,
      data: frame.data,
    }
  }
  const service = serviceLevelOf(t)
  if ((t & ServiceBits.REGULAR_MESS) !== 0) {
    if (service === undefined) {
      return protocolError("IllegalService", "type", `0x${t.toString(16)}`, "A data message carries one service bit")
    }
    return {
      _tag: "Regular",
      sender: frame.sender,
      groups: frame.groups,
      service,
      type: t,
      messType: frame.messType,
      endianMismatch: !frame.hintLittleEndian,
      data: frame.data,
    }
  }
  if ((t & ServiceBits.REG_MEMB_MESS) !== 0) {
    const cause = causeOf(t)
    if (cause === undefined) {
      return protocolError("Malformed", "type", `0x${t.toString(16)}`, "A membership message carries one CAUSED_BY bit")
    }
    const body = decodeMembershipBody(frame.data, frame.littleEndian)
    if (!isBody(body)) return body
    const changed = cause !== "Network" && body.vsSets.length > 0 && body.vsSets[0].length > 0
      ? body.vsSets[0][0]
      : undefined
    return {
      _tag: "Membership",
      group: frame.sender,
      cause,
      groupId: body.groupId,
      members: frame.groups,
      vsSets: body.vsSets,
      localVsSet: body.localVsSet,
      changed,
    }
  }
  if ((t & ServiceBits.TRANSITION_MESS) !== 0) {
    const data = frame.data
    return {
      _tag: "Transitional",
      group: frame.sender,
      groupId: data.length >= 12 ? readGroupId(data, 0, frame.littleEndian) : undefined,
    }
  }
  if ((t & 0x0f00) === ServiceBits.CAUSED_BY_LEAVE) {
    return { _tag: "SelfLeave", group: frame.sender }
  }
  return protocolError("Malformed", "type", `0x${t.toString(16)}`, "Not a message a daemon sends")
}

const isBody = (u: MembershipBody | ProtocolError): u is MembershipBody => "groupId" in u
