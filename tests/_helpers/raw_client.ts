/**
 * A raw-protocol test client: speaks the Spread wire protocol byte by byte
 * (built on the pure codec only), so daemon tests can send exactly what they
 * mean — including what no real library would — and see exactly what comes
 * back.
 *
 * Reads are pull-based and never lose data: a read abandoned by a timeout
 * stays pending and its bytes are used by the next call.
 */
import { Effect, type Scope } from "effect"
import {
  encodeAuthChoice,
  encodeCommand,
  encodeConnect,
  encodeMulticast,
  type Frame,
  FrameDecoder,
  hasPatchByte,
  isProtocolError,
  type MulticastSpec,
  usesAuthExchange,
  type Version,
} from "../../src/protocol/mod.ts"
import type { Address } from "../../src/protocol/address.ts"
import { concatBytes } from "../../src/protocol/bytes.ts"

/** What one call to {@link RawClient.next} found. */
export type Received =
  | { readonly _tag: "Frame"; readonly frame: Frame }
  | { readonly _tag: "Eof" }
  | { readonly _tag: "Timeout" }

/** How a handshake ended. */
export type HandshakeResult =
  | { readonly _tag: "Accepted"; readonly privateGroup: string; readonly version: Version }
  | { readonly _tag: "Rejected"; readonly code: number; readonly afterAuthList: boolean }
  | { readonly _tag: "Closed" }

/** Options of {@link RawClient.handshake}. */
export interface HandshakeOptions {
  readonly name: string
  readonly membership?: boolean
  readonly version?: Version
  readonly authMethods?: ReadonlyArray<string>
}

const LIB_VERSION: Version = { major: 5, minor: 0, patch: 1 }
const READ_SIZE = 256 * 1024

/**
 * One raw connection to a daemon.
 */
export class RawClient {
  readonly #conn: Deno.Conn
  #raw: Array<Uint8Array> = []
  #rawLen = 0
  #decoder: FrameDecoder | undefined
  #pending: Promise<Uint8Array | null> | undefined
  #eof = false
  #closed = false
  /** Every byte received so far, when recording (for trace comparisons). */
  readonly #record: Array<Uint8Array> | undefined
  /** The private group once accepted. */
  privateGroup = ""

  private constructor(conn: Deno.Conn, record: boolean) {
    this.#conn = conn
    this.#record = record ? [] : undefined
  }

  /**
   * Opens a raw connection; the scope closes it. With `record`, bytes
   * received are only recorded (read them with {@link waitRecorded} and
   * {@link recorded}), not decoded.
   */
  static open(
    address: Address,
    opts: { readonly record?: boolean } = {},
  ): Effect.Effect<RawClient, never, Scope.Scope> {
    return Effect.acquireRelease(
      Effect.promise(async () => {
        const conn: Deno.Conn = address._tag === "Tcp"
          ? await Deno.connect({ hostname: address.hostname, port: address.port })
          : await Deno.connect({ transport: "unix", path: address.path })
        if (address._tag === "Tcp") (conn as Deno.TcpConn).setNoDelay(true)
        return new RawClient(conn, opts.record ?? false)
      }),
      (c) => c.close,
    )
  }

  /** Opens a connection and completes a handshake; dies unless accepted. */
  static connect(
    address: Address,
    opts: HandshakeOptions,
  ): Effect.Effect<RawClient, never, Scope.Scope> {
    return Effect.gen(function* () {
      const c = yield* RawClient.open(address)
      const r = yield* c.handshake(opts)
      if (r._tag !== "Accepted") return yield* Effect.dieMessage(`handshake of "${opts.name}": ${JSON.stringify(r)}`)
      return c
    })
  }

  /** Whether the daemon closed the stream (EOF or reset) as seen so far. */
  get eof(): boolean {
    return this.#eof
  }

  /** The bytes received so far, joined (only when opened with `record`). */
  recorded(): Uint8Array {
    const r = this.#record
    if (r === undefined || r.length === 0) return new Uint8Array(0)
    if (r.length > 1) r.splice(0, r.length, concat(r))
    return r[0]
  }

  /** Writes bytes; answers false when the peer is gone. */
  write(bytes: Uint8Array): Effect.Effect<boolean> {
    return Effect.promise(async () => {
      try {
        let off = 0
        while (off < bytes.length) off += await this.#conn.write(bytes.subarray(off))
        return true
      } catch {
        return false
      }
    })
  }

  /** Closes the socket (idempotent). */
  get close(): Effect.Effect<void> {
    return Effect.sync(() => {
      if (this.#closed) return
      this.#closed = true
      try {
        this.#conn.close()
      } catch {
        // already closed
      }
    })
  }

  /** Closes the write side only (the daemon sees EOF; we can still read). */
  get closeWrite(): Effect.Effect<void> {
    return Effect.promise(() => this.#conn.closeWrite().catch(() => undefined))
  }

  // Waits for one more chunk until `deadline`; false on timeout.
  async #fill(deadline: number): Promise<boolean> {
    if (this.#eof) return true
    if (this.#pending === undefined) {
      const buf = new Uint8Array(READ_SIZE)
      this.#pending = this.#conn.read(buf).then(
        (n) => (n === null ? null : buf.slice(0, n)),
        () => null,
      )
    }
    const wait = deadline - Date.now()
    let timer: ReturnType<typeof setTimeout> | undefined
    const timeout = new Promise<"Timeout">((resolve) => {
      timer = setTimeout(() => resolve("Timeout"), Math.max(0, wait))
    })
    const r = await Promise.race([this.#pending, timeout])
    clearTimeout(timer)
    if (r === "Timeout") return false
    this.#pending = undefined
    if (r === null) {
      this.#eof = true
      return true
    }
    if (this.#record !== undefined) this.#record.push(r)
    else if (this.#decoder !== undefined) this.#decoder.push(r)
    else {
      this.#raw.push(r)
      this.#rawLen += r.length
    }
    return true
  }

  /** Reads exactly `n` raw bytes (before {@link startFrames}). */
  readBytes(n: number, timeoutMs = 2000): Effect.Effect<Uint8Array | "Eof" | "Timeout"> {
    return Effect.promise(async () => {
      const deadline = Date.now() + timeoutMs
      while (this.#rawLen < n) {
        if (this.#eof) return "Eof" as const
        if (!(await this.#fill(deadline))) return "Timeout" as const
      }
      const all = concat(this.#raw)
      this.#raw = all.length > n ? [all.subarray(n)] : []
      this.#rawLen = all.length - n
      return all.subarray(0, n)
    })
  }

  /** Everything raw received until EOF or `timeoutMs`. */
  readUntilEof(timeoutMs = 2000): Effect.Effect<{ readonly bytes: Uint8Array; readonly eof: boolean }> {
    return Effect.promise(async () => {
      const deadline = Date.now() + timeoutMs
      while (!this.#eof && (await this.#fill(deadline)));
      const bytes = concat(this.#raw)
      this.#raw = []
      this.#rawLen = 0
      return { bytes, eof: this.#eof }
    })
  }

  /** Switches to frame decoding; raw bytes already received are kept. */
  startFrames(): void {
    if (this.#decoder !== undefined) return
    this.#decoder = new FrameDecoder("toClient")
    for (const c of this.#raw) this.#decoder.push(c)
    this.#raw = []
    this.#rawLen = 0
  }

  /** The next frame, EOF, or a timeout (default 2 s). Dies on a malformed stream. */
  next(timeoutMs = 2000): Effect.Effect<Received> {
    return Effect.suspend(() => {
      this.startFrames()
      const d = this.#decoder
      if (d === undefined) return Effect.dieMessage("no decoder")
      return Effect.promise(async (): Promise<Received | Error> => {
        const deadline = Date.now() + timeoutMs
        for (;;) {
          const f = d.next()
          if (f !== undefined) return isProtocolError(f) ? new Error(f.message) : { _tag: "Frame", frame: f }
          if (this.#eof) return { _tag: "Eof" }
          if (!(await this.#fill(deadline))) return { _tag: "Timeout" }
        }
      }).pipe(Effect.flatMap((r) => r instanceof Error ? Effect.die(r) : Effect.succeed(r)))
    })
  }

  /** The next frame; dies on EOF or timeout. */
  frame(timeoutMs = 2000): Effect.Effect<Frame> {
    return Effect.flatMap(
      this.next(timeoutMs),
      (r) =>
        r._tag === "Frame"
          ? Effect.succeed(r.frame)
          : Effect.dieMessage(`${this.privateGroup || "client"}: expected a frame, got ${r._tag}`),
    )
  }

  /** The next `n` frames; dies on EOF or timeout (per frame). */
  frames(n: number, timeoutMs = 2000): Effect.Effect<Array<Frame>> {
    return Effect.gen(this, function* () {
      const out: Array<Frame> = []
      while (out.length < n) out.push(yield* this.frame(timeoutMs))
      return out
    })
  }

  /**
   * Reads until `done` holds for every byte received so far (only when
   * opened with `record`), EOF, or `timeoutMs`; answers whether it holds.
   */
  waitRecorded(done: (received: Uint8Array) => boolean, timeoutMs = 3000): Effect.Effect<boolean> {
    return Effect.promise(async () => {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        if (done(this.recorded())) return true
        if (this.#eof || !(await this.#fill(deadline))) return done(this.recorded())
      }
    })
  }

  /** Waits for EOF; true if it came within `timeoutMs` (frames stay readable). */
  awaitEof(timeoutMs = 2000): Effect.Effect<boolean> {
    return Effect.promise(async () => {
      const deadline = Date.now() + timeoutMs
      while (!this.#eof) if (!(await this.#fill(deadline))) return false
      return true
    })
  }

  /** Runs the client side of the handshake. */
  handshake(opts: HandshakeOptions): Effect.Effect<HandshakeResult> {
    return Effect.gen(this, function* () {
      const version = opts.version ?? LIB_VERSION
      yield* this.write(encodeConnect({ version, membership: opts.membership ?? true, priority: 0, name: opts.name }))
      let afterAuthList = false
      if (usesAuthExchange(version)) {
        const first = yield* this.readBytes(1)
        if (typeof first === "string") return { _tag: "Closed" } as const
        const len = (first[0] << 24) >> 24
        if (len < 0) return { _tag: "Rejected", code: len, afterAuthList } as const
        const list = yield* this.readBytes(len)
        if (typeof list === "string") return { _tag: "Closed" } as const
        afterAuthList = true
        const choice = encodeAuthChoice(opts.authMethods ?? ["NULL"])
        if (isProtocolError(choice)) return yield* Effect.die(choice)
        yield* this.write(choice)
      }
      const first = yield* this.readBytes(1)
      if (typeof first === "string") return { _tag: "Closed" } as const
      if (first[0] !== 1) return { _tag: "Rejected", code: (first[0] << 24) >> 24, afterAuthList } as const
      const patch = hasPatchByte(version)
      const head = yield* this.readBytes(patch ? 4 : 3)
      if (typeof head === "string") return { _tag: "Closed" } as const
      const len = head[head.length - 1]
      const name = yield* this.readBytes(len)
      if (typeof name === "string") return { _tag: "Closed" } as const
      this.privateGroup = String.fromCharCode(...name)
      this.startFrames()
      return {
        _tag: "Accepted",
        privateGroup: this.privateGroup,
        version: { major: head[0], minor: head[1], patch: patch ? head[2] : 0 },
      } as const
    })
  }

  /** Sends a join. */
  join(group: string): Effect.Effect<boolean> {
    return this.write(encodeCommand("Join", this.privateGroup, group))
  }

  /** Sends a leave. */
  leave(group: string): Effect.Effect<boolean> {
    return this.write(encodeCommand("Leave", this.privateGroup, group))
  }

  /** Sends a disconnect (KILL). */
  kill(): Effect.Effect<boolean> {
    return this.write(encodeCommand("Kill", this.privateGroup, this.privateGroup))
  }

  /** Sends a multicast (no validation: tests may send what a library would refuse). */
  multicast(spec: Omit<MulticastSpec, "privateGroup">): Effect.Effect<boolean> {
    return this.write(encodeMulticast({ ...spec, privateGroup: this.privateGroup }))
  }
}

/** Joins byte arrays. */
export const concat = (parts: ReadonlyArray<Uint8Array>): Uint8Array => concatBytes(parts)

/** Text as bytes. */
export const text = (s: string): Uint8Array => new TextEncoder().encode(s)

/** Bytes as text. */
export const untext = (b: Uint8Array): string => new TextDecoder().decode(b)
