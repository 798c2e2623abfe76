/**
 * Private, group and daemon names: validation and the fixed 32-byte field.
 *
 * Names are byte strings. They are mapped to JavaScript strings one byte per
 * UTF-16 code unit (Latin-1), so any byte sequence round-trips exactly.
 *
 * @module
 */
import { MAX_GROUP_NAME, MAX_PRIVATE_NAME, MAX_PROC_NAME } from "./constants.ts"
import { type ProtocolError, protocolError } from "./errors.ts"
import { quoted } from "./printable.ts"

/**
 * Reads a C string from a fixed-size field: bytes up to the first NUL. Bytes
 * after the NUL are ignored (real clients send garbage there).
 *
 * @since 0.1.0
 * @category decoding
 */
export const readCString = (buf: Uint8Array, offset: number, size: number): string => {
  // A per-byte loop measured faster than String.fromCharCode.apply or a
  // TextDecoder for names of up to 32 bytes.
  let s = ""
  const end = Math.min(offset + size, buf.length)
  for (let i = offset; i < end; i++) {
    const b = buf[i]
    if (b === 0) break
    s += String.fromCharCode(b)
  }
  return s
}

/**
 * Whether the C string in the `size`-byte field at `buf[offset]` is `name`:
 * what {@link readCString} would answer, compared without making a string.
 * For readers that see one name again and again (a flood to one group):
 * they keep the last name and its string, whose hash a `Map` lookup then
 * does not compute anew.
 *
 * @since 0.2.0
 * @category decoding
 */
export const isCStringAt = (buf: Uint8Array, offset: number, size: number, name: string): boolean => {
  const n = name.length
  if (n > size) return false
  const end = Math.min(offset + n, buf.length)
  if (end - offset < n) return false
  for (let i = 0; i < n; i++) if (buf[offset + i] !== name.charCodeAt(i)) return false
  return n === size || offset + n >= buf.length || buf[offset + n] === 0
}

/**
 * Writes `name` into a zero-padded fixed field of `size` bytes (the caller
 * has validated that it fits with its NUL).
 *
 * @since 0.1.0
 * @category encoding
 */
export const writeCString = (buf: Uint8Array, offset: number, size: number, name: string): void => {
  const n = name.length < size ? name.length : size - 1
  for (let i = 0; i < n; i++) buf[offset + i] = name.charCodeAt(i) & 0xff
  buf.fill(0, offset + n, offset + size)
}

/**
 * Converts a byte-string to bytes (one byte per code unit).
 *
 * @since 0.1.0
 * @category encoding
 */
export const latin1Bytes = (s: string): Uint8Array => {
  const out = new Uint8Array(s.length)
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff
  return out
}

/**
 * Converts bytes to a byte-string (one code unit per byte).
 *
 * @since 0.1.0
 * @category decoding
 */
export const latin1String = (bytes: Uint8Array): string => {
  let s = ""
  for (let i = 0; i < bytes.length; i += 4096) {
    s += String.fromCharCode.apply(null, bytes.subarray(i, i + 4096) as unknown as Array<number>)
  }
  return s
}

const firstIllegalChar = (name: string): number => {
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i)
    if (c < 0x24 || c > 0x7e) return i
  }
  return -1
}

/**
 * Validates a private name a client asks for: 0 to 10 bytes in `$`..`~`.
 * An empty name asks the daemon to generate one.
 *
 * @since 0.1.0
 * @category validation
 */
export const validatePrivateName = (name: string): ProtocolError | undefined => {
  if (name.length > MAX_PRIVATE_NAME) {
    return protocolError(
      "IllegalName",
      "privateName",
      name,
      `Cannot use private name ${quoted(name)} as it exceeds ${MAX_PRIVATE_NAME} bytes`,
    )
  }
  const bad = firstIllegalChar(name)
  if (bad >= 0) {
    return protocolError(
      "IllegalName",
      "privateName",
      name,
      `Cannot use private name ${quoted(name)} as byte ${bad} (0x${
        name.charCodeAt(bad).toString(16)
      }) is outside 0x24..0x7E`,
    )
  }
  return undefined
}

/**
 * Validates a group name for join, leave or multicast: 1 to 31 bytes in
 * `$`..`~`, not starting with `#` (reserved for private groups) unless
 * `allowPrivate` is set (multicast destinations may be private groups).
 *
 * @since 0.1.0
 * @category validation
 */
export const validateGroupName = (
  name: string,
  allowPrivate = false,
): ProtocolError | undefined => {
  if (name.length === 0) {
    return protocolError("IllegalName", "group", name, "Cannot use an empty group name")
  }
  if (name.length >= MAX_GROUP_NAME) {
    return protocolError(
      "IllegalName",
      "group",
      name,
      `Cannot use group ${quoted(name)} as the name exceeds ${MAX_GROUP_NAME - 1} bytes`,
    )
  }
  if (name.charCodeAt(0) === 0x23) {
    if (allowPrivate && parsePrivateGroup(name) !== undefined) return undefined
    return protocolError(
      "IllegalName",
      "group",
      name,
      allowPrivate
        ? `Cannot send to ${quoted(name)}: a name starting with '#' must be a private group "#name#daemon"`
        : `Cannot join or leave ${quoted(name)}: names starting with '#' are private groups`,
    )
  }
  const bad = firstIllegalChar(name)
  if (bad >= 0) {
    return protocolError(
      "IllegalName",
      "group",
      name,
      `Cannot use group ${quoted(name)} as byte ${bad} (0x${name.charCodeAt(bad).toString(16)}) is outside 0x24..0x7E`,
    )
  }
  return undefined
}

/**
 * Validates a daemon name: 1 to 19 bytes in `$`..`~`, no `#`.
 *
 * @since 0.1.0
 * @category validation
 */
export const validateDaemonName = (name: string): ProtocolError | undefined => {
  if (name.length === 0 || name.length > MAX_PROC_NAME) {
    return protocolError(
      "IllegalName",
      "daemonName",
      name,
      `A daemon name has 1 to ${MAX_PROC_NAME} bytes`,
    )
  }
  const bad = firstIllegalChar(name)
  if (bad >= 0 || name.includes("#")) {
    return protocolError(
      "IllegalName",
      "daemonName",
      name,
      `A daemon name uses bytes 0x24..0x7E other than '#'`,
    )
  }
  return undefined
}

/**
 * Builds the private group name `#<private>#<daemon>`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const privateGroupName = (privateName: string, daemonName: string): string => `#${privateName}#${daemonName}`

/**
 * Splits a private group name `#priv#proc` (1..10 and 1..19 bytes, each in
 * 0x24..0x7E), or returns `undefined` when it is not one.
 *
 * @since 0.1.0
 * @category decoding
 */
export const parsePrivateGroup = (
  name: string,
): { readonly privateName: string; readonly daemonName: string } | undefined => {
  if (name.charCodeAt(0) !== 0x23) return undefined
  const second = name.indexOf("#", 1)
  if (second < 0) return undefined
  const privateName = name.slice(1, second)
  const daemonName = name.slice(second + 1)
  if (privateName.length < 1 || privateName.length > MAX_PRIVATE_NAME) return undefined
  if (daemonName.length < 1 || daemonName.length > MAX_PROC_NAME) return undefined
  if (firstIllegalChar(privateName) >= 0 || firstIllegalChar(daemonName) >= 0) return undefined
  if (daemonName.includes("#")) return undefined
  return { privateName, daemonName }
}
