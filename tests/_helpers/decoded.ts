/**
 * Parses the `.decoded.txt` transcripts of tests/fixtures/spread-traces (written by
 * an independent decoder) into per-(connection, direction) item lists, so
 * tests can compare them field by field with what our codec produces.
 */
import { TRACES_DIR } from "./traces.ts"

/** A version as printed: `5.0.1` or `3.14` (no patch byte on the wire). */
export interface PrintedVersion {
  readonly major: number
  readonly minor: number
  readonly patch: number | undefined
}

/** Data as printed: the whole text, or the length and the first 16 bytes. */
export type PrintedData =
  | { readonly kind: "text"; readonly bytes: Uint8Array }
  | { readonly kind: "prefix"; readonly length: number; readonly first: Uint8Array }

/** One vs set line of a membership message. */
export interface PrintedVsSet {
  readonly index: number
  readonly offset: number
  readonly count: number
  readonly members: ReadonlyArray<string>
}

/** One group entry; `garbage` when the transcript flags bytes after the NUL. */
export interface PrintedGroup {
  readonly name: string
  readonly garbage: boolean
}

/** A `MSG` line with its continuation lines. */
export interface PrintedMsg {
  readonly kind: "msg"
  /** `type` as printed, marker bits included. */
  readonly type: number
  /** The names in parentheses after the type, e.g. ["AGREED", "SELF_DISCARD"]; [] for "(0)". */
  readonly typeNames: ReadonlyArray<string>
  readonly littleEndian: boolean
  readonly nameField: string
  readonly numGroups: number
  /** The hint value read in its own byte order. */
  readonly hint: number
  /** The four hint bytes as on the wire, in hex. */
  readonly hintBytes: string
  readonly messType: number
  readonly hintLittleEndian: boolean
  readonly dataLen: number
  readonly groups: Array<PrintedGroup>
  oldType?: number
  groupId?: { readonly procId: number; readonly time: number; readonly index: number }
  numVsSets?: number
  localVsSetOffset?: number
  readonly vsSets: Array<PrintedVsSet>
  data?: PrintedData
}

/** Any item of a transcript stream, in stream order. */
export type PrintedItem =
  | {
    readonly kind: "connect"
    readonly version: PrintedVersion
    readonly flags: number
    readonly membership: boolean
    readonly priority: number
    readonly nameLen: number
    readonly name: string
  }
  | { readonly kind: "authList"; readonly len: number; readonly text: string }
  | { readonly kind: "authChoice"; readonly slots: ReadonlyArray<string> }
  | { readonly kind: "accept"; readonly version: PrintedVersion; readonly privateGroup: string }
  | { readonly kind: "reject"; readonly code: number; readonly name: string }
  | PrintedMsg
  | {
    readonly kind: "malformed"
    readonly type: number
    readonly nameField: string
    readonly numGroups: number
    readonly hintBytes: string
    readonly dataLen: number
  }
  | { readonly kind: "trailing"; readonly length: number; readonly hex: string }
  | { readonly kind: "truncatedChunk"; readonly length: number }
  | { readonly kind: "undecoded"; readonly length: number; readonly hexPrefix: string }

/** Key of a stream: `"<conn>/<dir>"`. */
export const streamKey = (conn: number, dir: "c2d" | "d2c"): string => `${conn}/${dir}`

/**
 * Decodes a Python repr string body (without the quotes) to bytes, one byte
 * per character: `\n`, `\r`, `\t`, `\\`, `\'`, `\"` and `\xNN`.
 */
export const unrepr = (s: string): Uint8Array => {
  const out: Array<number> = []
  for (let i = 0; i < s.length; i++) {
    const c = s[i]
    if (c !== "\\") {
      out.push(s.charCodeAt(i) & 0xff)
      continue
    }
    const e = s[++i]
    switch (e) {
      case "n":
        out.push(10)
        break
      case "r":
        out.push(13)
        break
      case "t":
        out.push(9)
        break
      case "x":
        out.push(parseInt(s.slice(i + 1, i + 3), 16))
        i += 2
        break
      default:
        out.push(e.charCodeAt(0) & 0xff)
    }
  }
  return Uint8Array.from(out)
}

const latin1 = (b: Uint8Array): string => String.fromCharCode(...b)

const quoted = (s: string): string => latin1(unrepr(s))

const hexBytes = (hex: string): Uint8Array => {
  const out = new Uint8Array(hex.length / 2)
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16)
  return out
}

const parseVersion = (s: string): PrintedVersion => {
  const [major, minor, patch] = s.split(".").map(Number)
  return { major, minor, patch }
}

const parseList = (s: string): Array<string> =>
  s.trim().length === 0 ? [] : [...s.matchAll(/'((?:[^'\\]|\\.)*)'/g)].map((m) => quoted(m[1]))

const EVENT = /^\s*[\d.]+ conn(\d+) (c2d|d2c) {2}(.*)$/
const UNDECODED = /^\s+\(conn(\d+) (c2d|d2c): (\d+) undecoded trailing bytes: ([0-9a-f]+)\.*\)$/

const RE = {
  connect: /^CONNECT lib=([\d.]+) flags=0x([0-9a-f]+) \(membership=(\d) priority=(\d+)\) name_len=(-?\d+) name='(.*)'$/,
  authList: /^AUTH_LIST len=(\d+) '(.*)'$/,
  authChoice: /^AUTH_CHOICE 90 bytes, slots=\[(.*)\]$/,
  accept: /^ACCEPT daemon=([\d.]+) private_group='(.*)'$/,
  reject: /^REJECT byte (-?\d+) \((\w+)\)$/,
  msg:
    /^MSG (c2d|d2c) type=0x([0-9a-f]+) \(([^)]*)\) endian=(LE|BE) name_field='(.*)' num_groups=(-?\d+) hint=0x([0-9a-f]+)\(bytes ([0-9a-f]{8}), mess_type=(-?\d+), hint-endian=(LE|BE)\) data_len=(-?\d+)$/,
  malformed:
    /^MSG (c2d|d2c) MALFORMED header type=0x([0-9a-f]+) name_field='(.*)' num_groups=(-?\d+) hint bytes=([0-9a-f]{8}) data_len=(-?\d+) \(decoder stops parsing this stream\)$/,
  trailing: /^TRAILING (\d+) bytes ([0-9a-f]*)$/,
  truncated: /^\[(\d+) bytes, truncated in log; decoding stops for this stream\]$/,
  group: /^ {4}group\[(\d+)\]='(.*)'$/,
  oldType: /^ {4}reject old_type=0x([0-9a-f]+) \(.*\)$/,
  groupId: /^ {4}group_id = \{proc_id=(-?\d+), time=(-?\d+), index=(-?\d+)\}$/,
  vsHead: /^ {4}num_vs_sets=(\d+) local_vs_set_offset=(\d+)$/,
  vsSet: /^ {4}vs_set\[(\d+)\] \(at vs-region offset (\d+)\) count=(\d+) members=\[(.*)\]$/,
  dataText: /^ {4}data='(.*)'$/,
  dataPrefix: /^ {4}data (\d+) bytes, first \d+: ([0-9a-f]*)$/,
} as const

const GARBAGE = " (+nonzero bytes after NUL)"

const parseEventBody = (body: string): PrintedItem | undefined => {
  let m = RE.connect.exec(body)
  if (m !== null) {
    return {
      kind: "connect",
      version: parseVersion(m[1]),
      flags: parseInt(m[2], 16),
      membership: m[3] === "1",
      priority: Number(m[4]),
      nameLen: Number(m[5]),
      name: quoted(m[6]),
    }
  }
  m = RE.authList.exec(body)
  if (m !== null) return { kind: "authList", len: Number(m[1]), text: quoted(m[2]) }
  m = RE.authChoice.exec(body)
  if (m !== null) return { kind: "authChoice", slots: parseList(m[1]) }
  m = RE.accept.exec(body)
  if (m !== null) return { kind: "accept", version: parseVersion(m[1]), privateGroup: quoted(m[2]) }
  m = RE.reject.exec(body)
  if (m !== null) return { kind: "reject", code: Number(m[1]), name: m[2] }
  m = RE.msg.exec(body)
  if (m !== null) {
    return {
      kind: "msg",
      type: parseInt(m[2], 16) >>> 0,
      typeNames: m[3] === "0" ? [] : m[3].split("|"),
      littleEndian: m[4] === "LE",
      nameField: quoted(m[5]),
      numGroups: Number(m[6]),
      hint: parseInt(m[7], 16) >>> 0,
      hintBytes: m[8],
      messType: Number(m[9]),
      hintLittleEndian: m[10] === "LE",
      dataLen: Number(m[11]),
      groups: [],
      vsSets: [],
    }
  }
  m = RE.malformed.exec(body)
  if (m !== null) {
    return {
      kind: "malformed",
      type: parseInt(m[2], 16) >>> 0,
      nameField: quoted(m[3]),
      numGroups: Number(m[4]),
      hintBytes: m[5],
      dataLen: Number(m[6]),
    }
  }
  m = RE.trailing.exec(body)
  if (m !== null) return { kind: "trailing", length: Number(m[1]), hex: m[2] }
  m = RE.truncated.exec(body)
  if (m !== null) return { kind: "truncatedChunk", length: Number(m[1]) }
  return undefined
}

// Adds a continuation line to a MSG; false when the line is not one.
const addContinuation = (msg: PrintedMsg, line: string): boolean => {
  let m = RE.group.exec(line)
  if (m !== null) {
    const raw = quoted(m[2])
    const garbage = raw.endsWith(GARBAGE)
    if (Number(m[1]) !== msg.groups.length) return false
    msg.groups.push({ name: garbage ? raw.slice(0, -GARBAGE.length) : raw, garbage })
    return true
  }
  m = RE.oldType.exec(line)
  if (m !== null) {
    msg.oldType = parseInt(m[1], 16) >>> 0
    return true
  }
  m = RE.groupId.exec(line)
  if (m !== null) {
    msg.groupId = { procId: Number(m[1]), time: Number(m[2]), index: Number(m[3]) }
    return true
  }
  m = RE.vsHead.exec(line)
  if (m !== null) {
    msg.numVsSets = Number(m[1])
    msg.localVsSetOffset = Number(m[2])
    return true
  }
  m = RE.vsSet.exec(line)
  if (m !== null) {
    msg.vsSets.push({ index: Number(m[1]), offset: Number(m[2]), count: Number(m[3]), members: parseList(m[4]) })
    return true
  }
  m = RE.dataText.exec(line)
  if (m !== null) {
    msg.data = { kind: "text", bytes: unrepr(m[1]) }
    return true
  }
  m = RE.dataPrefix.exec(line)
  if (m !== null) {
    msg.data = { kind: "prefix", length: Number(m[1]), first: hexBytes(m[2]) }
    return true
  }
  return false
}

/**
 * Reads `<name>.decoded.txt` into items per stream key. Throws on any line it
 * does not understand, so a format change cannot silently drop assertions.
 */
export const readDecoded = (name: string): Map<string, Array<PrintedItem>> => {
  const text = Deno.readTextFileSync(new URL(`${name}.decoded.txt`, TRACES_DIR))
  const out = new Map<string, Array<PrintedItem>>()
  const push = (key: string, item: PrintedItem): void => {
    let list = out.get(key)
    if (list === undefined) out.set(key, list = [])
    list.push(item)
  }
  let current: PrintedMsg | undefined
  const lines = text.split("\n")
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n]
    if (line.trim().length === 0) continue
    const fail = (): never => {
      throw new Error(`${name}.decoded.txt:${n + 1}: cannot parse: ${line}`)
    }
    const ev = EVENT.exec(line)
    if (ev !== null) {
      current = undefined
      const key = streamKey(Number(ev[1]), ev[2] as "c2d" | "d2c")
      const body = ev[3]
      if (body.startsWith("<")) continue
      const item = parseEventBody(body) ?? fail()
      if (item.kind === "msg") current = item
      push(key, item)
      continue
    }
    const und = UNDECODED.exec(line)
    if (und !== null) {
      current = undefined
      push(streamKey(Number(und[1]), und[2] as "c2d" | "d2c"), {
        kind: "undecoded",
        length: Number(und[3]),
        hexPrefix: und[4],
      })
      continue
    }
    if (current === undefined) fail()
    if (!addContinuation(current as PrintedMsg, line)) fail()
  }
  return out
}
