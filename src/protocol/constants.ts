/**
 * Numeric constants of the Spread 4/5 client–daemon protocol: sizes, limits,
 * service and command bits, and the C API's result codes.
 *
 * Values follow Spread 5.0.1 (`sp.h`, `sess_types.h`, `spread_params.h`) as
 * documented in the protocol reference.
 *
 * @module
 */

/**
 * Default TCP port of a Spread daemon, and the number in its Unix socket path.
 *
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_SPREAD_PORT = 4803

/**
 * Size of every group-name field on the wire, including the terminating NUL.
 *
 * @since 0.1.0
 * @category constants
 */
export const MAX_GROUP_NAME = 32

/**
 * Longest private name a client may request, in bytes.
 *
 * @since 0.1.0
 * @category constants
 */
export const MAX_PRIVATE_NAME = 10

/**
 * Longest daemon name, in bytes (the C field holds 20 with its NUL).
 *
 * @since 0.1.0
 * @category constants
 */
export const MAX_PROC_NAME = 19

/**
 * Size of the fixed message header.
 *
 * @since 0.1.0
 * @category constants
 */
export const HEADER_SIZE = 48

/**
 * Size of the `old_type` field that daemon rejects carry after the header.
 *
 * @since 0.1.0
 * @category constants
 */
export const REJECT_OLD_TYPE_SIZE = 4

/**
 * Most destination groups in one client message; a real daemon kills a
 * session that sends more.
 *
 * @since 0.1.0
 * @category constants
 */
export const MAX_GROUPS_PER_MESSAGE = 100

/**
 * The nominal body limit (`MAX_MESSAGE_BODY_LEN`): a real daemon kills a
 * session whose `data_len` exceeds it.
 *
 * @since 0.1.0
 * @category constants
 */
export const MAX_MESSAGE_BODY_LEN = 144000

/**
 * The largest `data_len + 32 * num_groups` a real daemon's header check lets
 * through (`144000 - 48`). Values above it get the session killed.
 *
 * @since 0.1.0
 * @category constants
 */
export const DAEMON_HEADER_CHECK_LIMIT = 143952

/**
 * The true maximum of `data_len + 32 * num_groups`. Sizes from 143153 to
 * 143952 pass a real 5.0.1 daemon's checks and then abort it on an assertion
 * (protocol reference section 11), so nothing larger is ever sent or accepted.
 *
 * @since 0.1.0
 * @category constants
 */
export const MAX_MESSAGE_PAYLOAD = 143152

/**
 * The most destination groups a real Spread 5.0.1 daemon routes correctly.
 * It reads the group list out of the first 1432-byte fragment of a message;
 * with 44 or more groups the 48-byte header and the list do not fit there,
 * and the daemon routes with a list shifted by 48 bytes: the message reaches
 * nobody (short names) or the wrong groups, and no error is reported. So
 * 43 = (1472 - 40 - 48) / 32, whatever the data size. The client refuses
 * more; the embedded daemon accepts up to {@link MAX_GROUPS_PER_MESSAGE}.
 *
 * @since 0.2.0
 * @category constants
 */
export const REAL_DAEMON_MAX_GROUPS = 43

/**
 * The largest `data_len + 32 * num_groups` the client sends. Exactly
 * 143152 (`100 * 1432 - 48`, e.g. 143120 bytes to one group or 143088 to
 * two) makes a real 5.0.1 daemon write one element past its scatter array,
 * which corrupts its heap and can abort it later; 143153..143952 abort it at
 * once on an assertion. So one below {@link MAX_MESSAGE_PAYLOAD}.
 *
 * @since 0.2.0
 * @category constants
 */
export const REAL_DAEMON_MAX_PAYLOAD = MAX_MESSAGE_PAYLOAD - 1

/**
 * Size of the client's auth choice: three NUL-padded 30-byte slots.
 *
 * @since 0.1.0
 * @category constants
 */
export const AUTH_CHOICE_SIZE = 90

/**
 * Size of one slot in the auth choice.
 *
 * @since 0.1.0
 * @category constants
 */
export const MAX_AUTH_NAME = 30

/**
 * Number of slots in the auth choice.
 *
 * @since 0.1.0
 * @category constants
 */
export const MAX_AUTH_METHODS = 3

/**
 * Longest auth-method list a client accepts from a daemon.
 *
 * @since 0.1.0
 * @category constants
 */
export const MAX_AUTH_LIST = 90

/**
 * Default per-session outbound queue limit of a real daemon
 * (`MaxSessionMessages`).
 *
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_MAX_SESSION_MESSAGES = 1000

/**
 * Members per group per daemon in Spread 5.0.1.
 *
 * @since 0.1.0
 * @category constants
 */
export const MAX_LOCAL_GROUP_MEMBERS = 3122

/**
 * Endian marker bits set in `type` and `hint` by a little-endian writer.
 *
 * @since 0.1.0
 * @category constants
 */
export const ENDIAN_RESERVED = 0x80000080

/**
 * Version this library speaks on the wire (that of Spread 5.0.1).
 *
 * @since 0.1.0
 * @category constants
 */
export const SPREAD_VERSION = { major: 5, minor: 0, patch: 1 } as const

/**
 * Service and command bits of a message's `type` field.
 *
 * @since 0.1.0
 * @category constants
 */
export const ServiceBits = {
  UNRELIABLE_MESS: 0x00000001,
  RELIABLE_MESS: 0x00000002,
  FIFO_MESS: 0x00000004,
  CAUSAL_MESS: 0x00000008,
  AGREED_MESS: 0x00000010,
  SAFE_MESS: 0x00000020,
  REGULAR_MESS: 0x0000003f,
  SELF_DISCARD: 0x00000040,
  CAUSED_BY_JOIN: 0x00000100,
  CAUSED_BY_LEAVE: 0x00000200,
  CAUSED_BY_DISCONNECT: 0x00000400,
  CAUSED_BY_NETWORK: 0x00000800,
  REG_MEMB_MESS: 0x00001000,
  TRANSITION_MESS: 0x00002000,
  MEMBERSHIP_MESS: 0x00003f00,
  JOIN_MESS: 0x00010000,
  LEAVE_MESS: 0x00020000,
  KILL_MESS: 0x00040000,
  GROUPS_MESS: 0x00080000,
  REJECT_MESS: 0x00400000,
  DROP_RECV: 0x01000000,
} as const

/**
 * The six service levels a multicast may carry; exactly one is set.
 *
 * @since 0.1.0
 * @category models
 */
export type ServiceLevel =
  | "Unreliable"
  | "Reliable"
  | "Fifo"
  | "Causal"
  | "Agreed"
  | "Safe"

/**
 * Bit of each service level.
 *
 * @since 0.1.0
 * @category constants
 */
export const serviceLevelBits: { readonly [K in ServiceLevel]: number } = {
  Unreliable: ServiceBits.UNRELIABLE_MESS,
  Reliable: ServiceBits.RELIABLE_MESS,
  Fifo: ServiceBits.FIFO_MESS,
  Causal: ServiceBits.CAUSAL_MESS,
  Agreed: ServiceBits.AGREED_MESS,
  Safe: ServiceBits.SAFE_MESS,
}

/**
 * The service bits of a level; 0 for anything else (a switch, not a keyed
 * lookup: cheap on the hot path, and safe for a value that is not a level).
 *
 * @since 0.3.0
 * @category constructors
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

/**
 * The service level a `type` carries, when exactly one service bit is set.
 *
 * @since 0.1.0
 * @category constructors
 */
export const serviceLevelOf = (type: number): ServiceLevel | undefined => {
  switch (type & ServiceBits.REGULAR_MESS) {
    case 0x01:
      return "Unreliable"
    case 0x02:
      return "Reliable"
    case 0x04:
      return "Fifo"
    case 0x08:
      return "Causal"
    case 0x10:
      return "Agreed"
    case 0x20:
      return "Safe"
    default:
      return undefined
  }
}

/**
 * Every type bit a well-behaved client may put on a message it sends: the
 * six service bits, SELF_DISCARD, JOIN/LEAVE/KILL and the endian marker.
 *
 * @since 0.1.0
 * @category constants
 */
export const CLIENT_TYPE_MASK = 0x0000007f | 0x00070000 | ENDIAN_RESERVED

/**
 * Result codes of the Spread C API (`sp.h`), including the daemon's
 * handshake reject codes.
 *
 * @since 0.1.0
 * @category constants
 */
export const ErrorCodes = {
  ACCEPT_SESSION: 1,
  ILLEGAL_SPREAD: -1,
  COULD_NOT_CONNECT: -2,
  REJECT_QUOTA: -3,
  REJECT_NO_NAME: -4,
  REJECT_ILLEGAL_NAME: -5,
  REJECT_NOT_UNIQUE: -6,
  REJECT_VERSION: -7,
  CONNECTION_CLOSED: -8,
  REJECT_AUTH: -9,
  ILLEGAL_SESSION: -11,
  ILLEGAL_SERVICE: -12,
  ILLEGAL_MESSAGE: -13,
  ILLEGAL_GROUP: -14,
  BUFFER_TOO_SHORT: -15,
  GROUPS_TOO_SHORT: -16,
  MESSAGE_TOO_LONG: -17,
  NET_ERROR_ON_SESSION: -18,
  SP_BUG: -19,
  ILLEGAL_TIME: -20,
} as const

/**
 * Name of a Spread C API result code.
 *
 * @since 0.1.0
 * @category models
 */
export type ErrorCodeName = keyof typeof ErrorCodes

/**
 * The reject codes a daemon sends as a single byte during the handshake.
 *
 * @since 0.1.0
 * @category models
 */
export type RejectCodeName =
  | "REJECT_QUOTA"
  | "REJECT_NO_NAME"
  | "REJECT_ILLEGAL_NAME"
  | "REJECT_NOT_UNIQUE"
  | "REJECT_VERSION"
  | "REJECT_AUTH"

/**
 * Every handshake reject code, by name.
 *
 * @since 0.1.0
 * @category constants
 */
export const RejectCodes: { readonly [K in RejectCodeName]: number } = {
  REJECT_QUOTA: ErrorCodes.REJECT_QUOTA,
  REJECT_NO_NAME: ErrorCodes.REJECT_NO_NAME,
  REJECT_ILLEGAL_NAME: ErrorCodes.REJECT_ILLEGAL_NAME,
  REJECT_NOT_UNIQUE: ErrorCodes.REJECT_NOT_UNIQUE,
  REJECT_VERSION: ErrorCodes.REJECT_VERSION,
  REJECT_AUTH: ErrorCodes.REJECT_AUTH,
}

/**
 * The reject-code name for a signed reject byte, or `undefined` when the
 * byte is not a known reject code.
 *
 * @since 0.1.0
 * @category constructors
 */
export const rejectCodeName = (code: number): RejectCodeName | undefined => {
  switch (code) {
    case -3:
      return "REJECT_QUOTA"
    case -4:
      return "REJECT_NO_NAME"
    case -5:
      return "REJECT_ILLEGAL_NAME"
    case -6:
      return "REJECT_NOT_UNIQUE"
    case -7:
      return "REJECT_VERSION"
    case -9:
      return "REJECT_AUTH"
    default:
      return undefined
  }
}

/**
 * The C API name of a result code, or `undefined` for an unknown code.
 *
 * @since 0.1.0
 * @category constructors
 */
export const errorCodeName = (code: number): ErrorCodeName | undefined => {
  for (const [name, value] of Object.entries(ErrorCodes)) {
    if (value === code) return name as ErrorCodeName
  }
  return undefined
}
