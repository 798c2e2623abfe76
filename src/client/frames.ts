/**
 * Outgoing frames of a session: what a user asks for, checked once and
 * kept ready to encode, and the encoder that writes one in place into the
 * outbound buffer. Pure: no Effect, no IO.
 *
 * A real Spread 5.0.1 daemon is the yardstick for what is refused: more than
 * {@link REAL_DAEMON_MAX_GROUPS} destinations (it misroutes them silently)
 * and `data + 32 * groups` above {@link REAL_DAEMON_MAX_PAYLOAD} (it
 * corrupts its heap or aborts).
 *
 * @module
 */
import { writeU32 } from "../protocol/bytes.ts"
import {
  ENDIAN_RESERVED,
  HEADER_SIZE,
  MAX_GROUP_NAME,
  REAL_DAEMON_MAX_GROUPS,
  REAL_DAEMON_MAX_PAYLOAD,
  ServiceBits,
  type ServiceLevel,
} from "../protocol/constants.ts"
import { protocolError } from "../protocol/errors.ts"
import { validateGroupName } from "../protocol/names.ts"
import { type RequestError, requestErrorOf } from "./errors.ts"

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
/** Most validated destination names cached; the cache starts over beyond. */
const NAME_CACHE = 4096
const encoder = new TextEncoder()

/**
 * A name as a 32-byte, zero-padded group entry (names are latin1, under 32 bytes).
 *
 * @since 0.2.0
 * @category encoding
 */
export const paddedName = (name: string): Uint8Array => {
  const out = new Uint8Array(MAX_GROUP_NAME)
  for (let i = 0; i < name.length && i < MAX_GROUP_NAME - 1; i++) out[i] = name.charCodeAt(i) & 0xff
  return out
}

/**
 * Group entries of names already validated, so the hot path checks and
 * converts each destination once.
 *
 * @since 0.2.0
 * @category models
 */
export class NameCache {
  readonly #entries = new Map<string, Uint8Array>()

  /** The entry of `name` when it was validated before. */
  cached(name: string): Uint8Array | undefined {
    return this.#entries.get(name)
  }

  /** The entry of `name` if it is a valid destination, else the error. */
  destination(name: string): Uint8Array | RequestError {
    const cached = this.#entries.get(name)
    if (cached !== undefined) return cached
    const invalid = validateGroupName(name, true)
    if (invalid !== undefined) return requestErrorOf("multicast", invalid)
    return this.entry(name)
  }

  /** The entry of a name the caller has validated. */
  entry(name: string): Uint8Array {
    let bytes = this.#entries.get(name)
    if (bytes === undefined) {
      bytes = paddedName(name)
      if (this.#entries.size >= NAME_CACHE) this.#entries.clear()
      this.#entries.set(name, bytes)
    }
    return bytes
  }
}

/**
 * The service bits of a level; 0 for anything else (a switch, not a keyed
 * lookup: cheap on the hot path).
 *
 * @since 0.2.0
 * @category encoding
 */
export const serviceBitsOf = (service: ServiceLevel): number => {
  switch (service) {
    case "Unreliable":
      return ServiceBits.UNRELIABLE_MESS
    case "Reliable":
      return ServiceBits.RELIABLE_MESS
    case "Fifo":
      return ServiceBits.FIFO_MESS
    case "Causal":
      return ServiceBits.CAUSAL_MESS
    case "Agreed":
      return ServiceBits.AGREED_MESS
    case "Safe":
      return ServiceBits.SAFE_MESS
    default:
      return 0
  }
}

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

/**
 * The most bytes the frame of `p` takes (text counts 3 bytes a unit).
 *
 * @since 0.2.0
 * @category encoding
 */
export const frameBound = (p: PreparedFrame): number =>
  HEADER_SIZE + MAX_GROUP_NAME * p.groups.length + (typeof p.data === "string" ? p.data.length * 3 : p.data.length)

/**
 * Writes the frame of `p`, sent by the private group whose entry is
 * `nameField`, at `o` in `buf` (which has {@link frameBound} bytes there),
 * little-endian; answers its length.
 *
 * @since 0.2.0
 * @category encoding
 */
export const writeFrame = (buf: Uint8Array, o: number, nameField: Uint8Array, p: PreparedFrame): number => {
  const n = p.groups.length
  const fixed = HEADER_SIZE + MAX_GROUP_NAME * n
  const data = p.data
  let dataLen: number
  if (typeof data === "string") {
    dataLen = data.length === 0
      ? 0
      : encoder.encodeInto(data, buf.subarray(o + fixed, o + fixed + data.length * 3)).written
  } else {
    buf.set(data, o + fixed)
    dataLen = data.length
  }
  writeHeader(buf, o, nameField, p.type, n, p.hint, dataLen)
  for (let i = 0, g = o + HEADER_SIZE; i < n; i++, g += MAX_GROUP_NAME) buf.set(p.groups[i], g)
  return fixed + dataLen
}

/**
 * The hint of a mess_type, little-endian marker included.
 *
 * @since 0.2.0
 * @category encoding
 */
export const hintOf = (messType: number): number => (((messType << 8) & 0x00ffff00) | ENDIAN_RESERVED) >>> 0

/**
 * Writes a little-endian 48-byte header at `o`.
 *
 * @since 0.2.0
 * @category encoding
 */
export const writeHeader = (
  buf: Uint8Array,
  o: number,
  nameField: Uint8Array,
  type: number,
  numGroups: number,
  hint: number,
  dataLen: number,
): void => {
  writeU32(buf, o, (type | ENDIAN_RESERVED) >>> 0, true)
  buf.set(nameField, o + 4)
  writeU32(buf, o + 36, numGroups, true)
  writeU32(buf, o + 40, hint, true)
  writeU32(buf, o + 44, dataLen, true)
}

/**
 * The disconnect (KILL) frame of the private group whose entry is `nameField`.
 *
 * @since 0.2.0
 * @category encoding
 */
export const killFrame = (nameField: Uint8Array): Uint8Array => {
  const buf = new Uint8Array(HEADER_SIZE + MAX_GROUP_NAME)
  writeU32(buf, 0, (ServiceBits.KILL_MESS | ENDIAN_RESERVED) >>> 0, true)
  buf.set(nameField, 4)
  writeU32(buf, 36, 1, true)
  writeU32(buf, 40, ENDIAN_RESERVED, true)
  buf.set(nameField, HEADER_SIZE)
  return buf
}
