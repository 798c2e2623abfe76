/**
 * Outgoing frames of a session: what a user asks for, checked once and
 * kept ready to encode. The destinations come from the session's cache of
 * validated names (name_cache.ts); frame_writer.ts writes a prepared frame
 * in place into the outbound buffer. Pure: no Effect, no IO.
 *
 * A real Spread 5.0.1 daemon is the yardstick for what is refused: more than
 * {@link REAL_DAEMON_MAX_GROUPS} destinations (it misroutes them silently)
 * and `data + 32 * groups` above {@link REAL_DAEMON_MAX_PAYLOAD} (it
 * corrupts its heap or aborts).
 *
 * @module
 */
import {
  ENDIAN_RESERVED,
  MAX_GROUP_NAME,
  REAL_DAEMON_MAX_GROUPS,
  REAL_DAEMON_MAX_PAYLOAD,
  ServiceBits,
  type ServiceLevel,
} from "../protocol/constants.ts"
import { protocolError } from "../protocol/errors.ts"
import { type RequestError, requestErrorOf } from "./errors.ts"
import { hintOf, serviceBitsOf } from "./frame_writer.ts"
import type { NameCache } from "./name_cache.ts"

/**
 * A message to multicast.
 *
 * @since 0.1.0
 * @category models
 */
export interface OutgoingMessage {
  /** One destination group, or up to 43 (what a real Spread daemon delivers); ordinary or private (`#name#daemon`). */
  readonly groups: string | ReadonlyArray<string>
  /** The payload: bytes as given, or text encoded as UTF-8. */
  readonly data: Uint8Array | string
  /** Service level; `"Agreed"` by default. */
  readonly service?: ServiceLevel
  /** 16-bit application message type (-32768..65535); 0 by default. */
  readonly messType?: number
  /** Do not deliver a copy to the sender (such a message is not counted by the flow window). */
  readonly selfDiscard?: boolean
}

/**
 * A frame checked and ready to encode; `cost` and `via` are the flow
 * window's, set (and set again after a wait) by the sender.
 *
 * @since 0.2.0
 * @category models
 */
export interface PreparedFrame {
  readonly kind: "Multicast" | "Join" | "Leave"
  readonly selfDiscard: boolean
  /** The group entries, 32 zero-padded bytes each. */
  readonly groups: ReadonlyArray<Uint8Array>
  readonly names: ReadonlyArray<string>
  readonly type: number
  readonly hint: number
  /** Bytes, or text up to {@link IN_PLACE_TEXT} UTF-16 units, encoded in place. */
  readonly data: Uint8Array | string
  cost: number
  via: string | undefined
}

/**
 * Strings up to this many UTF-16 units are encoded in place (3 bytes each at most).
 *
 * @since 0.2.0
 * @category constants
 */
export const IN_PLACE_TEXT = 8 * 1024
const encoder = new TextEncoder()

const refuse = (field: string, value: string | number, detail: string, reason: "Malformed" | "Oversize") =>
  requestErrorOf("multicast", protocolError(reason, field, value, detail))

/**
 * Checks a multicast and makes it ready to encode, or answers why it is
 * refused (nothing is sent then).
 *
 * @since 0.2.0
 * @category constructors
 */
export const prepareMulticast = (m: OutgoingMessage, names: NameCache): PreparedFrame | RequestError => {
  const list = typeof m.groups === "string" ? [m.groups] : m.groups
  const n = list.length
  if (n === 0) return refuse("groups", 0, "A multicast needs at least one group", "Malformed")
  if (n > REAL_DAEMON_MAX_GROUPS) {
    return refuse(
      "groups",
      n,
      `Cannot send to ${n} groups: a real Spread daemon delivers to at most ${REAL_DAEMON_MAX_GROUPS}`,
      "Oversize",
    )
  }
  const groups = new Array<Uint8Array>(n)
  for (let i = 0; i < n; i++) {
    const entry = names.destination(list[i])
    if (!(entry instanceof Uint8Array)) return entry
    groups[i] = entry
  }
  const service = m.service ?? "Agreed"
  const bits = serviceBitsOf(service)
  if (bits === 0) {
    return requestErrorOf(
      "multicast",
      protocolError("IllegalService", "service", String(service), "Unknown service level"),
    )
  }
  const mt = m.messType ?? 0
  if (!Number.isInteger(mt) || mt < -32768 || mt > 65535) {
    return refuse("mess_type", mt, "mess_type is a 16-bit integer", "Malformed")
  }
  let data = m.data
  if (typeof data === "string" && data.length > IN_PLACE_TEXT) data = encoder.encode(data)
  if (typeof data !== "string") {
    const size = data.length + MAX_GROUP_NAME * n
    if (size > REAL_DAEMON_MAX_PAYLOAD) {
      return refuse(
        "data_len + 32 * num_groups",
        size,
        `Cannot send ${data.length} bytes to ${n} group(s): data + 32 * groups exceeds ${REAL_DAEMON_MAX_PAYLOAD}`,
        "Oversize",
      )
    }
  }
  const selfDiscard = m.selfDiscard ?? false
  return {
    kind: "Multicast",
    selfDiscard,
    groups,
    names: list,
    type: bits | (selfDiscard ? ServiceBits.SELF_DISCARD : 0),
    hint: hintOf(mt),
    data,
    cost: 0,
    via: undefined,
  }
}

/**
 * A join or leave of `group` (validated by the caller), ready to encode.
 *
 * @since 0.2.0
 * @category constructors
 */
export const prepareCommand = (kind: "Join" | "Leave", group: string, names: NameCache): PreparedFrame => ({
  kind,
  selfDiscard: false,
  groups: [names.entry(group)],
  names: [group],
  type: kind === "Join" ? ServiceBits.JOIN_MESS : ServiceBits.LEAVE_MESS,
  hint: ENDIAN_RESERVED,
  data: "",
  cost: 0,
  via: undefined,
})
