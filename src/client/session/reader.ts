/**
 * The receive path of a session: the reader fiber reads the socket,
 * decodes every whole frame of each read in a plain loop (one object per
 * message, no Effect per frame), returns the window permits of its own
 * messages, applies membership to the views, and hands the batch to the
 * inbound buffer — one Effect step per read, not per message.
 *
 * @module
 */
import { Effect, SubscriptionRef } from "effect"
import { ServiceBits } from "../../protocol/constants.ts"
import type { FrameDecoder } from "../../protocol/decoder.ts"
import { ProtocolError } from "../../protocol/errors.ts"
import type { RejectMessage, ServerMessage } from "../../protocol/server_messages.ts"
import { latin1Bytes } from "../../protocol/names.ts"
import type { ByteStream } from "../../transport/conn.ts"
import type { ConnectionError } from "../core/errors.ts"
import type { Inbound } from "../core/inbound.ts"
import { mayBeFragment, type Reassembly } from "../features/reassembly.ts"
import { messageAt, ReceivedMessage } from "../core/message.ts"
import type { Router } from "../features/router.ts"
import type { Sender } from "../admission/send.ts"
import type { GroupView, ViewTracker } from "../core/views.ts"
import type { FlowControl } from "../admission/window.ts"

/**
 * Counters the reader keeps.
 *
 * @since 0.2.0
 * @category models
 */
export interface ReadCounters {
  received: number
  reads: number
  /** Bytes read from the socket. */
  bytes: number
}

/**
 * What the reader needs of its session and connection.
 *
 * @since 0.2.0
 * @category models
 */
export interface ReaderContext {
  readonly privateGroup: string
  readonly stream: ByteStream
  readonly decoder: FrameDecoder
  readonly flow: FlowControl
  readonly sender: Sender
  readonly tracker: ViewTracker
  readonly views: SubscriptionRef.SubscriptionRef<ReadonlyMap<string, GroupView>>
  readonly inbound: Inbound
  /** Subscriptions and pending requests; consulted only while `router.active`. */
  readonly router: Router
  /** Partial large messages (fragments put back together per sender). */
  readonly reassembly: Reassembly
  readonly counters: ReadCounters
  /** Records the failure (the first one sticks). */
  readonly fail: (reason: ConnectionError["reason"], detail: string, cause?: unknown) => Effect.Effect<void>
  /**
   * Groups this session joins again after a reconnect: those joins took no
   * window permits, so their answers (a membership message or a reject)
   * return none. Each answer removes its group.
   */
  readonly rejoining: Set<string>
  /** Whether the connection has ended (the reader then discards what it reads). */
  readonly ended: () => boolean
}

/**
 * The reader fiber's loop. Once the connection ended it keeps reading and
 * discarding until EOF: closing a socket with unread bytes makes the OS
 * send a reset, and the daemon would then lose the last frames and the
 * disconnect it had not read yet.
 *
 * @since 0.2.0
 * @category constructors
 */
export const reader = (ctx: ReaderContext): Effect.Effect<void> => {
  const { decoder, flow, reassembly, router, sender, stream } = ctx
  const ownName = latin1Bytes(ctx.privateGroup)

  const isOwnCountedReject = (m: RejectMessage): boolean =>
    m.sender === ctx.privateGroup &&
    (m.oldType & ServiceBits.REGULAR_MESS) !== 0 &&
    sender.isCounted(m.groups.slice(0, -1), (m.oldType & ServiceBits.SELF_DISCARD) !== 0)

  // Decodes every whole frame buffered into `out`; answers the window
  // permits to give back, or the decoding error.
  const dispatch = (out: Array<ServerMessage>): number | ProtocolError => {
    let permits = 0
    const counting = flow.enabled
    while (true) {
      const step = decoder.advance()
      if (step === false) return permits
      if (step !== true) return step
      const m = messageAt(decoder)
      if (m instanceof ReceivedMessage) {
        if (counting && m.sentBy(ownName)) permits += flow.returned()
        // A fragment of a large message waits for the rest of it.
        const whole = mayBeFragment(m) ? reassembly.add(m) : m
        if (whole === undefined) continue
        if (router.active && router.claim(whole)) continue
        out.push(whole)
        continue
      }
      if (m instanceof ProtocolError) return m
      switch (m._tag) {
        case "Reject":
          if (m.sender === ctx.privateGroup && (m.oldType & ServiceBits.CAUSED_BY_JOIN) !== 0) {
            // Our join was refused (a full group, or a policy): we are not a
            // member. The daemon answers in order, so every message sent
            // before the join is back already; those sent since, counting
            // only through this group, never will be — and the reject
            // itself answers the join.
            const group = m.groups[0]
            if (router.awaitingJoins && group !== undefined) router.joinRefused(group)
            sender.joined.delete(group)
            const rejoin = group !== undefined && ctx.rejoining.delete(group)
            if (counting) {
              if (sender.membership && !rejoin) permits += flow.returned()
              if (group !== undefined) permits += flow.forget(group)
            }
          } else if (counting && isOwnCountedReject(m)) {
            permits += flow.returned()
          }
          break
        case "Membership":
          // The answer to our own join.
          if (m.cause === "Join" && m.changed === ctx.privateGroup) {
            if (!ctx.rejoining.delete(m.group) && counting) permits += flow.returned()
            if (router.awaitingJoins) router.joined(m.group)
          }
          ctx.tracker.apply(m)
          // A sender gone mid-message leaves nothing partial behind.
          if (reassembly.holding) {
            if (m.cause === "Disconnect" && m.changed !== undefined) reassembly.senderGone(m.changed)
            else if (m.cause !== "Join") reassembly.notIn(m.group, m.members)
          }
          break
        case "SelfLeave":
          if (counting) permits += flow.returned()
          ctx.tracker.apply(m)
          break
        case "Regular":
        case "Transitional":
          break
      }
      if (router.active && router.claim(m)) continue
      out.push(m)
    }
  }

  return Effect.gen(function* () {
    while (true) {
      if (!ctx.ended()) {
        const batch: Array<ServerMessage> = []
        const permits = dispatch(batch)
        if (permits instanceof ProtocolError) {
          return yield* ctx.fail(
            "ProtocolViolation",
            `the daemon sent an undecodable frame: ${permits.message}`,
            permits,
          )
        }
        if (permits > 0) yield* flow.giveBack(permits)
        const changed = ctx.tracker.flush()
        if (changed !== undefined) yield* SubscriptionRef.set(ctx.views, changed)
        // Subscribers first: what they claimed from this read reaches them
        // even when the shared buffer is full and nobody takes from it.
        if (router.dirty) yield* router.flush
        if (batch.length > 0) {
          ctx.counters.received += batch.length
          yield* ctx.inbound.offer(batch)
        }
      }
      const chunk = yield* Effect.either(stream.read)
      if (chunk._tag === "Left") {
        return yield* ctx.fail("NetError", `reading from ${stream.address} failed`, chunk.left)
      }
      if (chunk.right === undefined) {
        const cut = decoder.end()
        return yield* cut === undefined
          ? ctx.fail("ConnectionClosed", "the daemon closed the connection")
          : ctx.fail("ConnectionClosed", "the daemon closed the connection in the middle of a message", cut)
      }
      ctx.counters.reads++
      ctx.counters.bytes += chunk.right.length
      if (!ctx.ended()) decoder.push(chunk.right)
    }
  })
}
