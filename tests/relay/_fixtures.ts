/**
 * Shared fixtures of the relay tests: throwaway certificates, a daemon with
 * TLS sessions and UDP ingress on free loopback ports, a UDP sender, and a
 * raw TLS member that joins a group and then never reads.
 */
import { Effect, HashMap, Logger, LogLevel, type Scope } from "effect"
import * as Daemon from "../../src/daemon/mod.ts"
import {
  concatBytes,
  decodeServerMessage,
  encodeAuthChoice,
  encodeCommand,
  encodeConnect,
  FrameDecoder,
  isProtocolError,
  parseAccept,
  parseAuthList,
  type ParseResult,
  SPREAD_VERSION,
} from "../../src/protocol/mod.ts"
import { type Authority, type Issued, makeAuthority } from "../_helpers/certs.ts"
import { eventually as sharedEventually } from "../_helpers/fixtures.ts"

/** Every certificate the relay tests use, made fresh per test file. */
export interface Certs {
  /** The authority the daemon trusts for client certificates (and that issued its own). */
  readonly ca: Authority
  /** Another authority, trusted by nobody. */
  readonly otherCa: Authority
  /** The daemon's certificate, for `localhost` and `127.0.0.1`. */
  readonly server: Issued
  /** Client certificates issued by `ca`. */
  readonly reader1: Issued
  readonly reader2: Issued
  /** A client certificate issued by `otherCa`. */
  readonly intruder: Issued
}

/** Makes the certificates (a few ms of WebCrypto). */
export const makeCerts = async (): Promise<Certs> => {
  const ca = await makeAuthority("spreadfx test CA")
  const otherCa = await makeAuthority("some other CA")
  return {
    ca,
    otherCa,
    server: await ca.issue("localhost", { dns: ["localhost"], ips: ["127.0.0.1"] }),
    reader1: await ca.issue("reader-1"),
    reader2: await ca.issue("reader-2"),
    intruder: await otherCa.issue("intruder"),
  }
}

/** A daemon on free loopback ports with TLS sessions that require a client certificate from `certs.ca`. */
export const startRelay = (
  certs: Certs,
  config: Daemon.DaemonConfig = {},
): Effect.Effect<Daemon.Daemon, never, Scope.Scope> =>
  Daemon.make({
    port: 0,
    name: "localhost",
    tls: { port: 0, cert: certs.server.cert, key: certs.server.key, ca: certs.ca.cert },
    ...config,
  }).pipe(Effect.orDie)

/** The TCP address of the daemon's TLS port, in Spread's form. */
export const tlsAddress = (d: Daemon.Daemon): string => `${d.tlsPort ?? 0}@127.0.0.1`

/** One recorded log line. */
export interface LogLine {
  readonly level: LogLevel.LogLevel
  readonly message: string
}

/** A logger that appends every line to `lines` (and prints nothing). */
export const captureLogs = (lines: Array<LogLine>) =>
  Logger.replace(
    Logger.defaultLogger,
    Logger.make(({ logLevel, message }) => {
      lines.push({ level: logLevel, message: Array.isArray(message) ? message.map(String).join(" ") : String(message) })
    }),
  )

export { quiet, sleep } from "../_helpers/fixtures.ts"

/** Retries `check` every 10 ms until it holds or 5 s pass (TLS handshakes under load are slow). */
export const eventually = (check: () => boolean, timeoutMs = 5000): Effect.Effect<boolean> =>
  sharedEventually(check, timeoutMs)

/** A UDP socket on loopback that sends datagrams to `port`; the scope closes it. */
export const udpSender = (port: number): Effect.Effect<(data: Uint8Array) => Promise<void>, never, Scope.Scope> =>
  Effect.map(
    Effect.acquireRelease(
      Effect.sync(() => Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 })),
      (s) => Effect.sync(() => s.close()),
    ),
    (s) => async (data: Uint8Array) => {
      await s.send(data, { transport: "udp", hostname: "127.0.0.1", port })
    },
  )

/** The syslog-style line number `i`, padded to about 300 bytes. */
export const logLine = (i: number): string =>
  `<134>Dec  2 03:20:00 web-${i % 7} app[${1000 + (i % 13)}]: line ${String(i).padStart(5, "0")} ` +
  "request handled in 12 ms; ".repeat(10).slice(0, 240)

/**
 * A TLS member that shakes hands, joins `group` and then never reads: its
 * socket fills and stays full. Answers the connection (closed by the scope).
 */
export const stalledMember = (
  port: number,
  issued: Issued,
  caCert: string,
  name: string,
  group: string,
): Effect.Effect<Deno.TlsConn, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const conn = await Deno.connectTls({ hostname: "127.0.0.1", port, caCerts: [caCert], ...issued })
      let buf = new Uint8Array(0)
      const need = async <A>(parse: (b: Uint8Array) => ParseResult<A>): Promise<A> => {
        for (;;) {
          const r = parse(buf)
          if (r !== undefined && !isProtocolError(r)) {
            buf = buf.subarray(r.consumed)
            return r.value
          }
          if (isProtocolError(r)) throw r
          const chunk = new Uint8Array(1024)
          const n = await conn.read(chunk)
          if (n === null) throw new Error("EOF during the handshake")
          buf = concatBytes([buf, chunk.subarray(0, n)]) as Uint8Array<ArrayBuffer>
        }
      }
      await conn.write(encodeConnect({ version: SPREAD_VERSION, membership: true, priority: 0, name }))
      await need(parseAuthList)
      const choice = encodeAuthChoice(["NULL"])
      if (isProtocolError(choice)) throw choice
      await conn.write(choice)
      const accept = await need((b) => parseAccept(b, SPREAD_VERSION))
      if (accept._tag !== "Accept") throw new Error(`rejected: ${accept.code}`)
      await conn.write(encodeCommand("Join", accept.privateGroup, group))
      return conn
    }),
    (conn) =>
      Effect.sync(() => {
        try {
          conn.close()
        } catch {
          // already closed
        }
      }),
  )

/** What a raw member read: the data of each regular message in order, and whether the daemon closed it. */
export interface Drained {
  readonly data: Array<Uint8Array>
  readonly eof: boolean
}

/**
 * Reads what the daemon sent `conn` until `n` regular messages arrived,
 * the daemon closed it, or `idleMs` passed without a byte.
 */
export const drain = (conn: Deno.Conn, n: number, idleMs = 2000): Effect.Effect<Drained> =>
  Effect.promise(async () => {
    const decoder = new FrameDecoder("toClient")
    const data: Array<Uint8Array> = []
    const buf = new Uint8Array(256 * 1024)
    while (data.length < n) {
      let timer: ReturnType<typeof setTimeout> | undefined
      const r = await Promise.race([
        conn.read(buf).catch(() => null),
        new Promise<"idle">((ok) => timer = setTimeout(() => ok("idle"), idleMs)),
      ])
      clearTimeout(timer)
      if (r === "idle") return { data, eof: false }
      if (r === null) return { data, eof: true }
      decoder.push(buf.slice(0, r))
      for (let f = decoder.next(); f !== undefined; f = decoder.next()) {
        if (isProtocolError(f)) throw f
        const m = decodeServerMessage(f)
        if (!isProtocolError(m) && m._tag === "Regular") data.push(m.data.slice())
      }
    }
    return { data, eof: false }
  })

export { HashMap, LogLevel }
