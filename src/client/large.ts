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
import type { ConnectionError } from "./errors.ts"
import { RequestError } from "./errors.ts"
import { fragmentPayloads, keepsSenderOrder, mayNeedFragments, needsFragments } from "./fragments.ts"
import type { OutgoingMessage } from "./frames.ts"
import type { Sender } from "./send.ts"

const encoder = new TextEncoder()

/**
 * Sends that take payloads up to `maxMessageBytes`; fragment ids are
 * `nonce` and a count, so they are unique per sender.
 *
 * @since 0.2.0
 * @category constructors
 */
export const largeAware = (sender: Sender, maxMessageBytes: number, nonce: number): {
  readonly multicast: (m: OutgoingMessage) => Effect.Effect<void, ConnectionError | RequestError>
  readonly multicastMany: (ms: Iterable<OutgoingMessage>) => Effect.Effect<void, ConnectionError | RequestError>
} => {
  let ids = 0
  // The messages to send in place of `m`, or why it is refused.
  const expand = (m: OutgoingMessage): ReadonlyArray<OutgoingMessage> | RequestError => {
    const data = typeof m.data === "string" ? encoder.encode(m.data) : m.data
    const groups = typeof m.groups === "string" ? 1 : m.groups.length
    if (!needsFragments(data.length, groups)) return [{ ...m, data }]
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
    return fragmentPayloads(data, nonce, ids++).map((part) => ({ ...m, data: part }))
  }
  const isLarge = (m: OutgoingMessage) => mayNeedFragments(m.data, typeof m.groups === "string" ? 1 : m.groups.length)
  return {
    multicast: (m) =>
      isLarge(m)
        ? Effect.suspend(() => {
          const parts = expand(m)
          return parts instanceof RequestError ? Effect.fail(parts) : sender.multicastMany(parts)
        })
        : sender.multicast(m),
    multicastMany: (ms) =>
      Effect.suspend(() => {
        const all = Array.isArray(ms) ? (ms as ReadonlyArray<OutgoingMessage>) : Array.from(ms)
        if (!all.some(isLarge)) return sender.multicastMany(all)
        const flat: Array<OutgoingMessage> = []
        for (const m of all) {
          const parts = isLarge(m) ? expand(m) : [m]
          if (parts instanceof RequestError) return Effect.fail(parts)
          flat.push(...parts)
        }
        return sender.multicastMany(flat)
      }),
  }
}
