/**
 * Loads the real Spread byte traces in tests/fixtures/spread-traces and joins
 * each (connection, direction) stream.
 */
import { concatBytes } from "../../src/protocol/bytes.ts"

export const TRACES_DIR = new URL("../fixtures/spread-traces/", import.meta.url)

/** One record of a `.jsonl` trace. */
export interface TraceRecord {
  readonly t: number
  readonly conn: number
  readonly dir: "c2d" | "d2c"
  readonly hex: string
  readonly ev?: string
  readonly truncated?: boolean
}

/** A joined stream of one connection and direction. */
export interface TraceStream {
  readonly conn: number
  readonly dir: "c2d" | "d2c"
  readonly bytes: Uint8Array
  /** Some chunk was truncated in the log (trace 21 only). */
  readonly truncated: boolean
  /** Events in order (open, eof, error:...). */
  readonly events: ReadonlyArray<string>
}

/** Hex to bytes. */
export const fromHex = (hex: string): Uint8Array => {
  const out = new Uint8Array(hex.length / 2)
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16)
  return out
}

/** Names of the scenarios, e.g. "06-join-leave-membership". */
export const traceNames = (): Array<string> =>
  [...Deno.readDirSync(TRACES_DIR)]
    .map((e) => e.name)
    .filter((n) => n.endsWith(".jsonl"))
    .map((n) => n.slice(0, -".jsonl".length))
    .sort()

/** Reads the records of one scenario. */
export const readTrace = (name: string): Array<TraceRecord> =>
  Deno.readTextFileSync(new URL(`${name}.jsonl`, TRACES_DIR))
    .split("\n")
    .filter((l) => l.trim().length > 0)
    .map((l) => JSON.parse(l) as TraceRecord)

/** Joins the chunks of each (conn, dir) stream, in record order. */
export const traceStreams = (name: string): Array<TraceStream> => {
  const map = new Map<
    string,
    { conn: number; dir: "c2d" | "d2c"; parts: Array<Uint8Array>; truncated: boolean; events: Array<string> }
  >()
  for (const r of readTrace(name)) {
    const key = `${r.conn}/${r.dir}`
    let s = map.get(key)
    if (s === undefined) {
      s = { conn: r.conn, dir: r.dir, parts: [], truncated: false, events: [] }
      map.set(key, s)
    }
    if (r.ev !== undefined) s.events.push(r.ev)
    if (r.truncated) s.truncated = true
    if (r.hex.length > 0) s.parts.push(fromHex(r.hex))
  }
  return [...map.values()].map((s) => ({
    conn: s.conn,
    dir: s.dir,
    bytes: concatBytes(s.parts),
    truncated: s.truncated,
    events: s.events,
  })).sort((a, b) => a.conn - b.conn || a.dir.localeCompare(b.dir))
}
