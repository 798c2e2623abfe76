/**
 * Reassembly: the fragments of large messages (fragments.ts) put back
 * together by the receiving client, in order, per sender — the reader's
 * hook for large messages. Pure bookkeeping: no Effect, no IO; time is the
 * fiber's `Clock`, read synchronously.
 *
 * What a receiver holds is bounded: one message at most `maxMessageBytes`,
 * all partial messages together at most `maxReassemblyBytes`; a partial
 * message more than {@link STALE_MS} old gives way to a new one that needs
 * its room. A fragment out of order, one that would pass a bound, or one
 * whose sender leaves or disconnects (its membership message says so) drops
 * that sender's partial message: nothing partial is ever delivered, and its
 * memory goes at once.
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
 * How long a partial large message may wait for its next fragment before
 * a message that needs its room may drop it (30 s).
 *
 * @since 0.2.0
 * @category constants
 */
export const STALE_MS = 30_000

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
  readonly bytes: Uint8Array
  // The fields of the whole message, copied from its first fragment (not
  // the fragment itself, which would keep its socket read alive).
  readonly groups: ReadonlyArray<string>
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
  /** Bytes held by partial messages now (each counted at least {@link PARTIAL_OVERHEAD}). */
  readonly pendingBytes: number
}

/**
 * What a partial message counts against the bound at the least, so that
 * fragments claiming tiny totals cannot pile up partial messages for free.
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
  // Keyed by sender, then message id; both in insertion order, so a
  // sender's oldest partial message is its first.
  readonly #partials = new Map<string, Map<string, Partial>>()
  #pending = 0
  #assembled = 0
  #dropped = 0
  readonly #clock: Clock.Clock

  /**
   * Bounds: one message at most `maxMessageBytes`, all partials at most
   * `maxTotalBytes`. `clock` (the fiber's `Clock`, read synchronously on the
   * reader's path) tells stale partial messages from live ones, so a
   * `TestClock` drives it.
   */
  constructor(maxMessageBytes: number, maxTotalBytes: number, clock: Clock.Clock) {
    this.#maxMessage = maxMessageBytes
    this.#maxTotal = maxTotalBytes
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
      const cost = Math.max(total, PARTIAL_OVERHEAD)
      // Room is made first from partial messages gone quiet (a sender that
      // starts large messages and never finishes them holds nothing for long).
      if (this.#pending + cost > this.#maxTotal) this.#dropStale(now)
      // Every fragment carries at least one byte.
      if (
        count === 0 || total === 0 || count > total || total > this.#maxMessage || this.#pending + cost > this.#maxTotal
      ) {
        this.#dropped++
        return undefined
      }
      if (bySender !== undefined && bySender.size >= MAX_PARTIALS_PER_SENDER) {
        const oldest = bySender.values().next()
        if (oldest.done !== true) this.#drop(oldest.value)
      }
      p = {
        sender,
        id,
        count,
        bytes: new Uint8Array(total),
        groups: m.groups,
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
      this.#pending += cost
    }
    if (index !== p.next || count !== p.count || total !== p.bytes.length || p.filled + body.length > total) {
      this.#drop(p)
      return undefined
    }
    p.bytes.set(body, p.filled)
    p.filled += body.length
    p.last = now
    p.next++
    if (p.next < p.count) return undefined
    this.#forget(p)
    if (p.filled !== total) {
      this.#dropped++
      return undefined
    }
    this.#assembled++
    return {
      _tag: "Regular",
      sender,
      groups: p.groups,
      service: p.service,
      type: p.type,
      messType: p.messType,
      endianMismatch: p.endianMismatch,
      data: p.bytes,
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

  #dropStale(now: number): void {
    for (const bySender of [...this.#partials.values()]) {
      for (const p of [...bySender.values()]) if (now - p.last > STALE_MS) this.#drop(p)
    }
  }

  #drop(p: Partial): void {
    this.#forget(p)
    this.#dropped++
  }

  #forget(p: Partial): void {
    const bySender = this.#partials.get(p.sender)
    if (bySender?.delete(p.id) !== true) return
    if (bySender.size === 0) this.#partials.delete(p.sender)
    this.#pending -= Math.max(p.bytes.length, PARTIAL_OVERHEAD)
  }
}
