/**
 * The destination names a session has validated, each kept as the 32-byte,
 * zero-padded group entry a frame carries, so that the hot path checks and
 * converts a destination once. Pure: no Effect, no IO.
 *
 * @module
 */
import { groupEntry } from "../../protocol/encode.ts"
import type { ProtocolError } from "../../protocol/errors.ts"
import { validateGroupName } from "../../protocol/names.ts"

/** Most validated destination names cached; the cache starts over beyond. */
const NAME_CACHE = 4096

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
  destination(name: string): Uint8Array | ProtocolError {
    const cached = this.#entries.get(name)
    if (cached !== undefined) return cached
    return validateGroupName(name, true) ?? this.entry(name)
  }

  /** The entry of a name the caller has validated. */
  entry(name: string): Uint8Array {
    let bytes = this.#entries.get(name)
    if (bytes === undefined) {
      bytes = groupEntry(name)
      if (this.#entries.size >= NAME_CACHE) this.#entries.clear()
      this.#entries.set(name, bytes)
    }
    return bytes
  }
}
