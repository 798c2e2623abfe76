/**
 * The daemon's checks of client frames: the header rules a real daemon
 * applies (one service or command bit, the sender's own name, the hint),
 * answering a typed request or the rule broken.
 *
 * @module
 */
import { MAX_GROUP_NAME, ServiceBits, type ServiceLevel, serviceLevelOf } from "./constants.ts"
import { type ProtocolError, protocolError } from "./errors.ts"
import type { Frame } from "./frame.ts"
import { parsePrivateGroup, readCString } from "./names.ts"

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
