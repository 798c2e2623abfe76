/**
 * The connection handshake: connect message, auth-method list, 90-byte auth
 * choice, and accept or reject.
 *
 * Parsers take the bytes received so far and answer with the value and the
 * number of bytes it used, `undefined` when more bytes are needed, or a
 * {@link ProtocolError}. They never throw.
 *
 * @module
 */
import {
  AUTH_CHOICE_SIZE,
  MAX_AUTH_LIST,
  MAX_AUTH_METHODS,
  MAX_AUTH_NAME,
  MAX_GROUP_NAME,
  MAX_PRIVATE_NAME,
  type RejectCodeName,
  rejectCodeName,
} from "./constants.ts"
import { ProtocolError, protocolError } from "./errors.ts"
import { latin1String, readCString } from "./names.ts"

/**
 * A parser's success: the value and how many bytes it used.
 *
 * @since 0.1.0
 * @category models
 */
export interface Parsed<A> {
  /** The parsed value. */
  readonly value: A
  /** Number of input bytes the value took. */
  readonly consumed: number
}

/**
 * What a handshake parser answers: a value, `undefined` (need more bytes),
 * or an error.
 *
 * @since 0.1.0
 * @category models
 */
export type ParseResult<A> = Parsed<A> | ProtocolError | undefined

/**
 * A client library version as sent on the wire.
 *
 * @since 0.1.0
 * @category models
 */
export interface Version {
  /** Major version byte. */
  readonly major: number
  /** Minor version byte. */
  readonly minor: number
  /** Patch version byte (0 when not sent, before 3.15). */
  readonly patch: number
}

/**
 * Whether a version sends the patch byte (3.15 and later).
 *
 * @since 0.1.0
 * @category predicates
 */
export const hasPatchByte = (v: { readonly major: number; readonly minor: number }): boolean =>
  v.major * 10000 + v.minor * 100 > 31400

/**
 * Whether a client of this version takes part in the auth exchange (3.16+).
 *
 * @since 0.1.0
 * @category predicates
 */
export const usesAuthExchange = (v: Version): boolean => v.major * 10000 + v.minor * 100 + v.patch >= 31600

/**
 * Whether a daemon rejects this client version (below 3.1.0).
 *
 * @since 0.1.0
 * @category predicates
 */
export const isVersionTooOld = (v: Version): boolean => v.major * 10000 + v.minor * 100 + v.patch < 30100

/**
 * The client's connect message.
 *
 * @since 0.1.0
 * @category models
 */
export interface ConnectMessage {
  /** The client library version. */
  readonly version: Version
  /** Receive group-membership messages (flags bit 0). */
  readonly membership: boolean
  /** Priority, flags bits 4..7 (stored by daemons, never used). */
  readonly priority: number
  /** Requested private name; empty asks the daemon to generate one. */
  readonly name: string
}

/**
 * Encodes the connect message (sent in one write).
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeConnect = (msg: ConnectMessage): Uint8Array => {
  const patch = hasPatchByte(msg.version)
  const out = new Uint8Array((patch ? 5 : 4) + msg.name.length)
  let o = 0
  out[o++] = msg.version.major
  out[o++] = msg.version.minor
  if (patch) out[o++] = msg.version.patch
  out[o++] = (msg.membership ? 1 : 0) | ((msg.priority & 0x0f) << 4)
  out[o++] = msg.name.length
  for (let i = 0; i < msg.name.length; i++) out[o++] = msg.name.charCodeAt(i) & 0xff
  return out
}

/**
 * What a daemon learns from the first bytes of a connect message.
 *
 * - `TooOld`: the version is below 3.1.0 (answer REJECT_VERSION).
 * - `IllegalNameLength`: the length byte is negative or above 10 (answer
 *   REJECT_ILLEGAL_NAME).
 * - `Connect`: the whole message.
 *
 * @since 0.1.0
 * @category models
 */
export type ConnectParse =
  | { readonly _tag: "TooOld"; readonly version: Version }
  | { readonly _tag: "IllegalNameLength"; readonly length: number }
  | { readonly _tag: "Connect"; readonly message: ConnectMessage }

/**
 * Parses a connect message as a daemon reads it (section 3.1).
 *
 * @since 0.1.0
 * @category decoding
 */
export const parseConnect = (buf: Uint8Array): ParseResult<ConnectParse> => {
  if (buf.length < 2) return undefined
  const major = buf[0]
  const minor = buf[1]
  const withPatch = hasPatchByte({ major, minor })
  let o = 2
  let patch = 0
  if (withPatch) {
    if (buf.length < 3) return undefined
    patch = buf[2]
    o = 3
  }
  const version = { major, minor, patch }
  if (isVersionTooOld(version)) return { value: { _tag: "TooOld", version }, consumed: o }
  if (buf.length < o + 2) return undefined
  const flags = buf[o]
  const len = (buf[o + 1] << 24) >> 24
  o += 2
  if (len < 0 || len > MAX_PRIVATE_NAME) {
    return { value: { _tag: "IllegalNameLength", length: len }, consumed: o }
  }
  if (buf.length < o + len) return undefined
  const name = latin1String(buf.subarray(o, o + len))
  return {
    value: {
      _tag: "Connect",
      message: { version, membership: (flags & 1) === 1, priority: flags >> 4, name },
    },
    consumed: o + len,
  }
}

/**
 * Encodes the daemon's auth-method list: each name followed by a space.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeAuthList = (methods: ReadonlyArray<string>): Uint8Array => {
  const text = methods.map((m) => m + " ").join("")
  const out = new Uint8Array(1 + text.length)
  out[0] = text.length
  for (let i = 0; i < text.length; i++) out[1 + i] = text.charCodeAt(i) & 0xff
  return out
}

/**
 * The first message a client reads: an auth list, or a reject byte in its
 * place.
 *
 * @since 0.1.0
 * @category models
 */
export type AuthListOrReject =
  | { readonly _tag: "AuthList"; readonly methods: ReadonlyArray<string> }
  | HandshakeReject

/**
 * A handshake reject: the single signed byte a daemon sends before closing.
 *
 * @since 0.1.0
 * @category models
 */
export interface HandshakeReject {
  /** Discriminates a reject. */
  readonly _tag: "Reject"
  /** The reject code, as a signed byte. */
  readonly code: number
  /** The name of the reject code, or `Unknown` for a code outside the table. */
  readonly reason: RejectCodeName | "Unknown"
}

const reject = (byte: number): HandshakeReject => {
  const code = (byte << 24) >> 24
  return { _tag: "Reject", code, reason: rejectCodeName(code) ?? "Unknown" }
}

/**
 * Parses the auth list (or a reject byte) as a client reads it (section 3.2).
 *
 * @since 0.1.0
 * @category decoding
 */
export const parseAuthList = (buf: Uint8Array): ParseResult<AuthListOrReject> => {
  if (buf.length < 1) return undefined
  const len = (buf[0] << 24) >> 24
  if (len < 0) return { value: reject(buf[0]), consumed: 1 }
  if (len > MAX_AUTH_LIST) {
    return protocolError("Oversize", "authListLength", len, `An auth list has at most ${MAX_AUTH_LIST} bytes`)
  }
  if (buf.length < 1 + len) return undefined
  const text = latin1String(buf.subarray(1, 1 + len))
  const methods = text.split(" ").filter((m) => m.length > 0)
  return { value: { _tag: "AuthList", methods }, consumed: 1 + len }
}

/**
 * Encodes the 90-byte auth choice. At most two methods are sent: a real
 * daemon reads past its buffer when all three slots are filled.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeAuthChoice = (methods: ReadonlyArray<string>): Uint8Array | ProtocolError => {
  if (methods.length > MAX_AUTH_METHODS - 1) {
    return protocolError("Oversize", "authMethods", methods.length, "Send at most 2 auth methods")
  }
  const out = new Uint8Array(AUTH_CHOICE_SIZE)
  for (let s = 0; s < methods.length; s++) {
    const m = methods[s]
    if (m.length === 0 || m.length >= MAX_AUTH_NAME) {
      return protocolError("IllegalName", "authMethod", m, `An auth method name has 1 to ${MAX_AUTH_NAME - 1} bytes`)
    }
    for (let i = 0; i < m.length; i++) out[s * MAX_AUTH_NAME + i] = m.charCodeAt(i) & 0xff
  }
  return out
}

/**
 * Parses the 90-byte auth choice into the method names, in slot order,
 * stopping at the first empty slot.
 *
 * @since 0.1.0
 * @category decoding
 */
export const parseAuthChoice = (buf: Uint8Array): ParseResult<ReadonlyArray<string>> => {
  if (buf.length < AUTH_CHOICE_SIZE) return undefined
  const methods: Array<string> = []
  for (let s = 0; s < MAX_AUTH_METHODS; s++) {
    const name = readCString(buf, s * MAX_AUTH_NAME, MAX_AUTH_NAME)
    if (name.length === 0) break
    methods.push(name)
  }
  return { value: methods, consumed: AUTH_CHOICE_SIZE }
}

/**
 * Encodes a one-byte handshake reject.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeReject = (code: number): Uint8Array => Uint8Array.of(code & 0xff)

/**
 * The daemon's accept.
 *
 * @since 0.1.0
 * @category models
 */
export interface Accept {
  /** Discriminates an accept. */
  readonly _tag: "Accept"
  /** Daemon version; `patch` is 0 when the client is older than 3.15. */
  readonly version: Version
  /** The session's private group, `#name#daemon`. */
  readonly privateGroup: string
}

/**
 * Encodes the accept for a client of `clientVersion` (the patch byte is only
 * sent to 3.15+ clients).
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeAccept = (
  daemonVersion: Version,
  privateGroup: string,
  clientVersion: Version,
): Uint8Array => {
  const patch = hasPatchByte(clientVersion)
  const out = new Uint8Array((patch ? 5 : 4) + privateGroup.length)
  let o = 0
  out[o++] = 1
  out[o++] = daemonVersion.major
  out[o++] = daemonVersion.minor
  if (patch) out[o++] = daemonVersion.patch
  out[o++] = privateGroup.length
  for (let i = 0; i < privateGroup.length; i++) out[o++] = privateGroup.charCodeAt(i) & 0xff
  return out
}

/**
 * Parses the accept (or a reject byte in its place) as a client of
 * `clientVersion` reads it (section 3.5).
 *
 * @since 0.1.0
 * @category decoding
 */
export const parseAccept = (
  buf: Uint8Array,
  clientVersion: Version,
): ParseResult<Accept | HandshakeReject> => {
  if (buf.length < 1) return undefined
  if (buf[0] !== 1) return { value: reject(buf[0]), consumed: 1 }
  const patch = hasPatchByte(clientVersion)
  const head = patch ? 5 : 4
  if (buf.length < head) return undefined
  const major = (buf[1] << 24) >> 24
  const minor = (buf[2] << 24) >> 24
  const p = patch ? (buf[3] << 24) >> 24 : 0
  const len = (buf[head - 1] << 24) >> 24
  if (major < 0 || minor < 0 || p < 0) {
    return protocolError("Malformed", "acceptVersion", `${major}.${minor}.${p}`, "Negative version byte")
  }
  if (len < 0) {
    return protocolError("Negative", "privateGroupLength", len, "The private group name length is negative")
  }
  if (len >= MAX_GROUP_NAME) {
    return protocolError(
      "Oversize",
      "privateGroupLength",
      len,
      `A private group name has 0 to ${MAX_GROUP_NAME - 1} bytes`,
    )
  }
  if (buf.length < head + len) return undefined
  return {
    value: {
      _tag: "Accept",
      version: { major, minor, patch: p },
      privateGroup: latin1String(buf.subarray(head, head + len)),
    },
    consumed: head + len,
  }
}

/**
 * Whether a value is a {@link ProtocolError} (for narrowing parser results).
 *
 * @since 0.1.0
 * @category predicates
 */
export const isProtocolError = (u: unknown): u is ProtocolError => u instanceof ProtocolError
