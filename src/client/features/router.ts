/**
 * The reader's dispatch table for `subscribe` and request/reply: which
 * received messages a subscription or a pending request claims before the
 * rest go to the shared inbound buffer (`messages` / `receive`).
 *
 * The reader consults it only while {@link Router.active} is true (some
 * subscription exists, or this connection has made a request), so a
 * connection that uses neither pays one field read per message. Claiming
 * is synchronous and allocates only what routing needs (a subscribed
 * message's group names, a reply's envelope fields); the claimed messages
 * are handed to the subscribers' buffers once per socket read, by
 * {@link Router.flush}.
 *
 * The rules, in order:
 *
 * 1. A data message whose payload is a reply or error-reply envelope
 *    carrying this connection's correlation nonce belongs to the request
 *    machinery: it completes its pending request, or is dropped (counted in
 *    `lateReplies`) when that request already ended.
 * 2. A message naming a subscribed group (a data message naming it among its
 *    destinations; a membership, transitional or self-leave message of it; a
 *    reject of this connection's join of it) goes to every subscriber of
 *    every subscribed group it names — and not to `messages`.
 * 3. While the last subscription of a group is being left (membership
 *    messages on), its messages up to the self-leave are dropped: nobody
 *    asked for them any more.
 * 4. Everything else goes to `messages`, as without subscriptions.
 *
 * @module
 */
import { Deferred, Effect, Exit, FiberId } from "effect"
import { ServiceBits } from "../../protocol/constants.ts"
import type { RegularMessage, ServerMessage } from "../../protocol/server_messages.ts"
import { parseEnvelope } from "./envelope.ts"
import { type ConnectionError, RequestError } from "../core/errors.ts"
import type { Inbound } from "../core/inbound.ts"
import type { Discontinuity } from "../core/discontinuity.ts"
import { ReceivedMessage } from "../core/message.ts"

/**
 * A reply to a request.
 *
 * @since 0.2.0
 * @category models
 */
export interface Reply {
  /** Tells a reply from a {@link FailedReply}. */
  readonly _tag: "Reply"
  /** The responder's private group. */
  readonly sender: string
  /** The reply's body (a view into the received bytes). */
  readonly data: Uint8Array
  /** The correlation id, 16 lowercase hex digits. */
  readonly correlationId: string
  /** The message the reply came in. */
  readonly message: RegularMessage
}

/**
 * A reply saying the responder's handler failed.
 *
 * @since 0.2.0
 * @category models
 */
export interface FailedReply {
  /** Tells a failed reply from a {@link Reply}. */
  readonly _tag: "FailedReply"
  /** The responder's private group. */
  readonly sender: string
  /** What the responder reported. */
  readonly reason: string
  /** The correlation id, 16 lowercase hex digits. */
  readonly correlationId: string
}

/**
 * A request waiting for replies.
 *
 * @since 0.2.0
 * @category models
 */
export interface PendingRequest {
  /** Replies wanted before {@link done} completes. */
  readonly want: number
  readonly replies: Array<Reply | FailedReply>
  /** Completes once `want` replies arrived; fails with the sticky error. */
  readonly done: Deferred.Deferred<void, ConnectionError>
}

/**
 * One `subscribe` stream: its group, its own buffer, and what the reader
 * claimed for it during the current read.
 *
 * @since 0.2.0
 * @category models
 */
export interface Subscriber {
  readonly group: string
  readonly inbound: Inbound
  pending: Array<ServerMessage>
}

interface GroupEntry {
  readonly subs: Set<Subscriber>
  /** Leaves sent for this group and not yet answered by a self-leave. */
  leaving: number
}

const decoder = new TextDecoder()

/**
 * The per-connection table of subscriptions and pending requests.
 *
 * @since 0.2.0
 * @category models
 */
export class Router {
  // The destination named last (see ReceivedMessage.groupAt).
  #lastGroup: string | undefined
  /** Whether the reader must consult {@link claim}. */
  active = false
  /** Messages claimed so far (they do not go through the shared buffer). */
  routed = 0
  /** Replies that arrived after their request ended (dropped). */
  lateReplies = 0
  /** The high 32 bits of every correlation id this connection makes. */
  readonly nonce: number
  #privateGroup: string
  readonly #membership: boolean
  readonly #isJoined: (group: string) => boolean
  readonly #groups = new Map<string, GroupEntry>()
  readonly #pending = new Map<number, PendingRequest>()
  #requests = false
  #nextId = 1
  #dirty: Array<Subscriber> = []
  readonly #finalError: () => ConnectionError | undefined
  #woken = false
  // Joins waiting for the membership message that confirms them, by group.
  readonly #joins = new Map<string, Set<Deferred.Deferred<void, ConnectionError | RequestError>>>()

  /**
   * A router for the session `privateGroup`; `isJoined` tells whether a
   * group is joined as of the frames queued so far (a leave of a group that
   * is not gets no self-leave). `finalError` reads the sticky error from
   * the connection's state once it failed or closed (the router keeps no
   * copy).
   */
  constructor(
    privateGroup: string,
    membership: boolean,
    nonce: number,
    isJoined: (group: string) => boolean,
    finalError: () => ConnectionError | undefined,
  ) {
    this.#privateGroup = privateGroup
    this.#membership = membership
    this.#isJoined = isJoined
    this.#finalError = finalError
    this.nonce = nonce >>> 0
  }

  /** The sticky error once the connection ended (from the connection's state). */
  get ended(): ConnectionError | undefined {
    return this.#finalError()
  }

  /** Subscribers now. */
  get subscribers(): number {
    let n = 0
    for (const e of this.#groups.values()) n += e.subs.size
    return n
  }

  /** Requests waiting for replies now. */
  get pendingRequests(): number {
    return this.#pending.size
  }

  /** Whether {@link flush} has messages to hand over. */
  get dirty(): boolean {
    return this.#dirty.length > 0
  }

  // ----- joins awaiting their confirmation -----

  /** Whether some join waits for its confirmation (the reader then reports answers to joins). */
  get awaitingJoins(): boolean {
    return this.#joins.size > 0
  }

  /**
   * Waits for this connection's next join of `group` to be answered: done
   * by the membership message that shows this connection joined, failed
   * by the daemon's reject of the join or the connection's end. Register
   * before the join is queued; {@link cancelJoin} once no longer waiting.
   */
  awaitJoin(group: string): Deferred.Deferred<void, ConnectionError | RequestError> {
    const d = Deferred.unsafeMake<void, ConnectionError | RequestError>(FiberId.none)
    const ended = this.#woken ? this.#finalError() : undefined
    if (ended !== undefined) {
      Deferred.unsafeDone(d, Exit.fail(ended))
      return d
    }
    let waiting = this.#joins.get(group)
    if (waiting === undefined) this.#joins.set(group, waiting = new Set())
    waiting.add(d)
    return d
  }

  /** Stops waiting with `d` (answered, interrupted or failed). */
  cancelJoin(group: string, d: Deferred.Deferred<void, ConnectionError | RequestError>): void {
    const waiting = this.#joins.get(group)
    if (waiting === undefined) return
    waiting.delete(d)
    if (waiting.size === 0) this.#joins.delete(group)
  }

  /** The reader saw the membership message of this connection joining `group`. */
  joined(group: string): void {
    const waiting = this.#joins.get(group)
    if (waiting === undefined) return
    this.#joins.delete(group)
    for (const d of waiting) Deferred.unsafeDone(d, Exit.void)
  }

  /** The daemon refused this connection's join of `group`. */
  joinRefused(group: string): void {
    const waiting = this.#joins.get(group)
    if (waiting === undefined) return
    this.#joins.delete(group)
    const e = new RequestError({
      reason: "JoinRefused",
      operation: "join",
      detail: `the daemon refused to let ${this.#privateGroup} join group "${group}"`,
    })
    for (const d of waiting) Deferred.unsafeDone(d, Exit.fail(e))
  }

  // ----- subscriptions -----

  /** Adds a subscriber; answers whether the group must be joined (its first). */
  add(sub: Subscriber): boolean {
    let e = this.#groups.get(sub.group)
    if (e === undefined) {
      e = { subs: new Set(), leaving: 0 }
      this.#groups.set(sub.group, e)
    }
    const first = e.subs.size === 0
    e.subs.add(sub)
    this.active = true
    return first
  }

  /** Removes a subscriber; answers whether the group must be left (its last). */
  remove(sub: Subscriber): boolean {
    const e = this.#groups.get(sub.group)
    if (e === undefined || !e.subs.delete(sub)) return false
    sub.pending = []
    this.#dirty = this.#dirty.filter((s) => s !== sub)
    if (e.subs.size > 0) return false
    // The leave that follows gets a self-leave only with membership messages
    // on and when the group is joined (a refused join left it unjoined).
    if (this.#membership && this.#isJoined(sub.group)) e.leaving++
    else if (e.leaving === 0) this.#groups.delete(sub.group)
    this.#updateActive()
    return true
  }

  /** The leave of `group`'s last subscription could not be sent: nothing waits for its self-leave. */
  leaveFailed(group: string): void {
    const e = this.#groups.get(group)
    if (e === undefined) return
    if (e.leaving > 0) e.leaving--
    if (e.leaving === 0 && e.subs.size === 0) this.#groups.delete(group)
    this.#updateActive()
  }

  // ----- requests -----

  /** A fresh correlation id's low 32 bits, with its pending entry. */
  register(want: number): Effect.Effect<{ readonly idLow: number; readonly entry: PendingRequest }> {
    return Effect.map(Deferred.make<void, ConnectionError>(), (done) => {
      const idLow = this.#nextId
      this.#nextId = this.#nextId >= 0xffffffff ? 1 : this.#nextId + 1
      const entry: PendingRequest = { want, replies: [], done }
      const ended = this.#finalError()
      if (ended !== undefined) Deferred.unsafeDone(done, Exit.fail(ended))
      else this.#pending.set(idLow, entry)
      this.#requests = true
      this.active = true
      return { idLow, entry }
    })
  }

  /** Forgets a request (its later replies are dropped). */
  unregister(idLow: number): void {
    this.#pending.delete(idLow)
  }

  // ----- the reader's side -----

  /**
   * Claims `m` for a pending request or for subscribers (see the module
   * notes); answers whether it was claimed.
   */
  claim(m: ServerMessage): boolean {
    switch (m._tag) {
      case "Regular": {
        if (this.#requests) {
          const first = m instanceof ReceivedMessage ? m.dataByte(0) : m.data[0]
          if (first === 0xff && this.#claimReply(m)) return true
        }
        if (this.#groups.size === 0) return false
        let claimed = false
        if (m instanceof ReceivedMessage) {
          // Names the same group again and again, mostly: one string for it.
          for (let i = 0, n = m.groupCount; i < n; i++) {
            const g = this.#lastGroup = m.groupAt(i, this.#lastGroup)
            if (this.#deliver(g, m)) claimed = true
          }
        } else {
          const groups = m.groups
          for (let i = 0; i < groups.length; i++) {
            if (this.#deliver(groups[i], m)) claimed = true
          }
        }
        if (claimed) this.routed++
        return claimed
      }
      case "Membership":
      case "Transitional":
        return this.#deliverOne(m.group, m)
      case "SelfLeave": {
        const e = this.#groups.get(m.group)
        if (e === undefined) return false
        if (e.leaving > 0) {
          // The answer to a leave of the last subscription.
          e.leaving--
          if (e.leaving === 0 && e.subs.size === 0) {
            this.#groups.delete(m.group)
            this.#updateActive()
          }
          return true
        }
        return this.#deliverOne(m.group, m)
      }
      case "Reject": {
        const group = m.groups[0]
        if (group === undefined || m.sender !== this.#privateGroup) return false
        if ((m.oldType & ServiceBits.CAUSED_BY_JOIN) === 0) return false
        return this.#deliverOne(group, m)
      }
    }
  }

  /** Hands what was claimed during this read to the subscribers' buffers. */
  get flush(): Effect.Effect<void> {
    return Effect.suspend(() => {
      const dirty = this.#dirty
      this.#dirty = []
      const offers: Array<Effect.Effect<void>> = []
      for (const sub of dirty) {
        const batch = sub.pending
        sub.pending = []
        if (batch.length > 0) offers.push(sub.inbound.offer(batch))
      }
      return Effect.all(offers, { discard: true })
    })
  }

  // ----- reconnecting -----

  /**
   * The session was lost and the connection reconnects: fails every pending
   * request with `error` (its request or its reply may be lost, and Spread
   * replays nothing), and forgets the leaves waiting for a self-leave (the
   * lost session will never answer them).
   */
  interrupt(error: ConnectionError): void {
    this.failRequests(error)
    for (const [group, e] of this.#groups) {
      e.leaving = 0
      if (e.subs.size === 0) this.#groups.delete(group)
    }
    this.#updateActive()
  }

  /** Fails every pending request with `error`. */
  failRequests(error: ConnectionError): void {
    for (const p of this.#pending.values()) Deferred.unsafeDone(p.done, Exit.fail(error))
    this.#pending.clear()
  }

  /** The new session's private group (whose rejects of joins are routed). */
  rebind(privateGroup: string): void {
    this.#privateGroup = privateGroup
  }

  /**
   * Puts `mark(group)` in every subscriber's buffer, before anything the new
   * session delivers (waiting for room, like the reader).
   */
  mark(mark: (group: string) => Discontinuity): void {
    for (const [group, e] of this.#groups) {
      if (e.subs.size === 0) continue
      const m = mark(group)
      for (const s of e.subs) s.inbound.mark(m)
    }
  }

  /**
   * Wakes what waits here once the connection ended: ends every
   * subscriber's buffer and fails every pending request with `error`, the
   * sticky error (once).
   */
  end(error: ConnectionError): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (this.#woken) return Effect.void
      this.#woken = true
      for (const p of this.#pending.values()) Deferred.unsafeDone(p.done, Exit.fail(error))
      this.#pending.clear()
      for (const waiting of this.#joins.values()) for (const d of waiting) Deferred.unsafeDone(d, Exit.fail(error))
      this.#joins.clear()
      const ends: Array<Effect.Effect<void>> = []
      for (const e of this.#groups.values()) for (const s of e.subs) ends.push(s.inbound.end(error))
      return Effect.all(ends, { discard: true })
    })
  }

  #updateActive(): void {
    this.active = this.#requests || this.#groups.size > 0
  }

  #claimReply(m: RegularMessage): boolean {
    const env = parseEnvelope(m.data)
    if (env === undefined || (env.kind !== "Reply" && env.kind !== "ErrorReply")) return false
    if (env.idHigh !== this.nonce) return false
    this.routed++
    const p = this.#pending.get(env.idLow)
    if (p === undefined) {
      this.lateReplies++
      return true
    }
    const correlationId = (env.idHigh.toString(16).padStart(8, "0")) + env.idLow.toString(16).padStart(8, "0")
    const body = m.data.subarray(env.headerLength)
    p.replies.push(
      env.kind === "Reply"
        ? { _tag: "Reply", sender: m.sender, data: body, correlationId, message: m }
        : { _tag: "FailedReply", sender: m.sender, reason: decoder.decode(body), correlationId },
    )
    if (p.replies.length >= p.want) {
      this.#pending.delete(env.idLow)
      Deferred.unsafeDone(p.done, Exit.void)
    }
    return true
  }

  // Queues `m` for the subscribers of `group`; answers whether the group is
  // routed here (subscribed, or being left).
  #deliver(group: string, m: ServerMessage): boolean {
    const e = this.#groups.get(group)
    if (e === undefined) return false
    for (const s of e.subs) {
      if (s.pending.length === 0) this.#dirty.push(s)
      s.pending.push(m)
    }
    return true
  }

  #deliverOne(group: string, m: ServerMessage): boolean {
    if (!this.#deliver(group, m)) return false
    this.routed++
    return true
  }
}
