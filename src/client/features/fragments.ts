/**
 * Large messages: a payload too big for one Spread message is sent as a run
 * of fragment envelopes (kind 16 of envelope.ts) and put back together by
 * the receiving client, in order, per sender. Pure bookkeeping: no Effect,
 * no IO.
 *
 * A fragment's envelope has no reply-to and three extension fields, so its
 * header is 36 bytes (all big-endian):
 *
 * | offset | size | field                                              |
 * | ------ | ---- | -------------------------------------------------- |
 * | 0..19  |      | the envelope's fixed fields; kind 16, `H` = 36     |
 * | 8      | 8    | correlation id: the message's id, unique per sender |
 * | 20     | 4    | index of this fragment, from 0                      |
 * | 24     | 4    | count of fragments                                  |
 * | 28     | 4    | total length of the whole payload                   |
 * | 32     | 4    | CRC-32 of bytes 0..31                               |
 * | 36     | …    | this fragment's part of the payload                 |
 *
 * The fragments of one message go out in order under the flow window, and
 * only with a service that keeps FIFO order per sender (`Fifo`, `Causal`,
 * `Agreed`, `Safe`); a receiver appends each to its sender's partial message
 * and delivers the whole once the last arrives, with the sender, groups,
 * service and mess_type of its fragments. Each fragment's part of the
 * payload is at most {@link FRAGMENT_BYTES} by default (96 KiB, the
 * `fragmentBytes` option changes it, up to {@link MAX_FRAGMENT_BYTES}), so a
 * whole fragment frame to one group — 48-byte message header, its group
 * name, the 36-byte fragment header and the part: 98,420 bytes — fits the
 * 100,000-byte buffer a stock Spread C client receives into (the samples'
 * MAX_MESSLEN is 102,400), and a fragment to 43 groups stays far below the
 * sizes that break a real 5.0.1 daemon (143,088 bytes and up).
 *
 * Putting them back together is reassembly.ts's (`Reassembly`, the
 * reader's hook for large messages).
 *
 * @module
 */
import { MAX_GROUP_NAME, REAL_DAEMON_MAX_PAYLOAD, type ServiceLevel } from "../../protocol/constants.ts"
import { writeEnvelope } from "./envelope.ts"

/**
 * The default most payload bytes in one fragment (96 KiB: a fragment frame
 * to one group is then 98,420 bytes, which a Spread C client with a
 * 100,000-byte receive buffer takes whole). The `fragmentBytes` option of
 * `connect` changes it.
 *
 * @since 0.2.0
 * @category constants
 */
export const FRAGMENT_BYTES = 96 * 1024

/**
 * The largest `fragmentBytes` a connection takes (128 KiB): a fragment to
 * 43 groups stays below the sizes that break a real 5.0.1 daemon.
 *
 * @since 0.3.0
 * @category constants
 */
export const MAX_FRAGMENT_BYTES = 128 * 1024

/**
 * The header of a fragment: the envelope's 24 bytes and three 4-byte fields.
 *
 * @since 0.2.0
 * @category constants
 */
export const FRAGMENT_HEADER = 36

/**
 * The default most bytes of one message, fragmented or not (16 MiB).
 *
 * @since 0.2.0
 * @category constants
 */
export const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024

/**
 * Whether a service keeps a sender's messages in order (and so may carry
 * fragments).
 *
 * @since 0.2.0
 * @category predicates
 */
export const keepsSenderOrder = (service: ServiceLevel): boolean =>
  service === "Fifo" || service === "Causal" || service === "Agreed" || service === "Safe"

/**
 * Whether a message may be too large for one Spread message (text counts 3
 * bytes a UTF-16 unit); such a message is measured exactly, and fragmented
 * when it is.
 *
 * @since 0.2.0
 * @category predicates
 */
export const mayNeedFragments = (data: Uint8Array | string, groups: number): boolean =>
  (typeof data === "string" ? data.length * 3 : data.length) + MAX_GROUP_NAME * groups > REAL_DAEMON_MAX_PAYLOAD

/**
 * Whether `bytes` of payload to `groups` groups need fragmenting.
 *
 * @since 0.2.0
 * @category predicates
 */
export const needsFragments = (bytes: number, groups: number): boolean =>
  bytes + MAX_GROUP_NAME * groups > REAL_DAEMON_MAX_PAYLOAD

/**
 * The fragment payloads of `data`, for the message id `idHigh:idLow`, each
 * with at most `fragmentBytes` of `data` ({@link FRAGMENT_BYTES} by
 * default). Each is a fresh buffer: header and its part of `data`.
 *
 * @since 0.2.0
 * @category encoding
 */
export const fragmentPayloads = (
  data: Uint8Array,
  idHigh: number,
  idLow: number,
  fragmentBytes: number = FRAGMENT_BYTES,
): Array<Uint8Array> => {
  const count = Math.max(1, Math.ceil(data.length / fragmentBytes))
  const out = new Array<Uint8Array>(count)
  for (let i = 0; i < count; i++) {
    const part = data.subarray(i * fragmentBytes, Math.min(data.length, (i + 1) * fragmentBytes))
    out[i] = fragment(idHigh, idLow, i, count, data.length, part)
  }
  return out
}

/**
 * The payload that aborts the large message `idHigh:idLow`: a fragment with
 * index 0xFFFFFFFF, which every receiver takes as out of order and so drops
 * what it holds of that message. Sent (best effort) when a large send is
 * interrupted partway.
 *
 * @since 0.2.0
 * @category encoding
 */
export const abortPayload = (idHigh: number, idLow: number): Uint8Array =>
  fragment(idHigh, idLow, 0xffffffff, 0, 0, NO_BYTES)

const NO_BYTES = new Uint8Array(0)

// One fragment envelope: index, count and total as its extension fields.
const fragment = (
  idHigh: number,
  idLow: number,
  index: number,
  count: number,
  total: number,
  part: Uint8Array,
): Uint8Array => {
  const ext = new Uint8Array(12)
  const v = new DataView(ext.buffer)
  v.setUint32(0, index)
  v.setUint32(4, count)
  v.setUint32(8, total)
  return writeEnvelope("Fragment", idHigh, idLow, NO_BYTES, ext, part)
}
