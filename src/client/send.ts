/**
 * The send path of a session: validation, the flow window, and encoding
 * straight into the outbound buffer.
 *
 * The common case runs in one synchronous step with no Effect of its own:
 * the destinations are found in a cache of validated names, the window's
 * credit covers the message, the buffer has room, and the frame is encoded
 * in place. Only when the window or the buffer is full does a send wait —
 * then through the semaphore ({@link FlowControl.acquire}) or the buffer's
 * room signal, trying the fast step again after each wait.
 *
 * What the session has joined, as of the frames queued so far, lives here
 * too: the daemon applies joins, leaves and multicasts in that same order,
 * so it decides which messages come back (and count in the window).
 *
 * @module
 */
import { Effect } from "effect"
import { writeU32 } from "../protocol/bytes.ts"
import {
  ENDIAN_RESERVED,
  HEADER_SIZE,
  MAX_GROUP_NAME,
  REAL_DAEMON_MAX_GROUPS,
  REAL_DAEMON_MAX_PAYLOAD,
  ServiceBits,
} from "../protocol/constants.ts"
import { protocolError } from "../protocol/errors.ts"
import { validateGroupName } from "../protocol/names.ts"
import { type ConnectionError, RequestError, requestErrorOf } from "./errors.ts"
import type { Outbound, TryResult } from "./outbound.ts"
import type { ViewTracker } from "./views.ts"
import type { FlowWindow } from "./options.ts"
import type { FlowControl } from "./window.ts"
import type { ServiceLevel } from "../protocol/constants.ts"

/**
 * A message to multicast.
 *
 * @since 0.1.0
 * @category models
 */
export interface OutgoingMessage {
  /** One destination group, or up to 43 (what a real Spread daemon delivers); ordinary or private (`#name#daemon`). */
  readonly groups: string | ReadonlyArray<string>
  /** The payload: bytes as given, or text encoded as UTF-8. */
  readonly data: Uint8Array | string
  /** Service level; `"Agreed"` by default. */
  readonly service?: ServiceLevel
  /** 16-bit application message type (-32768..65535); 0 by default. */
  readonly messType?: number
  /** Do not deliver a copy to the sender (such a message is not counted by the flow window). */
  readonly selfDiscard?: boolean
}

/** Most validated destination names cached; the cache starts over beyond. */
const NAME_CACHE = 4096
/** Strings up to this many UTF-16 units are encoded in place (3 bytes each at most). */
const IN_PLACE_TEXT = 8 * 1024
const COMMAND_SIZE = HEADER_SIZE + MAX_GROUP_NAME
const encoder = new TextEncoder()

/** A frame checked and ready to encode. */
interface Prepared {
  readonly kind: "Multicast" | "Join" | "Leave"
  readonly selfDiscard: boolean
  readonly groups: ReadonlyArray<Uint8Array>
  readonly names: ReadonlyArray<string>
  readonly type: number
  readonly hint: number
  readonly data: Uint8Array | string
  cost: number
  via: string | undefined
}

/**
 * The senders' side of one session.
 *
 * @since 0.2.0
 * @category models
 */
export class Sender {
  readonly #privateGroup: string
  readonly #nameField: Uint8Array
  readonly #out: Outbound
  readonly #flow: FlowControl
  readonly #views: ViewTracker
  /** Whether the session gets membership messages (which answer its joins and leaves). */
  readonly membership: boolean
  readonly #failSticky: Effect.Effect<never, ConnectionError>
  readonly #names = new Map<string, Uint8Array>()
  /** Groups this session belongs to, as of the frames queued so far. */
  readonly joined = new Set<string>()

  constructor(
    privateGroup: string,
    out: Outbound,
    flow: FlowControl,
    views: ViewTracker,
    membership: boolean,
    failSticky: Effect.Effect<never, ConnectionError>,
  ) {
    this.#privateGroup = privateGroup
    this.#nameField = paddedName(privateGroup)
    this.#out = out
    this.#flow = flow
    this.#views = views
    this.membership = membership
    this.#failSticky = failSticky
  }

  /** The window in force. */
  get window(): FlowWindow {
    return this.#flow.window
  }

  /**
   * Multicasts one message: synchronously when the window and the buffer
   * have room, else waiting for them.
   */
  multicast(m: OutgoingMessage): Effect.Effect<void, ConnectionError | RequestError> {
    return Effect.suspend((): Effect.Effect<void, ConnectionError | RequestError> => {
      const p = this.#prepare(m)
      if (p instanceof RequestError) return Effect.fail(p)
      return this.#tryQueue(p) === "Queued" ? Effect.void : this.#queueSlow(p)
    })
  }

  /** Multicasts in order; all are checked first, and none is sent if one is invalid. */
  multicastMany(messages: Iterable<OutgoingMessage>): Effect.Effect<void, ConnectionError | RequestError> {
    return Effect.suspend((): Effect.Effect<void, ConnectionError | RequestError> => {
      const items: Array<Prepared> = []
      for (const m of messages) {
        const p = this.#prepare(m)
        if (p instanceof RequestError) return Effect.fail(p)
        items.push(p)
      }
      if (items.length === 0) return this.#out.closed ? this.#failSticky : Effect.void
      const from = (i: number): Effect.Effect<void, ConnectionError> => {
        while (i < items.length && this.#tryQueue(items[i]) === "Queued") i++
        if (i === items.length) return Effect.void
        const k = i
        return Effect.flatMap(this.#queueSlow(items[k]), () => from(k + 1))
      }
      return from(0)
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
      const p: Prepared = {
        kind,
        selfDiscard: false,
        groups: [this.#nameOf(group)],
        names: [group],
        type: kind === "Join" ? ServiceBits.JOIN_MESS : ServiceBits.LEAVE_MESS,
        hint: ENDIAN_RESERVED,
        data: "",
        cost: 0,
        via: undefined,
      }
      this.#count(p)
      return this.#tryQueue(p) === "Queued" ? Effect.void : this.#queueSlow(p)
    })
  }

  /** Whether a message to `groups` comes back to this session (and so counts). */
  isCounted(groups: ReadonlyArray<string>, selfDiscard: boolean): boolean {
    if (selfDiscard) return false
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i]
      if (g === this.#privateGroup || this.joined.has(g)) return true
    }
    return false
  }

  // ----- the steps -----

  #prepare(m: OutgoingMessage): Prepared | RequestError {
    const names = typeof m.groups === "string" ? [m.groups] : m.groups
    const n = names.length
    if (n === 0 || n > REAL_DAEMON_MAX_GROUPS) {
      return requestErrorOf(
        "multicast",
        n === 0 ? protocolError("Malformed", "groups", 0, "A multicast needs at least one group") : protocolError(
          "Oversize",
          "groups",
          n,
          `Cannot send to ${n} groups: a real Spread daemon delivers to at most ${REAL_DAEMON_MAX_GROUPS}`,
        ),
      )
    }
    const groups = new Array<Uint8Array>(n)
    for (let i = 0; i < n; i++) {
      const g = names[i]
      let bytes = this.#names.get(g)
      if (bytes === undefined) {
        const invalid = validateGroupName(g, true)
        if (invalid !== undefined) return requestErrorOf("multicast", invalid)
        bytes = this.#nameOf(g)
      }
      groups[i] = bytes
    }
    const service = m.service ?? "Agreed"
    const bits = serviceBitsOf(service)
    if (bits === 0) {
      return requestErrorOf(
        "multicast",
        protocolError("IllegalService", "service", String(service), "Unknown service level"),
      )
    }
    const mt = m.messType ?? 0
    if (!Number.isInteger(mt) || mt < -32768 || mt > 65535) {
      return requestErrorOf("multicast", protocolError("Malformed", "mess_type", mt, "mess_type is a 16-bit integer"))
    }
    let data = m.data
    if (typeof data === "string" && data.length > IN_PLACE_TEXT) data = encoder.encode(data)
    if (typeof data !== "string") {
      const size = data.length + MAX_GROUP_NAME * n
      if (size > REAL_DAEMON_MAX_PAYLOAD) {
        return requestErrorOf(
          "multicast",
          protocolError(
            "Oversize",
            "data_len + 32 * num_groups",
            size,
            `Cannot send ${data.length} bytes to ${n} group(s): data + 32 * groups exceeds ${REAL_DAEMON_MAX_PAYLOAD}`,
          ),
        )
      }
    }
    const selfDiscard = m.selfDiscard ?? false
    const p: Prepared = {
      kind: "Multicast",
      selfDiscard,
      groups,
      names,
      type: bits | (selfDiscard ? ServiceBits.SELF_DISCARD : 0),
      hint: (((mt << 8) & 0x00ffff00) | ENDIAN_RESERVED) >>> 0,
      data,
      cost: 0,
      via: undefined,
    }
    this.#count(p)
    return p
  }

  // Sets what `p` costs in the window, as of the frames queued so far: a
  // multicast that comes back costs the size of its largest joined
  // destination (and counts only through `via` when that is its one joined
  // destination); a join or leave the daemon answers costs 1.
  #count(p: Prepared): void {
    p.cost = 0
    p.via = undefined
    if (!this.#flow.enabled) return
    if (p.kind !== "Multicast") {
      const g = p.names[0]
      if (this.membership && (p.kind === "Join" ? !this.joined.has(g) : this.joined.has(g))) p.cost = 1
      return
    }
    if (!this.isCounted(p.names, p.selfDiscard)) return
    let size = 1
    let only: string | undefined
    let single = true
    for (let i = 0; i < p.names.length; i++) {
      const g = p.names[i]
      if (g === this.#privateGroup) single = false
      else if (this.joined.has(g)) {
        size = Math.max(size, this.#views.size(g))
        if (only !== undefined && only !== g) single = false
        only = g
      }
    }
    p.cost = this.#flow.costOf(size)
    p.via = single ? only : undefined
  }

  // The synchronous step: encodes `p` in place when the window's credit and
  // the buffer have room; answers whether it did. A sender that has not
  // waited yet does not go ahead of senders that wait (first come, first
  // served).
  #tryQueue(p: Prepared, waited = false): TryResult {
    const out = this.#out
    if (out.closed) return "Closed"
    if (!waited && (out.waiting > 0 || this.#flow.waiting > 0)) return "NoRoom"
    const n = p.groups.length
    const data = p.data
    const fixed = HEADER_SIZE + MAX_GROUP_NAME * n
    const max = fixed + (typeof data === "string" ? data.length * 3 : data.length)
    const buf = out.room(max)
    if (buf === undefined) return "NoRoom"
    if (!this.#flow.tryUse(p.cost)) return "NoCredit"
    const o = out.end
    let dataLen: number
    if (typeof data === "string") {
      dataLen = data.length === 0 ? 0 : encoder.encodeInto(data, buf.subarray(o + fixed, o + max)).written
    } else {
      buf.set(data, o + fixed)
      dataLen = data.length
    }
    writeU32(buf, o, (p.type | ENDIAN_RESERVED) >>> 0, true)
    buf.set(this.#nameField, o + 4)
    writeU32(buf, o + 36, n, true)
    writeU32(buf, o + 40, p.hint, true)
    writeU32(buf, o + 44, dataLen, true)
    for (let i = 0, g = o + HEADER_SIZE; i < n; i++, g += MAX_GROUP_NAME) buf.set(p.groups[i], g)
    out.commit(fixed + dataLen)
    this.#committed(p)
    return "Queued"
  }

  // Bookkeeping of a queued frame, in the same synchronous step.
  #committed(p: Prepared): void {
    switch (p.kind) {
      case "Join":
        this.joined.add(p.names[0])
        break
      case "Leave":
        this.joined.delete(p.names[0])
        break
      case "Multicast":
        break
    }
    if (p.cost > 0) this.#flow.commit(p.cost, p.via)
  }

  // Waits for the window, then for room, as often as needed. Its cost is
  // counted again before each try: what it joined may have changed while it
  // waited. Interrupted, it queues nothing; permits it took stay in the
  // connection's credit.
  #queueSlow(p: Prepared): Effect.Effect<void, ConnectionError> {
    const tryNow = (): TryResult => {
      this.#count(p)
      return this.#tryQueue(p, true)
    }
    const attempt: Effect.Effect<void, ConnectionError> = Effect.suspend(() => {
      if (this.#out.closed) return this.#failSticky
      this.#count(p)
      if (p.cost > this.#flow.credit) return Effect.zipRight(this.#flow.acquire(p.cost), attempt)
      return Effect.flatMap(this.#out.awaitRoom(tryNow), (r) => {
        switch (r) {
          case "Queued":
            return Effect.void
          case "Closed":
            return this.#failSticky
          case "NoRoom":
          case "NoCredit":
            return attempt
        }
      })
    })
    return attempt
  }

  // The 32-byte, zero-padded group entry of a validated name (cached).
  #nameOf(group: string): Uint8Array {
    let bytes = this.#names.get(group)
    if (bytes === undefined) {
      bytes = paddedName(group)
      if (this.#names.size >= NAME_CACHE) this.#names.clear()
      this.#names.set(group, bytes)
    }
    return bytes
  }

  /** The disconnect frame of this session. */
  get killFrame(): Uint8Array {
    const buf = new Uint8Array(COMMAND_SIZE)
    writeU32(buf, 0, (ServiceBits.KILL_MESS | ENDIAN_RESERVED) >>> 0, true)
    buf.set(this.#nameField, 4)
    writeU32(buf, 36, 1, true)
    writeU32(buf, 40, ENDIAN_RESERVED, true)
    buf.set(this.#nameField, HEADER_SIZE)
    return buf
  }
}

// A name as a 32-byte, zero-padded group entry (names are latin1, under 32 bytes).
const paddedName = (name: string): Uint8Array => {
  const out = new Uint8Array(MAX_GROUP_NAME)
  for (let i = 0; i < name.length && i < MAX_GROUP_NAME - 1; i++) out[i] = name.charCodeAt(i) & 0xff
  return out
}

// The service bits of a level; 0 for anything else (a switch, not a keyed lookup: cheap on the hot path).
const serviceBitsOf = (service: ServiceLevel): number => {
  switch (service) {
    case "Unreliable":
      return ServiceBits.UNRELIABLE_MESS
    case "Reliable":
      return ServiceBits.RELIABLE_MESS
    case "Fifo":
      return ServiceBits.FIFO_MESS
    case "Causal":
      return ServiceBits.CAUSAL_MESS
    case "Agreed":
      return ServiceBits.AGREED_MESS
    case "Safe":
      return ServiceBits.SAFE_MESS
    default:
      return 0
  }
}
