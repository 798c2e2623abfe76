/**
 * Client-controlled bytes made safe for a log line or an error message.
 *
 * Names, auth method names and group names arrive as byte strings (one byte
 * per UTF-16 code unit) that a client chooses freely: newlines that would
 * forge a second log record, terminal escape sequences, bytes that are not
 * UTF-8. {@link quoted} is the one way such a value reaches text meant for
 * people: printable ASCII passes, everything else becomes an escape, and the
 * length is capped, so the result is always one line of printable ASCII.
 *
 * @module
 */

/**
 * The most characters of a value {@link quoted} shows before cutting it
 * short (longer than any Spread name, so a legal name is always whole).
 *
 * @since 0.1.0
 * @category constants
 */
export const QUOTED_MAX = 64

const HEX = "0123456789abcdef"

const escapeUnit = (c: number): string => {
  switch (c) {
    case 0x0a:
      return "\\n"
    case 0x0d:
      return "\\r"
    case 0x09:
      return "\\t"
    case 0x22:
      return '\\"'
    case 0x5c:
      return "\\\\"
  }
  if (c >= 0x20 && c < 0x7f) return String.fromCharCode(c)
  if (c < 0x100) return "\\x" + HEX[c >> 4] + HEX[c & 15]
  return "\\u" + HEX[(c >> 12) & 15] + HEX[(c >> 8) & 15] + HEX[(c >> 4) & 15] + HEX[c & 15]
}

/**
 * `value` in double quotes with every control byte, non-ASCII unit, quote
 * and backslash shown as an escape (`\n`, `\x1b`, `\xff`, `\u2028`, `\"`),
 * and at most `max` characters of it shown (then `...(+N)` says how many
 * were left out). The result is printable ASCII on one line whatever
 * `value` holds.
 *
 * @example
 * ```ts
 * import { quoted } from "@spreadfx/spreadfx/protocol"
 *
 * quoted("a\nlevel=ERROR") // '"a\\nlevel=ERROR"'
 * ```
 *
 * @since 0.1.0
 * @category formatting
 */
export const quoted = (value: string, max: number = QUOTED_MAX): string => {
  const n = Math.min(value.length, Math.max(0, max))
  let out = '"'
  for (let i = 0; i < n; i++) out += escapeUnit(value.charCodeAt(i))
  out += '"'
  return value.length > n ? `${out}...(+${value.length - n})` : out
}
