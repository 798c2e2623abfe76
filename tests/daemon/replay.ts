/**
 * Replays the client side of a real Spread trace against a daemon and
 * collects, per connection, what the real daemon answered and what ours
 * answered, both normalized for a field-by-field comparison.
 *
 * The records are taken in the order of their `t` stamps (the causal order
 * between connections). Each client chunk is written as it was received
 * (chunk boundaries of the client side matter for the handshake); before the
 * replay moves past a daemon-to-client record it waits until our daemon has
 * sent at least as many whole items (handshake replies and frames) on that
 * connection as the real one had by then, and for the close where the real
 * daemon closed. What differs between runs is wildcarded: `group_id.time`
 * and `proc_id`, and generated private names (mapped from the trace's to
 * ours as the accepts arrive).
 */
import { Effect, type Scope } from "effect"
import {
  decodeMembershipBody,
  type Frame,
  FrameDecoder,
  hasPatchByte,
  isProtocolError,
  parseAccept,
  parseAuthList,
  parseConnect,
  readI32,
  readU32,
  ServiceBits,
  usesAuthExchange,
  type Version,
} from "../../src/protocol/mod.ts"
import type { Address } from "../../src/protocol/address.ts"
import { RawClient } from "../_helpers/raw_client.ts"
import { fromHex, readTrace, type TraceRecord } from "../_helpers/traces.ts"
import { concatBytes } from "../../src/protocol/bytes.ts"

const LIB: Version = { major: 5, minor: 0, patch: 1 }

/** One item a daemon sends: a handshake reply or a frame. */
export type D2cItem =
  | { readonly kind: "authList"; readonly text: string }
  | { readonly kind: "reject"; readonly code: number }
  | { readonly kind: "accept"; readonly version: string; readonly privateGroup: string }
  | { readonly kind: "frame"; readonly frame: Frame }

/** A daemon-to-client stream cut into items. */
export interface ParsedD2c {
  readonly items: ReadonlyArray<D2cItem>
  /** Stream offset just past each item. */
  readonly ends: ReadonlyArray<number>
  /** Bytes after the last whole item. */
  readonly trailing: number
}

/** The client version a client-to-daemon stream starts with (5.0.1 when there is none). */
export const clientVersion = (c2d: Uint8Array): Version => {
  const r = parseConnect(c2d)
  if (r === undefined || isProtocolError(r)) return LIB
  return r.value._tag === "Connect" ? r.value.message.version : r.value._tag === "TooOld" ? r.value.version : LIB
}

/** Cuts a daemon-to-client stream into items, as a client of `version` reads it. */
export const parseD2c = (bytes: Uint8Array, version: Version): ParsedD2c => {
  const items: Array<D2cItem> = []
  const ends: Array<number> = []
  let o = 0
  let phase: "authList" | "accept" | "frames" | "done" = usesAuthExchange(version) ? "authList" : "accept"
  while (phase === "authList" || phase === "accept") {
    if (phase === "authList") {
      const r = parseAuthList(bytes.subarray(o))
      if (r === undefined || isProtocolError(r)) break
      o += r.consumed
      if (r.value._tag === "Reject") {
        items.push({ kind: "reject", code: r.value.code })
        phase = "done"
      } else {
        items.push({ kind: "authList", text: r.value.methods.map((m) => m + " ").join("") })
        phase = "accept"
      }
    } else {
      const r = parseAccept(bytes.subarray(o), version)
      if (r === undefined || isProtocolError(r)) break
      o += r.consumed
      if (r.value._tag === "Reject") {
        items.push({ kind: "reject", code: r.value.code })
        phase = "done"
      } else {
        const v = r.value.version
        items.push({
          kind: "accept",
          version: hasPatchByte(version) ? `${v.major}.${v.minor}.${v.patch}` : `${v.major}.${v.minor}`,
          privateGroup: r.value.privateGroup,
        })
        phase = "frames"
      }
    }
    ends.push(o)
  }
  if (phase === "frames") {
    const d = new FrameDecoder("toClient")
    d.push(bytes.subarray(o))
    for (;;) {
      const f = d.next()
      if (f === undefined || isProtocolError(f)) break
      o += f.bytes.length
      items.push({ kind: "frame", frame: f })
      ends.push(o)
    }
  }
  return { items, ends, trailing: bytes.length - o }
}

const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("")

const digest = (b: Uint8Array): string => {
  if (b.length <= 64) return hex(b)
  let h = 0x811c9dc5
  for (let i = 0; i < b.length; i++) h = Math.imul(h ^ b[i], 0x01000193)
  return `${b.length} bytes, fnv1a ${(h >>> 0).toString(16)}`
}

const isMembership = (t: number): boolean =>
  (t & ServiceBits.REGULAR_MESS) === 0 && (t & ServiceBits.REJECT_MESS) === 0 &&
  (t & ServiceBits.REG_MEMB_MESS) !== 0

/**
 * A normalized item: every field, with names passed through `rename` (the
 * trace's generated names to ours), `group_id.proc_id` and `.time` left out.
 */
export const normalize = (item: D2cItem, rename: (s: string) => string): unknown => {
  switch (item.kind) {
    case "authList":
    case "reject":
      return item
    case "accept":
      return { ...item, privateGroup: rename(item.privateGroup) }
    case "frame": {
      const f = item.frame
      const b = f.bytes
      const base = {
        type: hex(b.subarray(0, 4)),
        name: rename(f.sender),
        numGroups: f.numGroups,
        littleEndian: f.littleEndian,
        hint: hex(b.subarray(40, 44)),
        dataLen: f.dataLen,
        groups: f.groups.map(rename),
      }
      if (!isMembership(f.type)) return { ...base, data: digest(f.data) }
      const body = decodeMembershipBody(f.data, f.littleEndian)
      if (isProtocolError(body)) return { ...base, body: body.message }
      return {
        ...base,
        index: body.groupId.index,
        numVsSets: readU32(f.data, 12, f.littleEndian),
        localVsSetOffset: body.localVsSetOffset,
        vsSets: body.vsSets.map((s) => s.map(rename)),
      }
    }
  }
}

/** What one connection of a replay saw, and what the real daemon sent. */
export interface ConnOutcome {
  readonly conn: number
  /** The real daemon's items, normalized (names mapped to ours). */
  readonly expected: ReadonlyArray<unknown>
  /** Our daemon's items, normalized. */
  readonly actual: ReadonlyArray<unknown>
  /** The real daemon closed this connection. */
  readonly expectEof: boolean
  /** Ours closed it. */
  readonly gotEof: boolean
  /**
   * The real stream ends inside a message (the client left while the daemon
   * was still sending): only its whole items are compared, as a prefix.
   */
  readonly prefixOnly: boolean
  /** Our generated private name, when the trace's was generated too. */
  readonly generated: string | undefined
}

/** How to reach the daemon for each connection of the trace. */
export interface ReplayOptions {
  readonly address: (conn: number) => Address
  /** Longest wait for one expected answer. */
  readonly waitMs?: number
}

interface ConnPlan {
  readonly c2d: Uint8Array
  readonly version: Version
  readonly d2c: ParsedD2c
  readonly expectEof: boolean
  /** Offset in the client stream where each c2d data record starts. */
  readonly c2dOffset: Map<TraceRecord, number>
  /** Items the real daemon had sent once each d2c data record was in. */
  readonly needAfter: Map<TraceRecord, number>
}

const joined = (records: ReadonlyArray<TraceRecord>): Uint8Array => {
  return concatBytes(records.filter((r) => r.hex.length > 0).map((r) => fromHex(r.hex)))
}

// `records` in replay order.
const plan = (records: ReadonlyArray<TraceRecord>): Map<number, ConnPlan> => {
  const conns = [...new Set(records.map((r) => r.conn))]
  const out = new Map<number, ConnPlan>()
  for (const conn of conns) {
    const c2dRecs = records.filter((r) => r.conn === conn && r.dir === "c2d")
    const d2cRecs = records.filter((r) => r.conn === conn && r.dir === "d2c")
    const c2d = joined(c2dRecs)
    const version = clientVersion(c2d)
    const d2c = parseD2c(joined(d2cRecs), version)
    const c2dOffset = new Map<TraceRecord, number>()
    let off = 0
    for (const r of c2dRecs) {
      if (r.hex.length === 0) continue
      c2dOffset.set(r, off)
      off += r.hex.length / 2
    }
    const needAfter = new Map<TraceRecord, number>()
    let cum = 0
    for (const r of d2cRecs) {
      if (r.hex.length === 0) continue
      cum += r.hex.length / 2
      needAfter.set(r, d2c.ends.filter((e) => e <= cum).length)
    }
    // The real daemon closed first (before the client closed or reset).
    const ends = (r: TraceRecord): boolean => r.ev === "eof" || (r.ev?.startsWith("error:") ?? false)
    const daemonEnd = records.findIndex((r) => r.conn === conn && r.dir === "d2c" && ends(r))
    const clientEnd = records.findIndex((r) =>
      r.conn === conn && r.dir === "c2d" && (r.ev === "close" || (r.ev?.startsWith("error:") ?? false))
    )
    const expectEof = daemonEnd >= 0 && (clientEnd < 0 || daemonEnd < clientEnd)
    out.set(conn, { c2d, version, d2c, expectEof, c2dOffset, needAfter })
  }
  return out
}

const GENERATED = /^#r\d+-\d+#/

// Rewrites the name field and the group entries of every frame after the
// handshake with `rename` (fixed 32-byte fields, so offsets do not move).
const rewrite = (c2d: Uint8Array, version: Version, rename: (s: string) => string): Uint8Array => {
  const out = c2d.slice()
  const r = parseConnect(c2d)
  if (r === undefined || isProtocolError(r)) return out
  let o = r.consumed + (usesAuthExchange(version) ? 90 : 0)
  const field = (at: number): void => {
    if (at + 32 > out.length) return
    let s = ""
    for (let i = at; i < at + 32 && out[i] !== 0; i++) s += String.fromCharCode(out[i])
    const to = rename(s)
    if (to === s) return
    out.fill(0, at, at + 32)
    for (let i = 0; i < to.length; i++) out[at + i] = to.charCodeAt(i)
  }
  while (o + 48 <= out.length) {
    const le = (out[o] & 0x80) !== 0
    const groups = readI32(out, o + 36, le)
    const dataLen = readI32(out, o + 44, le)
    if (groups < 0 || groups > 100 || dataLen < 0 || dataLen > 144000) break
    field(o + 4)
    for (let g = 0; g < groups; g++) field(o + 48 + 32 * g)
    o += 48 + 32 * groups + dataLen
  }
  return out
}

/**
 * Replays a trace's client side against a daemon. Dies with a message
 * naming the trace, connection and record when an expected answer does not
 * come within the wait.
 */
export const replay = (
  trace: string,
  opts: ReplayOptions,
): Effect.Effect<Array<ConnOutcome>, never, Scope.Scope> =>
  Effect.gen(function* () {
    const waitMs = opts.waitMs ?? 3000
    const records = readTrace(trace).map((r, i) => ({ r, i }))
      .sort((a, b) => a.r.t - b.r.t || a.i - b.i)
      .map((x) => x.r)
    const plans = plan(records)
    const clients = new Map<number, RawClient>()
    const closed = new Set<number>()
    const names = new Map<string, string>()
    const generated = new Map<number, string>()
    const rename = (s: string): string => names.get(s) ?? s
    const ours = (conn: number): ParsedD2c => {
      const c = clients.get(conn)
      const p = plans.get(conn)
      return c === undefined || p === undefined
        ? { items: [], ends: [], trailing: 0 }
        : parseD2c(c.recorded(), p.version)
    }
    const fail = (r: TraceRecord, what: string) => {
      const p = plans.get(r.conn)
      const got = ours(r.conn).items.map((i) => normalize(i, (s) => s))
      const want = p === undefined ? [] : p.d2c.items.map((i) => normalize(i, rename))
      return Effect.dieMessage(
        `${trace} conn${r.conn} at t=${r.t}: ${what}\nexpected: ${JSON.stringify(want)}\nactual:   ${
          JSON.stringify(got)
        }`,
      )
    }
    for (const r of records) {
      const p = plans.get(r.conn)
      if (p === undefined) continue
      const client = clients.get(r.conn)
      if (r.dir === "c2d") {
        if (r.ev === "open") {
          clients.set(r.conn, yield* RawClient.open(opts.address(r.conn), { record: true }))
        } else if (client === undefined || closed.has(r.conn)) {
          continue
        } else if (r.ev === "eof") {
          yield* client.closeWrite
        } else if (r.ev !== undefined) {
          // close, or error:* (the client reset or vanished)
          yield* client.close
          closed.add(r.conn)
        } else {
          const start = p.c2dOffset.get(r) ?? 0
          const end = start + r.hex.length / 2
          const bytes = names.size === 0 ? fromHex(r.hex) : rewrite(p.c2d, p.version, rename).subarray(start, end)
          yield* client.write(bytes)
        }
        continue
      }
      if (client === undefined || closed.has(r.conn)) continue
      if (r.ev === "eof" || (r.ev?.startsWith("error:") ?? false)) {
        if (!(yield* client.awaitEof(waitMs))) return yield* fail(r, "the daemon did not close the connection")
        continue
      }
      if (r.ev !== undefined) continue
      const need = p.needAfter.get(r) ?? 0
      const ok = yield* client.waitRecorded((b) => parseD2c(b, p.version).items.length >= need, waitMs)
      if (!ok) return yield* fail(r, `waited for ${need} items`)
      // Map a generated private name as soon as its accept is in.
      const want = p.d2c.items.find((i) => i.kind === "accept")
      const got = ours(r.conn).items.find((i) => i.kind === "accept")
      if (
        want?.kind === "accept" && got?.kind === "accept" && want.privateGroup !== got.privateGroup &&
        GENERATED.test(want.privateGroup)
      ) {
        names.set(want.privateGroup, got.privateGroup)
        generated.set(r.conn, got.privateGroup)
      }
    }
    // Whatever is still in flight (bounded): everything up to our close.
    const out: Array<ConnOutcome> = []
    for (const [conn, p] of plans) {
      const c = clients.get(conn)
      if (c !== undefined && p.expectEof && !closed.has(conn)) yield* c.awaitEof(waitMs)
      const actual = ours(conn)
      out.push({
        conn,
        expected: p.d2c.items.map((i) => normalize(i, rename)),
        actual: actual.items.map((i) => normalize(i, (s) => s)),
        expectEof: p.expectEof,
        gotEof: c?.eof ?? false,
        prefixOnly: p.d2c.trailing > 0,
        generated: generated.get(conn),
      })
    }
    return out
  })
