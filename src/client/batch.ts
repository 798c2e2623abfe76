/**
 * Outgoing requests, validated and ready to encode, and their encoding into
 * blocks: whole frames laid end to end in one buffer.
 *
 * Consecutive multicasts of the same shape (destinations, service,
 * mess_type, SELF_DISCARD and data length) share every header byte, so a
 * block of them is encoded once with the codec and the header is copied for
 * the others: one allocation per block instead of one per message, and a
 * block the size of a socket write is written without another copy. A
 * block holds only whole frames, so frames never interleave.
 *
 * @module
 */
import { HEADER_SIZE, MAX_GROUP_NAME } from "../protocol/constants.ts"
import { encodeMulticast, type MulticastSpec } from "../protocol/messages.ts"

/**
 * A validated request: a multicast (encoded later, in a block) or a join or
 * leave (already encoded).
 *
 * @since 0.1.0
 * @category models
 */
export type Request =
  | {
    readonly kind: "Multicast"
    readonly spec: MulticastSpec
    /** The destinations (as in `spec`). */
    readonly groups: ReadonlyArray<string>
    readonly selfDiscard: boolean
  }
  | { readonly kind: "Join" | "Leave"; readonly groups: readonly [string]; readonly frame: Uint8Array }

/**
 * Requests `from..to` (exclusive) of a list, encoded as one buffer.
 *
 * @since 0.1.0
 * @category models
 */
export interface Block {
  readonly bytes: Uint8Array
  readonly from: number
  readonly to: number
}

/** Bytes of the frame of a multicast. */
const frameSize = (spec: MulticastSpec): number => HEADER_SIZE + MAX_GROUP_NAME * spec.groups.length + spec.data.length

const sameGroups = (a: ReadonlyArray<string>, b: ReadonlyArray<string>): boolean => {
  if (a === b) return true
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

const sameShape = (a: MulticastSpec, b: MulticastSpec): boolean =>
  a.data.length === b.data.length &&
  a.service === b.service &&
  (a.messType ?? 0) === (b.messType ?? 0) &&
  (a.selfDiscard ?? false) === (b.selfDiscard ?? false) &&
  sameGroups(a.groups, b.groups)

/**
 * Encodes `requests[from..to)` into blocks of at most `maxBytes` (a single
 * larger frame gets a block of its own).
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeBlocks = (
  requests: ReadonlyArray<Request>,
  from: number,
  to: number,
  maxBytes: number,
): Array<Block> => {
  const blocks: Array<Block> = []
  let i = from
  while (i < to) {
    const r = requests[i]
    if (r.kind !== "Multicast") {
      blocks.push({ bytes: r.frame, from: i, to: i + 1 })
      i++
      continue
    }
    const size = frameSize(r.spec)
    let end = i + 1
    while (end < to && (end - i + 1) * size <= maxBytes) {
      const next = requests[end]
      if (next.kind !== "Multicast" || !sameShape(r.spec, next.spec)) break
      end++
    }
    const first = encodeMulticast(r.spec)
    if (end === i + 1) {
      blocks.push({ bytes: first, from: i, to: end })
    } else {
      const header = first.subarray(0, size - r.spec.data.length)
      const bytes = new Uint8Array((end - i) * size)
      bytes.set(first, 0)
      for (let k = i + 1, o = size; k < end; k++, o += size) {
        const next = requests[k]
        if (next.kind !== "Multicast") break // never: the block holds multicasts only
        bytes.set(header, o)
        bytes.set(next.spec.data, o + header.length)
      }
      blocks.push({ bytes, from: i, to: end })
    }
    i = end
  }
  return blocks
}
