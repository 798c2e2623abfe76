/**
 * The connection's `multicast` and `multicastMany` with large messages: a
 * payload too large for one Spread message is expanded into its fragments
 * (fragments.ts) and sent through the sender like any run of messages,
 * under the flow window; everything else goes straight to the sender's
 * one-step path. `multicastMany` stays all-or-nothing: every message is
 * checked (large ones expanded) before any is sent.
 *
 * @module
 */
import { Effect } from "effect"
import type { ConnectionError } from "../core/errors.ts"
import { RequestError } from "../core/errors.ts"
import { abortPayload, fragmentPayloads, keepsSenderOrder, mayNeedFragments, needsFragments } from "./fragments.ts"
import type { OutgoingMessage } from "../admission/frames.ts"
import type { Sender } from "../admission/send.ts"

const encoder = new TextEncoder()

/**
 * Sends that take payloads up to `maxMessageBytes`, in fragments of at most
 * `fragmentBytes`; fragment ids are `nonce` and a count, so they are unique
 * per sender.
 *
 * @since 0.2.0
 * @category constructors
 */
export const largeAware = (
  sender: Sender,
  maxMessageBytes: number,
  nonce: number,
  fragmentBytes: number,
  forgetOwn: (idHigh: number, idLow: number) => void,
): {
  readonly multicast: (m: OutgoingMessage) => Effect.Effect<void, ConnectionError | RequestError>
  readonly multicastMany: (ms: Iterable<OutgoingMessage>) => Effect.Effect<void, ConnectionError | RequestError>
} => {
  let ids = 0
  // The messages to send in place of `m` (and, for a fragmented one, the
  // message that aborts it), or why it is refused.
  const expand = (m: OutgoingMessage): Expanded | RequestError => {
    const data = typeof m.data === "string" ? encoder.encode(m.data) : m.data
    const groups = typeof m.groups === "string" ? 1 : m.groups.length
    if (!needsFragments(data.length, groups)) return { parts: [{ ...m, data }], abort: undefined, id: -1 }
    const refuse = (reason: RequestError["reason"], detail: string) =>
      new RequestError({ reason, operation: "multicast", detail })
    if (data.length > maxMessageBytes) {
      return refuse("MessageTooLong", `Cannot send ${data.length} bytes: maxMessageBytes is ${maxMessageBytes}`)
    }
    const service = m.service ?? "Agreed"
    if (!keepsSenderOrder(service)) {
      return refuse(
        "NeedsOrderedService",
        `Cannot send ${data.length} bytes with ${service}: a message sent in fragments needs Fifo or stronger`,
      )
    }
    const id = ids++
    return {
      parts: fragmentPayloads(data, nonce, id, fragmentBytes).map((part) => ({ ...m, data: part })),
      // Not counted in the window (a full window is why it was cut short);
      // this connection's own copy is forgotten locally (`forgetOwn`).
      abort: { ...m, data: abortPayload(nonce, id), selfDiscard: true },
      id,
    }
  }
  // Sends the expanded messages; interrupted partway, it tells the
  // receivers to drop what they hold of each fragmented one (best effort:
  // only if the abort can be queued at once; else their bounds and the
  // 30 s rule free it).
  const send = (all: ReadonlyArray<Expanded>) => {
    const aborts = all.filter((e) => e.abort !== undefined)
    const run = sender.multicastMany(all.flatMap((e) => e.parts))
    return aborts.length === 0 ? run : Effect.onInterrupt(run, () =>
      Effect.sync(() => {
        for (const e of aborts) {
          if (e.abort !== undefined) sender.offerNow(e.abort)
          forgetOwn(nonce, e.id)
        }
      }))
  }
  const isLarge = (m: OutgoingMessage) => mayNeedFragments(m.data, typeof m.groups === "string" ? 1 : m.groups.length)
  return {
    multicast: (m) =>
      isLarge(m)
        ? Effect.suspend(() => {
          const e = expand(m)
          return e instanceof RequestError ? Effect.fail(e) : send([e])
        })
        : sender.multicast(m),
    multicastMany: (ms) =>
      Effect.suspend(() => {
        const all = Array.isArray(ms) ? (ms as ReadonlyArray<OutgoingMessage>) : Array.from(ms)
        if (!all.some(isLarge)) return sender.multicastMany(all)
        const expanded: Array<Expanded> = []
        for (const m of all) {
          const e = isLarge(m) ? expand(m) : { parts: [m], abort: undefined, id: -1 }
          if (e instanceof RequestError) return Effect.fail(e)
          expanded.push(e)
        }
        return send(expanded)
      }),
  }
}

interface Expanded {
  readonly parts: ReadonlyArray<OutgoingMessage>
  readonly abort: OutgoingMessage | undefined
  /** The fragmented message's id (low half), or -1. */
  readonly id: number
}
