/**
 * Fixtures of the client tests: an embedded daemon on a free port, a log
 * recorder, and a scriptable fake daemon (plain `Deno.listen`) that can send
 * any byte — reject codes, split replies, cut frames — or stop reading.
 */
import { Effect, type Scope } from "effect"
import {
  encodeAccept,
  encodeAuthList,
  FrameDecoder,
  isProtocolError,
  parseAuthChoice,
  parseConnect,
  ServiceBits,
  SPREAD_VERSION,
} from "../../src/protocol/mod.ts"
import { concatBytes } from "../../src/protocol/bytes.ts"

export { captureLogs, type LogLine, quiet, sleep, startDaemon, warnings } from "../_helpers/fixtures.ts"

// ---------------------------------------------------------------------------
// The fake daemon

/** One accepted connection of the fake daemon, with promise-based helpers. */
export class FakeConn {
  readonly conn: Deno.Conn
  #buf = new Uint8Array(0)
  #closed = false

  constructor(conn: Deno.Conn) {
    this.conn = conn
  }

  /** The next chunk as the OS delivers it (buffered bytes first); undefined at EOF or error. */
  async read(): Promise<Uint8Array | undefined> {
    if (this.#buf.length > 0) {
      const b = this.#buf
      this.#buf = new Uint8Array(0)
      return b
    }
    const buf = new Uint8Array(256 * 1024)
    try {
      const n = await this.conn.read(buf)
      return n === null ? undefined : buf.slice(0, n)
    } catch {
      return undefined
    }
  }

  /** Exactly `n` bytes, or undefined when the stream ends first. */
  async readExactly(n: number): Promise<Uint8Array | undefined> {
    while (this.#buf.length < n) {
      const buf = new Uint8Array(256 * 1024)
      let k: number | null
      try {
        k = await this.conn.read(buf)
      } catch {
        return undefined
      }
      if (k === null) return undefined
      const joined = new Uint8Array(this.#buf.length + k)
      joined.set(this.#buf)
      joined.set(buf.subarray(0, k), this.#buf.length)
      this.#buf = joined
    }
    const out = this.#buf.slice(0, n)
    this.#buf = this.#buf.slice(n)
    return out
  }

  /** Reads until EOF; answers everything read. */
  async readToEnd(): Promise<Uint8Array> {
    const parts: Array<Uint8Array> = []
    for (;;) {
      const c = await this.read()
      if (c === undefined) break
      parts.push(c)
    }
    return concatBytes(parts)
  }

  /** Writes all of `bytes`; errors are ignored (the client may be gone). */
  async write(bytes: Uint8Array): Promise<void> {
    try {
      let off = 0
      while (off < bytes.length) off += await this.conn.write(bytes.subarray(off))
    } catch {
      // the client closed
    }
  }

  close(): void {
    if (this.#closed) return
    this.#closed = true
    try {
      this.conn.close()
    } catch {
      // already closed
    }
  }
}

/** What the fake daemon saw of a handshake it accepted. */
export interface AcceptedHandshake {
  readonly name: string
  readonly privateGroup: string
  /** The first chunk read: the whole connect message when the client wrote it at once. */
  readonly connectChunk: Uint8Array
  /** The first chunk read after the auth list: the whole 90-byte auth choice when written at once. */
  readonly authChunk: Uint8Array
}

/**
 * Plays the daemon's side of a successful handshake. `split` writes the
 * accept one byte at a time with a pause between bytes.
 */
export const acceptHandshake = async (
  c: FakeConn,
  options: { readonly methods?: ReadonlyArray<string>; readonly split?: boolean; readonly daemonName?: string } = {},
): Promise<AcceptedHandshake | undefined> => {
  const connectChunk = await c.read()
  if (connectChunk === undefined) return undefined
  const parsed = parseConnect(connectChunk)
  if (parsed === undefined || isProtocolError(parsed) || parsed.value._tag !== "Connect") return undefined
  const name = parsed.value.message.name.length > 0 ? parsed.value.message.name : "gen1"
  await c.write(encodeAuthList(options.methods ?? ["NULL"]))
  const authChunk = await c.read()
  if (authChunk === undefined) return undefined
  const privateGroup = `#${name}#${options.daemonName ?? "localhost"}`
  const accept = encodeAccept(SPREAD_VERSION, privateGroup, SPREAD_VERSION)
  if (options.split) {
    for (const b of accept) {
      await c.write(Uint8Array.of(b))
      await new Promise((r) => setTimeout(r, 2))
    }
  } else {
    await c.write(accept)
  }
  return { name, privateGroup, connectChunk, authChunk }
}

/**
 * Reads client frames as a daemon does until the disconnect (KILL) or EOF,
 * then closes like a daemon; answers every byte read.
 */
export const serveUntilKill = async (c: FakeConn): Promise<Uint8Array> => {
  const decoder = new FrameDecoder("toDaemon")
  const parts: Array<Uint8Array> = []
  for (;;) {
    const chunk = await c.read()
    if (chunk === undefined) break
    parts.push(chunk)
    decoder.push(chunk)
    let killed = false
    for (let f = decoder.next(); f !== undefined && !isProtocolError(f); f = decoder.next()) {
      if (f.type === ServiceBits.KILL_MESS) killed = true
    }
    if (killed) break
  }
  c.close()
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let o = 0
  for (const p of parts) {
    out.set(p, o)
    o += p.length
  }
  return out
}

/** Checks a parsed auth choice (for assertions). */
export const authMethodsOf = (chunk: Uint8Array): ReadonlyArray<string> | undefined => {
  const r = parseAuthChoice(chunk)
  return r === undefined || isProtocolError(r) ? undefined : r.value
}

/** A running fake daemon. */
export interface FakeDaemon {
  readonly port: number
  readonly spreadName: string
  /** Connections accepted so far. */
  readonly accepted: () => number
}

/**
 * A fake daemon on 127.0.0.1 and a free port that runs `script` for every
 * connection. The scope closes the listener and every connection.
 */
export const fakeDaemon = (script: (c: FakeConn) => Promise<void>): Effect.Effect<FakeDaemon, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 })
      const conns = new Set<FakeConn>()
      const running = new Set<Promise<void>>()
      let accepted = 0
      const loop = (async () => {
        for (;;) {
          let conn: Deno.Conn
          try {
            conn = await listener.accept()
          } catch {
            return
          }
          accepted++
          const c = new FakeConn(conn)
          conns.add(c)
          const p = script(c).catch(() => {}).finally(() => {
            running.delete(p)
          })
          running.add(p)
        }
      })()
      return { listener, conns, running, loop, accepted: () => accepted }
    }),
    (s) =>
      Effect.promise(async () => {
        try {
          s.listener.close()
        } catch {
          // closed
        }
        for (const c of s.conns) c.close()
        await s.loop
        await Promise.race([Promise.all([...s.running]), new Promise((r) => setTimeout(r, 1000))])
      }),
  ).pipe(Effect.map((s) => {
    const port = (s.listener.addr as Deno.NetAddr).port
    return { port, spreadName: `${port}@127.0.0.1`, accepted: s.accepted }
  }))
