/**
 * Outgoing frames of a session: what a user asks for, checked once and
 * kept ready to encode. The destinations come from the session's cache of
 * validated names (name_cache.ts); the protocol's `encodeInto` writes a
 * prepared frame in place into the outbound buffer. Pure: no Effect, no IO.
 *
 * A real Spread 5.0.1 daemon is the yardstick for what is refused: the
 * protocol's one validator, `checkMulticast`, with `spreadDaemonLimits`
 * (more than 43 destinations it misroutes silently; `data + 32 * groups`
 * above 143151 bytes corrupts its heap or aborts it).
 *
 * @module
 */
import { checkMulticast, spreadDaemonLimits } from "../../protocol/client_requests.ts"
import { ENDIAN_RESERVED, ServiceBits, serviceBitsOf, type ServiceLevel } from "../../protocol/constants.ts"
import type { EncodableFrame } from "../../protocol/encode.ts"
import type { ProtocolError } from "../../protocol/errors.ts"
import { hintOf } from "../../protocol/frame.ts"
import { type RequestError, requestErrorOf } from "../core/errors.ts"
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
export interface PreparedFrame extends EncodableFrame {
  readonly kind: "Multicast" | "Join" | "Leave"
  readonly selfDiscard: boolean
  readonly names: ReadonlyArray<string>
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

/**
 * Checks a multicast (the protocol's one validator, with the limits of a
 * real Spread daemon) and makes it ready to encode, or answers why it is
 * refused (nothing is sent then).
 *
 * @since 0.2.0
 * @category constructors
 */
export const prepareMulticast = (m: OutgoingMessage, names: NameCache): PreparedFrame | RequestError => {
  const list = typeof m.groups === "string" ? [m.groups] : m.groups
  const groups: Array<Uint8Array> = []
  const service = m.service ?? "Agreed"
  const mt = m.messType ?? 0
  let data = m.data
  if (typeof data === "string" && data.length > IN_PLACE_TEXT) data = encoder.encode(data)
  const invalid = checkMulticast(
    { groups: list, service, messType: mt, dataLength: typeof data === "string" ? data.length * 3 : data.length },
    spreadDaemonLimits,
    (g): ProtocolError | undefined => {
      const entry = names.destination(g)
      if (!(entry instanceof Uint8Array)) return entry
      groups.push(entry)
      return undefined
    },
  )
  if (invalid !== undefined) return requestErrorOf("multicast", invalid)
  const selfDiscard = m.selfDiscard ?? false
  return {
    kind: "Multicast",
    selfDiscard,
    groups,
    names: list,
    type: serviceBitsOf(service) | (selfDiscard ? ServiceBits.SELF_DISCARD : 0),
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
