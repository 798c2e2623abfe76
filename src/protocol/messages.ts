/**
 * Typed messages: what a client sends (multicast, join, leave, disconnect),
 * what a daemon sends (regular, membership, transitional, self-leave,
 * reject), the membership body, and the daemon's header checks.
 *
 * @module
 */
import { readI32, readU32, writeU32 } from "./bytes.ts"
import {
  MAX_GROUP_NAME,
  MAX_GROUPS_PER_MESSAGE,
  MAX_MESSAGE_PAYLOAD,
  ServiceBits,
  type ServiceLevel,
  serviceLevelBits,
  serviceLevelOf,
} from "./constants.ts"
import { type ProtocolError, protocolError } from "./errors.ts"
import { encodeFrame, type Frame, hintOf } from "./frame.ts"
import { parsePrivateGroup, readCString, validateGroupName } from "./names.ts"

// ---------------------------------------------------------------------------
// Client -> daemon

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

// ---------------------------------------------------------------------------
// Daemon-side checks of client frames

/**
 * What a client frame asks the daemon to do, once its header passed every
 * check of section 6.5.
 *
 * @since 0.1.0
 * @category models
 */
export type ClientRequest =
  | { readonly _tag: "Multicast"; readonly service: ServiceLevel; readonly selfDiscard: boolean }
  | { readonly _tag: "Join" }
  | { readonly _tag: "Leave" }
  | { readonly _tag: "Kill" }

const SERVICE_MASK = ServiceBits.REGULAR_MESS
const CMD_MASK = ServiceBits.JOIN_MESS | ServiceBits.LEAVE_MESS | ServiceBits.KILL_MESS
const REFUSED = ServiceBits.GROUPS_MESS | ServiceBits.REJECT_MESS
const HINT_MASK = 0x80ffff80

const KILL: ClientRequest = { _tag: "Kill" }
const JOIN: ClientRequest = { _tag: "Join" }
const LEAVE: ClientRequest = { _tag: "Leave" }

// The multicast requests, shared: index = service bit * 2 + self-discard.
const MULTICASTS: ReadonlyArray<ClientRequest> = Array.from({ length: 2 * 0x21 }, (_, i) => ({
  _tag: "Multicast",
  service: serviceLevelOf(i >> 1) ?? "Reliable",
  selfDiscard: (i & 1) === 1,
}))

// One bit set among the low 6 (service) or among bits 16..18 (command).
const isSingleBit = (x: number): boolean => x !== 0 && (x & (x - 1)) === 0

/**
 * The checks a real Spread 5.0.1 daemon applies to every client header
 * (`Sess_validate_read_header`, section 6.5), so unchanged clients see the
 * same behaviour: exactly one service or command bit, the session's own
 * `#name#daemon` in the name field, no hint bits outside mess_type and the
 * marker, one group for join and leave. Other type bits a real daemon
 * forwards untouched (DROP_RECV, CAUSED_BY_*, REG_MEMB_MESS on data [T28])
 * pass; the two it mishandles, GROUPS_MESS (handed to its group-state
 * machinery) and REJECT_MESS (delivered without `old_type`, so receivers
 * lose their place), are refused. Counts and lengths were already checked
 * by the frame decoder. A legal frame yields what it asks for; any failure
 * yields an error, and the daemon kills the session.
 *
 * @since 0.1.0
 * @category validation
 */
export const validateClientFrame = (
  frame: Frame,
  sessionName: string,
  daemonName: string,
): ClientRequest | ProtocolError => check(frame, sessionName, daemonName, undefined)

/**
 * {@link validateClientFrame} for one session, made once: a name field that is
 * exactly the session's private group (the usual case) is recognised by a
 * byte comparison, without building strings.
 *
 * @since 0.1.0
 * @category validation
 */
export const clientFrameValidator = (
  sessionName: string,
  daemonName: string,
): (frame: Frame) => ClientRequest | ProtocolError => {
  const own = `#${sessionName}#${daemonName}`
  return (frame) => check(frame, sessionName, daemonName, own)
}

// Whether the name field (byte 31 taken as NUL) is exactly `own`.
const isOwnName = (b: Uint8Array, own: string): boolean => {
  const n = own.length
  for (let i = 0; i < n; i++) if (b[4 + i] !== own.charCodeAt(i)) return false
  return n >= MAX_GROUP_NAME - 1 || b[4 + n] === 0
}

const check = (
  frame: Frame,
  sessionName: string,
  daemonName: string,
  own: string | undefined,
): ClientRequest | ProtocolError => {
  const t = frame.type
  const service = t & SERVICE_MASK
  const cmd = t & CMD_MASK
  if ((service !== 0) === (cmd !== 0) || !isSingleBit(service | cmd)) {
    return protocolError(
      "IllegalService",
      "type",
      `0x${t.toString(16)}`,
      "A message carries exactly one service or command bit",
    )
  }
  if ((t & REFUSED) !== 0) {
    return protocolError(
      "IllegalService",
      "type",
      `0x${t.toString(16)}`,
      "A client may not set GROUPS_MESS or REJECT_MESS",
    )
  }
  if (own === undefined || !isOwnName(frame.bytes, own)) {
    // The name field with its byte 31 forced to NUL, as the real daemon reads it.
    const name = readCString(frame.bytes, 4, MAX_GROUP_NAME - 1)
    const parsed = parsePrivateGroup(name)
    if (parsed === undefined) {
      return protocolError("IllegalName", "private_group_name", name, "The name field is not #name#daemon")
    }
    if (parsed.privateName !== sessionName || parsed.daemonName !== daemonName) {
      return protocolError(
        "IllegalName",
        "private_group_name",
        name,
        `The name field does not match this session "#${sessionName}#${daemonName}"`,
      )
    }
  }
  if ((frame.hint & ~HINT_MASK) !== 0) {
    return protocolError(
      "IllegalHint",
      "hint",
      `0x${(frame.hint >>> 0).toString(16)}`,
      "The hint has bits outside mess_type and marker",
    )
  }
  switch (cmd) {
    case 0:
      return MULTICASTS[service * 2 + ((t & ServiceBits.SELF_DISCARD) === 0 ? 0 : 1)]
    case ServiceBits.KILL_MESS:
      return KILL
    default:
      if (frame.numGroups < 1) {
        return protocolError("Malformed", "num_groups", frame.numGroups, "A join or leave names one group")
      }
      return cmd === ServiceBits.JOIN_MESS ? JOIN : LEAVE
  }
}

/**
 * The group a join or leave names: its first entry, read as the real daemon
 * reads a group name (at most 31 bytes, up to the first NUL).
 *
 * @since 0.1.0
 * @category validation
 */
export const commandGroup = (frame: Frame): string => readCString(frame.bytes, frame.groupsOffset, MAX_GROUP_NAME - 1)

// ---------------------------------------------------------------------------
// Daemon -> client

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

// ---------------------------------------------------------------------------
// Daemon encoders

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
