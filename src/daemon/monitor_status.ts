/**
 * Answers Spread's monitor (`spmonitor`) status requests, as a Spread 5.0.1
 * daemon does (`daemon/status.c`, `Stat_handle_message`).
 *
 * The monitor sends a bare `packet_header` (40 bytes) whose `type` has
 * `STATUS_TYPE` (0x01000000) set, to the UDP port of each daemon in its
 * spread.conf (the segment port, the same number as the client port), with
 * its own return port in `seq`. The daemon answers to the monitor's
 * address at that port with a `packet_header` (`STATUS_TYPE`, its proc id,
 * `data_len` 96) followed by the 96-byte `status` struct, in its own byte
 * order (marked in `type` as Spread's `Set_endian` does; the monitor flips
 * what it must).
 *
 * What this daemon fills: `sec` (seconds since it started), `state` OP and
 * `gstate` GOP (a single daemon is always operational), `my_id` and
 * `leader_id` (its proc id, the hash of its name Spread 5 uses, so the
 * monitor's spread.conf must list it under the daemon's `name`), `message_delivered`, `aru`,
 * `my_aru` and `highest_seq` (the messages it has sequenced, its one
 * sequence), `membership_changes` 1, `num_procs` 1, `num_segments` 1,
 * `num_sessions`, `num_groups`, and the version 5.0.1 it speaks. What it
 * cannot fill, because it runs no token ring, is 0: `packet_sent`,
 * `packet_recv`, `packet_delivered`, the four retransmission counts,
 * `token_hurry`, `token_rounds`, `window`, `personal_window`,
 * `accelerated_ring` (so the monitor says "regular protocol") and
 * `accelerated_window`. The header's `conf_hash` is 0 (there is no
 * spread.conf to hash).
 *
 * Unlike the real daemon, which answers only monitors on hosts in its
 * configuration, this one answers the address the request came from; it
 * listens on the daemon's `host`, loopback by default.
 *
 * @module
 */
import { Effect, type Scope } from "effect"
import { SPREAD_VERSION } from "../protocol/constants.ts"

const STATUS_TYPE = 0x01000000
const ENDIAN_TYPE = 0x80000080
const HEADER = 40
const STATUS = 96
const OP = 1
const GOP = 1

/**
 * What a status answer reports, read when a request comes.
 *
 * @since 0.1.0
 * @category models
 */
export interface StatusFigures {
  /** Operational sessions. */
  readonly sessions: number
  /** Non-empty groups. */
  readonly groups: number
  /** Messages sequenced so far. */
  readonly messages: number
}

/**
 * The proc id Spread 5 gives a daemon named `name` in spread.conf (when the
 * configuration sets none): Bob Jenkins' one-at-a-time hash of the name
 * with its terminating NUL (`Conf_str_to_id`, `stdhcode_oaat`), which is
 * how the monitor finds the daemon that answered.
 *
 * @since 0.1.0
 * @category constructors
 */
export const spreadProcId = (name: string): number => {
  const bytes = new TextEncoder().encode(name + "\0")
  let h = bytes.length >>> 0
  for (const b of bytes) {
    // C's `char` is signed on the platforms Spread runs on.
    h = (h + (b > 127 ? b - 256 : b)) >>> 0
    h = (h + (h << 10)) >>> 0
    h = (h ^ (h >>> 6)) >>> 0
  }
  h = (h + (h << 3)) >>> 0
  h = (h ^ (h >>> 11)) >>> 0
  h = (h + (h << 15)) >>> 0
  if (h === 0 || h === 0xffffffff) h = (bytes.length << 16) >>> 0
  return h | 0
}

/**
 * The answer to a status request (header and status, little-endian), or
 * `undefined` when `request` is not one. `seconds` is the daemon's age.
 *
 * @since 0.1.0
 * @category encoding
 */
export const statusAnswer = (
  request: Uint8Array,
  procId: number,
  startedSeconds: number,
  seconds: number,
  f: StatusFigures,
): { readonly answer: Uint8Array; readonly returnPort: number } | undefined => {
  if (request.length < HEADER) return undefined
  const q = new DataView(request.buffer, request.byteOffset, request.byteLength)
  const raw = q.getUint32(0, true)
  // The sender's byte order: Spread marks little-endian senders' types with 0x80000080.
  const little = (raw & ENDIAN_TYPE) >>> 0 === ENDIAN_TYPE
  const type = little ? raw : q.getUint32(0, false)
  if ((type & STATUS_TYPE) === 0) return undefined
  const returnPort = q.getInt32(20, little) & 0xffff
  if (returnPort === 0) return undefined
  const out = new Uint8Array(HEADER + STATUS)
  const v = new DataView(out.buffer)
  v.setUint32(0, (STATUS_TYPE | ENDIAN_TYPE) >>> 0, true)
  v.setInt32(4, procId, true) // transmiter_id
  v.setInt32(8, procId, true) // proc_id
  v.setInt32(12, procId, true) // memb_id.proc_id
  v.setInt32(16, startedSeconds, true) // memb_id.time
  // seq, token_round, conf_hash: 0
  v.setUint16(32, STATUS, true) // data_len
  const s = HEADER
  const i32 = [
    seconds, // sec
    OP, // state
    GOP, // gstate
    0, // packet_sent
    0, // packet_recv
    0, // packet_delivered
    0, // retrans
    0, // u_retrans
    0, // s_retrans
    0, // b_retrans
    f.messages, // aru
    f.messages, // my_aru
    f.messages, // highest_seq
    0, // token_hurry
    0, // token_rounds
    procId, // my_id
    procId, // leader_id
    f.messages, // message_delivered
  ]
  i32.forEach((x, k) => v.setInt32(s + 4 * k, x | 0, true))
  const i16 = [
    1, // membership_changes
    1, // num_procs
    1, // num_segments
    0, // window
    0, // personal_window
    0, // accelerated_ring
    0, // accelerated_window
    Math.min(f.sessions, 0x7fff), // num_sessions
    Math.min(f.groups, 0x7fff), // num_groups
    SPREAD_VERSION.major,
    SPREAD_VERSION.minor,
    SPREAD_VERSION.patch,
  ]
  i16.forEach((x, k) => v.setInt16(s + 72 + 2 * k, x, true))
  return { answer: out, returnPort }
}

/**
 * Listens for monitor status requests on UDP `host:port` until the scope
 * closes. A port that cannot be bound (in use, or no `--unstable-net`) is
 * logged at Warning and the daemon runs on without it.
 *
 * @since 0.1.0
 * @category constructors
 */
export const startStatusResponder = (
  host: string,
  port: number,
  daemonName: string,
  figures: () => StatusFigures,
): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function* () {
    if (typeof Deno.listenDatagram !== "function") {
      return yield* Effect.logDebug(
        `spmonitor status requests are not answered: Deno.listenDatagram needs --unstable-net`,
      )
    }
    const clock = yield* Effect.clock
    const started = clock.unsafeCurrentTimeMillis()
    const procId = spreadProcId(daemonName)
    let closing = false
    const socket = yield* Effect.acquireRelease(
      Effect.either(Effect.try(() => Deno.listenDatagram({ transport: "udp", hostname: host, port }))),
      (s) =>
        Effect.sync(() => {
          closing = true
          if (s._tag === "Right") {
            try {
              s.right.close()
            } catch {
              // already closed
            }
          }
        }),
    )
    if (socket._tag === "Left") {
      const e = socket.left.error
      return yield* Effect.logWarning(
        `spmonitor status requests are not answered: cannot listen on UDP ${host}:${port}: ${
          e instanceof Error ? e.message : String(e)
        }`,
      )
    }
    const udp = socket.right
    const buffer = new Uint8Array(2048)
    yield* Effect.forkScoped(Effect.gen(function* () {
      while (true) {
        const r = yield* Effect.either(Effect.tryPromise(() => udp.receive(buffer)))
        if (r._tag === "Left") {
          if (closing) return
          yield* Effect.sleep(100)
          continue
        }
        const [data, from] = r.right
        const now = clock.unsafeCurrentTimeMillis()
        const a = statusAnswer(
          data,
          procId,
          Math.floor(started / 1000),
          Math.floor((now - started) / 1000),
          figures(),
        )
        if (a === undefined || from.transport !== "udp") continue
        yield* Effect.ignore(
          Effect.tryPromise(() =>
            udp.send(a.answer, { transport: "udp", hostname: from.hostname, port: a.returnPort })
          ),
        )
      }
    }))
    yield* Effect.logDebug(`Answering spmonitor status requests on UDP ${host}:${port}`)
  })
