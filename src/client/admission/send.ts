/**
 * The send path of a session: validation, the flow window, and encoding
 * straight into the outbound buffer.
 *
 * The common case runs in one synchronous step with no Effect of its own:
 * the destinations are found in a cache of validated names, the window's
 * credit covers the message, the buffer has room, and the frame is encoded
 * in place — admission's synchronous step, specialised to one cached
 * destination. Everything else — and a send that finds the window or the
 * buffer full — is prepared and goes through admission (admission.ts),
 * which admits it at once or makes it wait its turn; what counts in the
 * window, and the groups joined that decide it, are counting.ts's.
 *
 * A connection that reconnects keeps its `Sender`: it reads where frames
 * go from the connection's state at each send, so a sender waiting its turn
 * carries on in the new session, and fails with the sticky error only when
 * the current buffer is closed.
 *
 * @module
 */
import { Effect } from "effect"
import { validateGroupName } from "../../protocol/names.ts"
import { type ConnectionError, RequestError, requestErrorOf } from "../core/errors.ts"
import { Counting } from "./counting.ts"
import { IN_PLACE_TEXT, type OutgoingMessage, prepareCommand, type PreparedFrame, prepareMulticast } from "./frames.ts"
import { NameCache } from "./name_cache.ts"
import { encodeCommand } from "../../protocol/client_requests.ts"
import {
  HEADER_SIZE,
  MAX_GROUP_NAME,
  REAL_DAEMON_MAX_PAYLOAD,
  ServiceBits,
  serviceBitsOf,
} from "../../protocol/constants.ts"
import { encodeDataInto, encodeInto, frameBound, writeHeader } from "../../protocol/encode.ts"
import { hintOf } from "../../protocol/frame.ts"
import { Admission, type Target } from "./admission.ts"
import { syncFirst } from "./sync_first.ts"
import type { ViewTracker } from "../core/views.ts"

export type { OutgoingMessage } from "./frames.ts"

/**
 * The senders' side of one session.
 *
 * @since 0.2.0
 * @category models
 */
export class Sender {
  // Where frames go now, and whether they go at once or wait (admission.ts).
  readonly #to: Admission
  /** Whether the session gets membership messages (which answer its joins and leaves). */
  readonly membership: boolean
  readonly #names = new NameCache()
  readonly #counting: Counting
  /** Groups this session belongs to, as of the frames queued so far (see counting.ts). */
  readonly joined: Set<string>

  /**
   * `target` answers where frames go now: read from the connection's one
   * state value at each send, never copied.
   */
  constructor(
    target: () => Target,
    views: ViewTracker,
    membership: boolean,
    failSticky: Effect.Effect<never, ConnectionError>,
  ) {
    this.membership = membership
    this.#counting = new Counting(views, membership)
    this.joined = this.#counting.joined
    this.#to = new Admission(target, this.#counting, failSticky)
  }

  /** Where frames go now (the current session, or the gap buffers while reconnecting). */
  get target(): Target {
    return this.#to.target
  }

  /** Senders waiting their turn (for window credit or buffer room). */
  get waiting(): number {
    return this.#to.waiting
  }

  /** The private group whose name goes into each frame. */
  get privateGroup(): string {
    return this.#to.target.privateGroup
  }

  /**
   * Multicasts one message: synchronously when the window and the buffer
   * have room, else waiting for them.
   */
  multicast(m: OutgoingMessage): Effect.Effect<void, ConnectionError | RequestError> {
    return syncFirst((): Effect.Effect<void, ConnectionError | RequestError> | undefined => {
      if (this.#trySingle(m)) return undefined
      const p = prepareMulticast(m, this.#names)
      if (p instanceof RequestError) return Effect.fail(p)
      return this.#to.tryAdmit(p) ? undefined : this.#to.wait(p)
    })
  }

  // The commonest send, in one step with no allocation: one destination,
  // named by a string validated before, a payload that surely fits, and
  // room in the window and the buffer. Anything else answers false and
  // takes the general path (which checks and counts it the same way).
  #trySingle(m: OutgoingMessage): boolean {
    const g = m.groups
    const entry = this.#simpleEntry(m)
    if (entry === undefined || typeof g !== "string") return false
    const bits = serviceBitsOf(m.service ?? "Agreed")
    const mt = m.messType ?? 0
    const data = m.data
    const text = typeof data === "string"
    const bound = text ? data.length * 3 : data.length
    const to = this.#to.target
    if (!this.#to.isOpen(to)) return false
    const out = to.out
    const flow = to.flow
    const selfDiscard = m.selfDiscard === true
    const size = flow.enabled && !selfDiscard ? this.#counting.sizeOf(g, to.privateGroup) : 0
    const cost = size > 0 ? flow.costOf(size) : 0
    const fixed = HEADER_SIZE + MAX_GROUP_NAME
    const buf = out.room(fixed + bound)
    if (buf === undefined || !flow.tryUse(cost)) return false
    const o = out.end
    const dataLen = encodeDataInto(buf, o + fixed, data)
    writeHeader(buf, o, selfDiscard ? bits | ServiceBits.SELF_DISCARD : bits, to.nameField, 1, hintOf(mt), dataLen)
    buf.set(entry, o + HEADER_SIZE)
    out.commit(fixed + dataLen)
    if (cost > 0) flow.commit(cost, g)
    return true
  }

  /** Multicasts in order; all are checked first, and none is sent if one is invalid. */
  multicastMany(messages: Iterable<OutgoingMessage>): Effect.Effect<void, ConnectionError | RequestError> {
    return syncFirst((): Effect.Effect<void, ConnectionError | RequestError> | undefined => {
      const list = Array.isArray(messages) ? (messages as ReadonlyArray<OutgoingMessage>) : Array.from(messages)
      // All simple (checked up front, so still all-or-nothing): each goes by
      // the one-step path, and only one that finds no room or credit is
      // prepared and waits.
      if (list.length > 0 && list.every((m) => this.#simpleEntry(m) !== undefined)) {
        // Sends from `i` on; `undefined` once all went in this step.
        const from = (i: number): Effect.Effect<void, ConnectionError | RequestError> | undefined => {
          while (i < list.length && this.#trySingle(list[i])) i++
          if (i === list.length) return undefined
          const p = prepareMulticast(list[i], this.#names)
          if (p instanceof RequestError) return Effect.fail(p)
          const k = i
          return Effect.flatMap(this.#to.wait(p), () => from(k + 1) ?? Effect.void)
        }
        return from(0)
      }
      const items: Array<PreparedFrame> = []
      for (const m of list) {
        const p = prepareMulticast(m, this.#names)
        if (p instanceof RequestError) return Effect.fail(p)
        items.push(p)
      }
      return this.#to.admitAll(items)
    })
  }

  /**
   * Joins or leaves `group`. Counted in the window when the daemon will
   * answer it to this session (a membership message for a join, a
   * self-leave for a leave; with membership messages on), so a burst of
   * joins and leaves never outruns a reader — a real daemon cuts off a
   * session 1000 unread messages behind.
   */
  command(kind: "Join" | "Leave", group: string): Effect.Effect<void, ConnectionError | RequestError> {
    return Effect.suspend((): Effect.Effect<void, ConnectionError | RequestError> => {
      const invalid = validateGroupName(group)
      if (invalid !== undefined) return Effect.fail(requestErrorOf(kind === "Join" ? "join" : "leave", invalid))
      return this.#to.admit(prepareCommand(kind, group, this.#names))
    })
  }

  /**
   * Queues `m` if that can be done at once (window credit and room, ahead
   * of waiting senders), never waiting; answers whether it did. For
   * best-effort messages sent from a finalizer, which must not wait.
   */
  offerNow(m: OutgoingMessage): boolean {
    const p = prepareMulticast(m, this.#names)
    return !(p instanceof RequestError) && this.#to.tryAdmit(p, true)
  }

  /** Whether a message to `groups` comes back to this session (and so counts). */
  isCounted(groups: ReadonlyArray<string>, selfDiscard: boolean): boolean {
    return this.#counting.isCounted(groups, selfDiscard, this.#to.target.privateGroup)
  }

  // ----- the steps -----

  // The group entry of `m` when the one-step path takes it (given room in
  // the window and the buffer): one destination named by a string validated
  // before, a known service, a 16-bit mess_type, and a payload that surely
  // fits one frame; else undefined.
  #simpleEntry(m: OutgoingMessage): Uint8Array | undefined {
    const g = m.groups
    if (typeof g !== "string") return undefined
    const entry = this.#names.cached(g)
    if (entry === undefined || serviceBitsOf(m.service ?? "Agreed") === 0) return undefined
    const mt = m.messType ?? 0
    if (mt !== 0 && !(Number.isInteger(mt) && mt >= -32768 && mt <= 65535)) return undefined
    const data = m.data
    if (typeof data === "string") return data.length <= IN_PLACE_TEXT ? entry : undefined
    return data.length + MAX_GROUP_NAME <= REAL_DAEMON_MAX_PAYLOAD ? entry : undefined
  }

  /**
   * Join frames for `groups`, sent by the private group whose entry is
   * `nameField`, encoded together (a new session joins again what the lost
   * one had joined); not counted, not queued.
   */
  joinFrames(nameField: Uint8Array, groups: ReadonlyArray<string>): Uint8Array {
    const frames = groups.map((g) => prepareCommand("Join", g, this.#names))
    const buf = new Uint8Array(frames.reduce((n, p) => n + frameBound(p), 0))
    let o = 0
    for (const p of frames) o += encodeInto(buf, o, nameField, p)
    return buf.subarray(0, o)
  }

  /** The disconnect frame of this session. */
  get killFrame(): Uint8Array {
    const pg = this.#to.target.privateGroup
    return encodeCommand("Kill", pg, pg)
  }
}
