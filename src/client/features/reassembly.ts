/**
 * Reassembly: the fragments of large messages (fragments.ts) put back
 * together by the receiving client, in order, per sender — the reader's
 * hook for large messages. Pure bookkeeping: no Effect, no IO; time is the
 * fiber's `Clock`, read synchronously.
 *
 * What a receiver holds is what arrived, not what a first fragment claims:
 * each fragment's bytes are counted (and kept) as they come, so fragments
 * claiming huge totals reserve nothing. It is bounded: one message at most
 * `maxMessageBytes`; all partial messages together at most
 * `maxReassemblyBytes`; one sender's at most half of that, and the partial
 * messages to one set of groups at most three quarters (so one sender, or
 * one busy group, cannot take the room of the others). A fragment that would
 * pass a bound drops its own message (after the partial messages gone quiet
 * have been dropped to make room). Partial messages are freed: when their
 * sender disconnects or leaves the group (its membership message says so),
 * and when they have waited {@link STALE_MS} (10 s) for their next fragment
 * (the connection sweeps once a second), which covers a sender that was
 * never a member. A fragment out of order drops its message. Nothing partial
 * is ever delivered.
 *
 * @module
 */
import type { Clock } from "effect"
import type { ServiceLevel } from "../../protocol/constants.ts"
import type { RegularMessage } from "../../protocol/server_messages.ts"
import { EnvelopeKinds, parseEnvelope } from "./envelope.ts"
import type { ReceivedMessage } from "../core/message.ts"
import { FRAGMENT_HEADER } from "./fragments.ts"

/**
 * How long a partial large message may wait for its next fragment (10 s):
 * past it, it is dropped — by the connection's sweep (once a second while
 * anything is held), or at once when a fragment needs its room. This is
 * what frees the partial message of a sender that was never a member of
 * the group (no membership message will say it went) or whose next
 * fragment never comes.
 *
 * @since 0.2.0
 * @category constants
 */
export const STALE_MS = 10_000

/**
 * Whether a received data message carries a fragment (the cheap test the
 * reader makes on every message: two bytes).
 *
 * @since 0.2.0
 * @category predicates
 */
export const mayBeFragment = (m: ReceivedMessage): boolean =>
  m.dataByte(0) === 0xff && m.dataByte(5) === EnvelopeKinds.Fragment

interface Partial {
  readonly sender: string
  readonly id: string
  readonly count: number
  /** The total its first fragment claims (checked, never reserved). */
  readonly total: number
  /** The bodies received so far, each a copy (not the socket read it came in). */
  readonly parts: Array<Uint8Array>
  // The fields of the whole message, copied from its first fragment.
  readonly groups: ReadonlyArray<string>
  /** Its groups, as the key of the per-group share. */
  readonly groupKey: string
  readonly service: ServiceLevel
  readonly type: number
  readonly messType: number
  readonly endianMismatch: boolean
  /** When its latest fragment came (the reassembly's clock). */
  last: number
  next: number
  filled: number
}

/**
 * Counters of a {@link Reassembly}.
 *
 * @since 0.2.0
 * @category models
 */
export interface ReassemblyStats {
  /** Large messages delivered whole. */
  readonly assembled: number
  /** Partial messages dropped (out of order, over a bound, or the sender left). */
  readonly dropped: number
  /** Bytes held by partial messages now: what arrived, plus {@link PARTIAL_OVERHEAD} each. */
  readonly pendingBytes: number
}

/**
 * What a partial message counts against the bounds besides its bytes, so
 * that first fragments cannot pile up partial messages for free.
 *
 * @since 0.2.0
 * @category constants
 */
export const PARTIAL_OVERHEAD = 4096

/**
 * Most partial messages one sender may have at a time (its fibers may send
 * that many large messages at once); a new one beyond drops its oldest.
 *
 * @since 0.2.0
 * @category constants
 */
export const MAX_PARTIALS_PER_SENDER = 8

/**
 * The partial large messages of one connection.
 *
 * @since 0.2.0
 * @category models
 */
export class Reassembly {
  readonly #maxMessage: number
  readonly #maxTotal: number
  readonly #senderShare: number
  readonly #groupShare: number
  // Keyed by sender, then message id; both in insertion order, so a
  // sender's oldest partial message is its first.
  readonly #partials = new Map<string, Map<string, Partial>>()
  // Bytes held per sender and per set of groups.
  readonly #bySender = new Map<string, number>()
  readonly #byGroups = new Map<string, number>()
  #pending = 0
  #assembled = 0
  #dropped = 0
  readonly #clock: Clock.Clock

  /**
   * Bounds: one message at most `maxMessageBytes`, all partials at most
   * `maxTotalBytes` (one sender's at most half, one set of groups' at most
   * three quarters). `clock` (the fiber's `Clock`, read synchronously on the
   * reader's path) tells stale partial messages from live ones, so a
   * `TestClock` drives it.
   */
  constructor(maxMessageBytes: number, maxTotalBytes: number, clock: Clock.Clock) {
    this.#maxMessage = maxMessageBytes
    this.#maxTotal = maxTotalBytes
    this.#senderShare = Math.floor(maxTotalBytes / 2)
    this.#groupShare = Math.floor(maxTotalBytes * 3 / 4)
    this.#clock = clock
  }

  /** The counters now. */
  get stats(): ReassemblyStats {
    return { assembled: this.#assembled, dropped: this.#dropped, pendingBytes: this.#pending }
  }

  /**
   * Takes a fragment: answers the whole message when this was its last
   * fragment, `undefined` when it was kept (or dropped), and `m` itself when
   * it is no fragment after all (its envelope does not check out).
   */
  add(m: ReceivedMessage): RegularMessage | undefined {
    const payload = m.data
    const env = parseEnvelope(payload)
    if (env === undefined || env.kind !== "Fragment" || env.headerLength < FRAGMENT_HEADER || env.replyTo !== "") {
      return m
    }
    const v = new DataView(payload.buffer, payload.byteOffset, payload.byteLength)
    const index = v.getUint32(20)
    const count = v.getUint32(24)
    const total = v.getUint32(28)
    const body = payload.subarray(env.headerLength)
    const sender = m.sender
    const id = `${env.idHigh}:${env.idLow}`
    const now = this.#clock.unsafeCurrentTimeMillis()
    let bySender = this.#partials.get(sender)
    let p = bySender?.get(id)
    if (p === undefined) {
      // The rest of a message already dropped (or never begun here), or an
      // abort of one (index 0xFFFFFFFF): ignored.
      if (index !== 0) return undefined
      // Every fragment carries at least one byte.
      if (count === 0 || total === 0 || count > total || total > this.#maxMessage) {
        this.#dropped++
        return undefined
      }
      if (bySender !== undefined && bySender.size >= MAX_PARTIALS_PER_SENDER) {
        const oldest = bySender.values().next()
        if (oldest.done !== true) this.#drop(oldest.value)
      }
      const groups = m.groups
      p = {
        sender,
        id,
        count,
        total,
        parts: [],
        groups,
        groupKey: groups.length === 1 ? groups[0] : groups.join("\u0000"),
        service: m.service,
        type: m.type,
        messType: m.messType,
        endianMismatch: m.endianMismatch,
        last: now,
        next: 0,
        filled: 0,
      }
      bySender = this.#partials.get(sender)
      if (bySender === undefined) this.#partials.set(sender, bySender = new Map())
      bySender.set(id, p)
      this.#count(p, PARTIAL_OVERHEAD)
    }
    if (index !== p.next || count !== p.count || total !== p.total || p.filled + body.length > p.total) {
      this.#drop(p)
      return undefined
    }
    // The bytes are counted as they arrive: past a bound, quiet partial
    // messages make room first, else this message goes.
    if (!this.#fits(p, body.length)) {
      this.sweep()
      if (!this.#fits(p, body.length)) {
        this.#drop(p)
        return undefined
      }
    }
    p.parts.push(body.slice())
    p.filled += body.length
    this.#count(p, body.length)
    p.last = now
    p.next++
    if (p.next < p.count) return undefined
    this.#forget(p)
    if (p.filled !== p.total) {
      this.#dropped++
      return undefined
    }
    this.#assembled++
    let data: Uint8Array
    if (p.parts.length === 1) {
      data = p.parts[0]
    } else {
      data = new Uint8Array(p.total)
      let o = 0
      for (const part of p.parts) {
        data.set(part, o)
        o += part.length
      }
    }
    return {
      _tag: "Regular",
      sender,
      groups: p.groups,
      service: p.service,
      type: p.type,
      messType: p.messType,
      endianMismatch: p.endianMismatch,
      data,
    }
  }

  /** Drops every partial message of `sender` (it disconnected). */
  senderGone(sender: string): void {
    const bySender = this.#partials.get(sender)
    if (bySender === undefined) return
    for (const p of [...bySender.values()]) this.#drop(p)
  }

  /**
   * Drops the partial messages to `group` whose sender is not in `members`
   * (it left `group`, or a network change took it out of the view): the
   * rest of them will not come through that group.
   */
  notIn(group: string, members: ReadonlyArray<string>): void {
    if (this.#partials.size === 0) return
    const keep = new Set(members)
    for (const [sender, bySender] of [...this.#partials]) {
      if (keep.has(sender)) continue
      for (const p of [...bySender.values()]) if (p.groups.includes(group)) this.#drop(p)
    }
  }

  /** Drops the partial message `idHigh:idLow` of whichever sender holds it (an own message aborted). */
  forget(idHigh: number, idLow: number): void {
    const id = `${idHigh}:${idLow}`
    for (const bySender of [...this.#partials.values()]) {
      const p = bySender.get(id)
      if (p !== undefined) this.#drop(p)
    }
  }

  /** Drops every partial message (the session they came in is gone). */
  clear(): void {
    for (const bySender of [...this.#partials.values()]) for (const p of [...bySender.values()]) this.#drop(p)
  }

  /** Whether any partial message is held. */
  get holding(): boolean {
    return this.#partials.size > 0
  }

  /** Drops the partial messages that waited more than {@link STALE_MS} for their next fragment. */
  sweep(): void {
    if (this.#partials.size === 0) return
    const now = this.#clock.unsafeCurrentTimeMillis()
    for (const bySender of [...this.#partials.values()]) {
      for (const p of [...bySender.values()]) if (now - p.last > STALE_MS) this.#drop(p)
    }
  }

  // Whether `n` more bytes of `p` stay within every bound.
  #fits(p: Partial, n: number): boolean {
    return this.#pending + n <= this.#maxTotal &&
      (this.#bySender.get(p.sender) ?? 0) + n <= this.#senderShare &&
      (this.#byGroups.get(p.groupKey) ?? 0) + n <= this.#groupShare
  }

  #count(p: Partial, n: number): void {
    this.#pending += n
    this.#bySender.set(p.sender, (this.#bySender.get(p.sender) ?? 0) + n)
    this.#byGroups.set(p.groupKey, (this.#byGroups.get(p.groupKey) ?? 0) + n)
  }

  #drop(p: Partial): void {
    this.#forget(p)
    this.#dropped++
  }

  #forget(p: Partial): void {
    const bySender = this.#partials.get(p.sender)
    if (bySender?.delete(p.id) !== true) return
    if (bySender.size === 0) this.#partials.delete(p.sender)
    const held = p.filled + PARTIAL_OVERHEAD
    this.#pending -= held
    const s = (this.#bySender.get(p.sender) ?? 0) - held
    if (s > 0) this.#bySender.set(p.sender, s)
    else this.#bySender.delete(p.sender)
    const g = (this.#byGroups.get(p.groupKey) ?? 0) - held
    if (g > 0) this.#byGroups.set(p.groupKey, g)
    else this.#byGroups.delete(p.groupKey)
  }
}
