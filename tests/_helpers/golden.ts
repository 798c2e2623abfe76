/**
 * Runs our codec over every stream of a trace, following the protocol rules
 * (connect, auth choice for 3.16+ clients, then frames; auth list or reject,
 * accept or reject, then frames), and normalizes both our result and the
 * `.decoded.txt` transcript into plain records that tests compare with
 * `toEqual`.
 */
import {
  type Accept,
  type AuthListOrReject,
  type ConnectParse,
  decodeServerMessage,
  Frame,
  FrameDecoder,
  type HandshakeReject,
  hasPatchByte,
  isProtocolError,
  isVersionTooOld,
  MAX_PRIVATE_NAME,
  parseAccept,
  parseAuthChoice,
  parseAuthList,
  parseConnect,
  ProtocolError,
  type ServerMessage,
  usesAuthExchange,
  type Version,
} from "../../src/protocol/mod.ts"
import { type PrintedData, type PrintedItem, type PrintedMsg, readDecoded, streamKey } from "./decoded.ts"
import { fromHex, readTrace } from "./traces.ts"
import { concatBytes } from "../../src/protocol/bytes.ts"

/** The recv chunks of one stream, cut before the first chunk truncated in the log. */
export interface Chunks {
  readonly chunks: ReadonlyArray<Uint8Array>
  /** A truncated chunk was found; it and everything after it are left out. */
  readonly cut: boolean
  /** The logged (partial) bytes of the first truncated chunk, if any. */
  readonly firstTruncated: Uint8Array | undefined
}

/** Chunks of each stream of a trace, keyed by {@link streamKey}. */
export const traceChunks = (name: string): Map<string, Chunks> => {
  const acc = new Map<string, { chunks: Array<Uint8Array>; cut: boolean; firstTruncated: Uint8Array | undefined }>()
  for (const r of readTrace(name)) {
    const key = streamKey(r.conn, r.dir)
    let s = acc.get(key)
    if (s === undefined) acc.set(key, s = { chunks: [], cut: false, firstTruncated: undefined })
    if (s.cut || r.hex.length === 0) continue
    if (r.truncated) {
      s.cut = true
      s.firstTruncated = fromHex(r.hex)
      continue
    }
    s.chunks.push(fromHex(r.hex))
  }
  return acc
}

/** Joins chunks. */
export const concat = (parts: ReadonlyArray<Uint8Array>): Uint8Array => concatBytes(parts)

/** One thing our codec found in a stream. */
export type ActualItem =
  | { readonly kind: "connect"; readonly value: ConnectParse; readonly bytes: Uint8Array; readonly rest: Uint8Array }
  | { readonly kind: "authList"; readonly value: AuthListOrReject; readonly bytes: Uint8Array }
  | { readonly kind: "authChoice"; readonly methods: ReadonlyArray<string>; readonly bytes: Uint8Array }
  | { readonly kind: "accept"; readonly value: Accept | HandshakeReject; readonly bytes: Uint8Array }
  | { readonly kind: "frame"; readonly frame: Frame; readonly message: ServerMessage | ProtocolError | undefined }
  | { readonly kind: "error"; readonly error: ProtocolError }
  | { readonly kind: "end"; readonly error: ProtocolError | undefined }
  | { readonly kind: "incomplete"; readonly stage: string; readonly bytes: Uint8Array }

/** Our codec's view of both directions of one connection. */
export interface ActualConnection {
  readonly conn: number
  readonly clientVersion: Version | undefined
  readonly c2d: ReadonlyArray<ActualItem>
  readonly d2c: ReadonlyArray<ActualItem>
}

// Feeds the bytes after `offset` of the joined chunks, keeping the original
// chunk boundaries, into a decoder; drains it after every chunk.
const decodeFrames = (
  chunks: ReadonlyArray<Uint8Array>,
  offset: number,
  dir: "c2d" | "d2c",
  items: Array<ActualItem>,
): void => {
  const dec = new FrameDecoder(dir === "c2d" ? "toDaemon" : "toClient")
  let skip = offset
  for (const c of chunks) {
    if (skip >= c.length) {
      skip -= c.length
      continue
    }
    dec.push(c.subarray(skip))
    skip = 0
    for (;;) {
      const r = dec.next()
      if (r === undefined) break
      if (isProtocolError(r)) {
        items.push({ kind: "error", error: r })
        return
      }
      items.push({ kind: "frame", frame: r, message: dir === "d2c" ? decodeServerMessage(r) : undefined })
    }
  }
  items.push({ kind: "end", error: dec.end() })
}

const parseC2d = (c: Chunks): { items: Array<ActualItem>; version: Version | undefined } => {
  const items: Array<ActualItem> = []
  const bytes = concat(c.chunks)
  const conn = parseConnect(bytes)
  if (conn === undefined) {
    if (bytes.length > 0) items.push({ kind: "incomplete", stage: "connect", bytes })
    return { items, version: undefined }
  }
  if (isProtocolError(conn)) {
    items.push({ kind: "error", error: conn })
    return { items, version: undefined }
  }
  let o = conn.consumed
  items.push({ kind: "connect", value: conn.value, bytes: bytes.subarray(0, o), rest: bytes.subarray(o) })
  if (conn.value._tag === "TooOld") return { items, version: conn.value.version }
  if (conn.value._tag === "IllegalNameLength") return { items, version: undefined }
  const version = conn.value.message.version
  if (usesAuthExchange(version)) {
    if (o === bytes.length) return { items, version }
    const a = parseAuthChoice(bytes.subarray(o))
    if (a === undefined) {
      items.push({ kind: "incomplete", stage: "authChoice", bytes: bytes.subarray(o) })
      return { items, version }
    }
    if (isProtocolError(a)) {
      items.push({ kind: "error", error: a })
      return { items, version }
    }
    items.push({ kind: "authChoice", methods: a.value, bytes: bytes.subarray(o, o + a.consumed) })
    o += a.consumed
  }
  decodeFrames(c.chunks, o, "c2d", items)
  return { items, version }
}

const parseD2c = (c: Chunks, version: Version | undefined): Array<ActualItem> => {
  const items: Array<ActualItem> = []
  const bytes = concat(c.chunks)
  if (bytes.length === 0) return items
  if (version === undefined) {
    // Only a reject can answer a connect we could not read: it sits where the
    // auth list would.
    const r = parseAuthList(bytes)
    if (r !== undefined && !isProtocolError(r)) {
      items.push({ kind: "authList", value: r.value, bytes: bytes.subarray(0, r.consumed) })
    } else {
      items.push({ kind: "incomplete", stage: "authList", bytes })
    }
    return items
  }
  let o = 0
  if (usesAuthExchange(version)) {
    const r = parseAuthList(bytes)
    if (r === undefined || isProtocolError(r)) {
      items.push(r === undefined ? { kind: "incomplete", stage: "authList", bytes } : { kind: "error", error: r })
      return items
    }
    items.push({ kind: "authList", value: r.value, bytes: bytes.subarray(0, r.consumed) })
    o = r.consumed
    if (r.value._tag === "Reject") return items
  }
  if (o === bytes.length) return items
  const a = parseAccept(bytes.subarray(o), version)
  if (a === undefined || isProtocolError(a)) {
    items.push(
      a === undefined ? { kind: "incomplete", stage: "accept", bytes: bytes.subarray(o) } : { kind: "error", error: a },
    )
    return items
  }
  items.push({ kind: "accept", value: a.value, bytes: bytes.subarray(o, o + a.consumed) })
  o += a.consumed
  if (a.value._tag === "Reject") return items
  decodeFrames(c.chunks, o, "d2c", items)
  return items
}

/** Runs the codec over every connection of a trace. */
export const decodeTrace = (name: string): Array<ActualConnection> => {
  const chunks = traceChunks(name)
  const conns = new Set<number>()
  for (const key of chunks.keys()) conns.add(Number(key.split("/")[0]))
  const empty: Chunks = { chunks: [], cut: false, firstTruncated: undefined }
  return [...conns].sort((a, b) => a - b).map((conn) => {
    const c2d = parseC2d(chunks.get(streamKey(conn, "c2d")) ?? empty)
    const d2c = parseD2c(chunks.get(streamKey(conn, "d2c")) ?? empty, c2d.version)
    return { conn, clientVersion: c2d.version, c2d: c2d.items, d2c }
  })
}

// ---------------------------------------------------------------------------
// Normalization

/** A plain record both sides are reduced to. */
export type Norm = Record<string, unknown>

const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("")

const printedVersion = (v: { major: number; minor: number; patch: number | undefined }): Norm => ({
  major: v.major,
  minor: v.minor,
  patch: v.patch,
})

const SERVICES: Record<string, string> = {
  UNRELIABLE: "Unreliable",
  RELIABLE: "Reliable",
  FIFO: "Fifo",
  CAUSAL: "Causal",
  AGREED: "Agreed",
  SAFE: "Safe",
}

const CAUSES: Record<string, string> = {
  CAUSED_BY_JOIN: "Join",
  CAUSED_BY_LEAVE: "Leave",
  CAUSED_BY_DISCONNECT: "Disconnect",
  CAUSED_BY_NETWORK: "Network",
}

const MARKER_MASK = 0x7fffff7f

const dataNorm = (bytes: Uint8Array, printed: PrintedData): Norm =>
  printed.kind === "text"
    ? { text: hex(bytes) }
    : { length: bytes.length, first: hex(bytes.subarray(0, printed.first.length)) }

const printedDataNorm = (d: PrintedData): Norm =>
  d.kind === "text" ? { text: hex(d.bytes) } : { length: d.length, first: hex(d.first) }

// What decodeServerMessage should make of a printed daemon-to-client MSG.
const printedClassification = (p: PrintedMsg): Norm => {
  const names = p.typeNames
  const groups = p.groups.map((g) => g.name)
  if (names.includes("REJECT_MESS")) {
    return {
      tag: "Reject",
      oldType: ((p.oldType ?? -1) & MARKER_MASK) >>> 0,
      sender: p.nameField,
      groups,
      messType: p.messType,
    }
  }
  const service = names.find((n) => n in SERVICES)
  if (service !== undefined) {
    return {
      tag: "Regular",
      sender: p.nameField,
      groups,
      service: SERVICES[service],
      type: (p.type & MARKER_MASK) >>> 0,
      messType: p.messType,
      endianMismatch: !p.hintLittleEndian,
    }
  }
  const cause = names.find((n) => n in CAUSES)
  if (names.includes("REG_MEMB_MESS") && cause !== undefined) {
    const local = p.vsSets.findIndex((s) => s.offset === p.localVsSetOffset)
    return {
      tag: "Membership",
      group: p.nameField,
      cause: CAUSES[cause],
      groupId: p.groupId,
      members: groups,
      vsSets: p.vsSets.map((s) => s.members),
      localVsSet: local,
      changed: cause === "CAUSED_BY_NETWORK" ? undefined : p.vsSets[0]?.members[0],
    }
  }
  if (names.includes("TRANSITION_MESS")) return { tag: "Transitional", group: p.nameField, groupId: p.groupId }
  if (names.length === 1 && names[0] === "CAUSED_BY_LEAVE") return { tag: "SelfLeave", group: p.nameField }
  return { tag: "Unknown", names }
}

const actualClassification = (m: ServerMessage | ProtocolError): Norm => {
  if (isProtocolError(m)) return { tag: "Error", reason: m.reason, field: m.field }
  switch (m._tag) {
    case "Reject":
      return { tag: "Reject", oldType: m.oldType, sender: m.sender, groups: [...m.groups], messType: m.messType }
    case "Regular":
      return {
        tag: "Regular",
        sender: m.sender,
        groups: [...m.groups],
        service: m.service,
        type: m.type,
        messType: m.messType,
        endianMismatch: m.endianMismatch,
      }
    case "Membership":
      return {
        tag: "Membership",
        group: m.group,
        cause: m.cause,
        groupId: m.groupId,
        members: [...m.members],
        vsSets: m.vsSets.map((s) => [...s]),
        localVsSet: m.localVsSet,
        changed: m.changed,
      }
    case "Transitional":
      return { tag: "Transitional", group: m.group, groupId: m.groupId }
    case "SelfLeave":
      return { tag: "SelfLeave", group: m.group }
  }
}

// Whether a 32-byte name entry has non-zero bytes after its first NUL.
const hasGarbage = (b: Uint8Array, o: number): boolean => {
  const end = o + 32
  let i = o
  while (i < end && b[i] !== 0) i++
  for (; i < end; i++) if (b[i] !== 0) return true
  return false
}

/** Normalizes a printed MSG. */
export const normPrintedMsg = (p: PrintedMsg, dir: "c2d" | "d2c"): Norm => {
  const out: Norm = {
    kind: "msg",
    type: (p.type & MARKER_MASK) >>> 0,
    littleEndian: p.littleEndian,
    sender: p.nameField,
    numGroups: p.numGroups,
    hint: p.hint,
    hintBytes: p.hintBytes,
    messType: p.messType,
    hintLittleEndian: p.hintLittleEndian,
    dataLen: p.dataLen,
    groups: p.groups.map((g) => g.name),
    garbage: p.groups.map((g) => g.garbage),
  }
  if (p.oldType !== undefined) out.oldType = (p.oldType & MARKER_MASK) >>> 0
  if (p.data !== undefined) out.data = printedDataNorm(p.data)
  if (dir === "d2c") out.message = printedClassification(p)
  return out
}

/** Normalizes one of our frames the way `printed` shows it. */
export const normFrame = (f: Frame, message: ServerMessage | ProtocolError | undefined, p: PrintedMsg): Norm => {
  const out: Norm = {
    kind: "msg",
    type: f.type,
    littleEndian: f.littleEndian,
    sender: f.sender,
    numGroups: f.numGroups,
    hint: f.hint,
    hintBytes: hex(f.bytes.subarray(40, 44)),
    messType: f.messType,
    hintLittleEndian: f.hintLittleEndian,
    dataLen: f.dataLen,
    groups: [...f.groups],
    garbage: f.groups.map((_, i) => hasGarbage(f.bytes, f.groupsOffset + 32 * i)),
  }
  if (f.groupsOffset > 48) out.oldType = f.oldType
  if (p.data !== undefined) out.data = dataNorm(f.data, p.data)
  if (message !== undefined) out.message = actualClassification(message)
  return out
}

/** An expected codec error in place of a printed item. */
export interface ExpectedError {
  /** Index of the printed item (msg, malformed or undecoded) the error replaces. */
  readonly index: number
  readonly reason: ProtocolError["reason"]
  readonly field: string
  readonly value: string | number
}

/** Normalizes a printed (non-MSG) item. */
export const normPrintedItem = (p: PrintedItem, dir: "c2d" | "d2c"): Norm | undefined => {
  switch (p.kind) {
    case "connect": {
      const v = { major: p.version.major, minor: p.version.minor, patch: p.version.patch ?? 0 }
      if (isVersionTooOld(v)) return { kind: "connect", tooOld: printedVersion(p.version) }
      if (p.nameLen < 0 || p.nameLen > MAX_PRIVATE_NAME) {
        return { kind: "connect", illegalNameLength: p.nameLen, rest: p.name }
      }
      return {
        kind: "connect",
        version: printedVersion(p.version),
        membership: p.membership,
        priority: p.priority,
        nameLen: p.nameLen,
        name: p.name,
      }
    }
    case "authList":
      return { kind: "authList", len: p.len, methods: p.text.split(" ").filter((m) => m.length > 0) }
    case "authChoice": {
      const end = p.slots.indexOf("")
      return { kind: "authChoice", methods: end < 0 ? [...p.slots] : p.slots.slice(0, end) }
    }
    case "accept":
      return { kind: "accept", version: printedVersion(p.version), privateGroup: p.privateGroup }
    case "reject":
      return { kind: "reject", code: p.code, reason: p.name }
    case "msg":
      return normPrintedMsg(p, dir)
    case "undecoded":
      return { kind: "truncated", bytes: p.length }
    case "malformed":
    case "trailing":
    case "truncatedChunk":
      return { kind: p.kind }
  }
}

const rejectNorm = (r: HandshakeReject): Norm => ({ kind: "reject", code: r.code, reason: r.reason })

/**
 * Normalizes our items against the printed ones (data is shown the way the
 * transcript shows it). `end` without error is dropped; a Truncated end
 * becomes `{ kind: "truncated", bytes }`.
 */
export const normActualItems = (
  items: ReadonlyArray<ActualItem>,
  printed: ReadonlyArray<PrintedItem>,
  clientVersion: Version | undefined,
): Array<Norm> => {
  const out: Array<Norm> = []
  items.forEach((a, i) => {
    switch (a.kind) {
      case "connect": {
        const v = a.value
        if (v._tag === "TooOld") {
          out.push({
            kind: "connect",
            tooOld: {
              major: v.version.major,
              minor: v.version.minor,
              patch: hasPatchByte(v.version) ? v.version.patch : undefined,
            },
          })
        } else if (v._tag === "IllegalNameLength") {
          out.push({
            kind: "connect",
            illegalNameLength: v.length,
            rest: String.fromCharCode(...a.rest),
          })
        } else {
          const m = v.message
          out.push({
            kind: "connect",
            version: {
              major: m.version.major,
              minor: m.version.minor,
              patch: hasPatchByte(m.version) ? m.version.patch : undefined,
            },
            membership: m.membership,
            priority: m.priority,
            nameLen: m.name.length,
            name: m.name,
          })
        }
        break
      }
      case "authList":
        out.push(
          a.value._tag === "Reject"
            ? rejectNorm(a.value)
            : { kind: "authList", len: a.bytes.length - 1, methods: [...a.value.methods] },
        )
        break
      case "authChoice":
        out.push({ kind: "authChoice", methods: [...a.methods] })
        break
      case "accept":
        if (a.value._tag === "Reject") {
          out.push(rejectNorm(a.value))
        } else {
          const v = a.value.version
          out.push({
            kind: "accept",
            version: {
              major: v.major,
              minor: v.minor,
              patch: clientVersion !== undefined && hasPatchByte(clientVersion) ? v.patch : undefined,
            },
            privateGroup: a.value.privateGroup,
          })
        }
        break
      case "frame": {
        const p = printed[i]
        if (p === undefined || p.kind !== "msg") {
          out.push({ kind: "unexpected frame", type: a.frame.type, dataLen: a.frame.dataLen })
        } else {
          out.push(normFrame(a.frame, a.message, p))
        }
        break
      }
      case "error":
        out.push({ kind: "error", reason: a.error.reason, field: a.error.field, value: a.error.value })
        break
      case "end":
        if (a.error !== undefined) {
          out.push(
            a.error.reason === "Truncated"
              ? { kind: "truncated", bytes: a.error.value }
              : { kind: "end error", reason: a.error.reason },
          )
        }
        break
      case "incomplete":
        out.push({ kind: "incomplete", stage: a.stage, bytes: a.bytes.length })
        break
    }
  })
  return out
}

/**
 * Normalizes the printed items of a stream: the item at an expected error's
 * index becomes that error, and the transcript's own follow-up lines after it
 * (TRAILING, undecoded bytes) are dropped.
 */
export const normPrintedItems = (
  printed: ReadonlyArray<PrintedItem>,
  dir: "c2d" | "d2c",
  expectedError: ExpectedError | undefined,
): Array<Norm> => {
  const out: Array<Norm> = []
  for (let i = 0; i < printed.length; i++) {
    if (expectedError !== undefined && i === expectedError.index) {
      out.push({ kind: "error", reason: expectedError.reason, field: expectedError.field, value: expectedError.value })
      for (let j = i + 1; j < printed.length; j++) {
        const k = printed[j].kind
        if (k !== "trailing" && k !== "undecoded") out.push({ kind: "after error", printed: k })
      }
      break
    }
    const n = normPrintedItem(printed[i], dir)
    if (n !== undefined) out.push(n)
  }
  return out
}

/** The transcript of a trace, keyed by {@link streamKey}. */
export const printedTrace = (name: string): Map<string, Array<PrintedItem>> => readDecoded(name)

/** Whether `u` is a decoded frame. */
export const isFrame = (u: unknown): u is Frame => u instanceof Frame

/** Whether `u` is a codec error. */
export const isError = (u: unknown): u is ProtocolError => u instanceof ProtocolError

/**
 * Which per-run fields to ignore when comparing with another run (README,
 * "What varies between runs"): `group_id.time` always changes between daemon
 * starts; `proc_id` depends on the daemon's configuration.
 */
export interface Wildcards {
  readonly groupIdTime?: boolean
  readonly procId?: boolean
}

/** Replaces the wildcarded group-id fields of normalized items by "*". */
export const wildcard = (items: ReadonlyArray<Norm>, w: Wildcards): Array<Norm> => {
  const walk = (u: unknown): unknown => {
    if (Array.isArray(u)) return u.map(walk)
    if (u === null || typeof u !== "object") return u
    const out: Norm = {}
    for (const [k, v] of Object.entries(u)) {
      if (k === "groupId" && v !== null && typeof v === "object") {
        const g = { ...(v as Norm) }
        if (w.groupIdTime) g.time = "*"
        if (w.procId) g.procId = "*"
        out[k] = g
      } else {
        out[k] = walk(v)
      }
    }
    return out
  }
  return items.map((i) => walk(i) as Norm)
}
