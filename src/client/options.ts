/**
 * Connection options, their defaults, and their validation.
 *
 * @module
 */
import { Duration, Effect, Option, type Schedule } from "effect"
import { MAX_PRIVATE_NAME } from "../protocol/constants.ts"
import { encodeAuthChoice, isProtocolError } from "../protocol/handshake.ts"
import { validatePrivateName } from "../protocol/names.ts"
import { type Address, formatAddress, parseSpreadName } from "../protocol/address.ts"
import { ConnectError } from "./core/connect_error.ts"
import { checkTlsOptions, type TlsOptions } from "./session/tls.ts"
import { FRAGMENT_BYTES, MAX_FRAGMENT_BYTES } from "./features/fragments.ts"

/**
 * The flow window: how many of its own messages a connection may have in
 * flight (multicast to a group it belongs to and not yet received back).
 *
 * - `Adaptive`: a budget of permits (500 by default, the classic Spread
 *   rule); each message takes as many permits as the largest destination
 *   group it belongs to has members, so at most `budget / groupSize`
 *   messages are in flight.
 * - `Fixed`: at most `size` messages in flight, whatever the group sizes.
 * - `Off`: no limit. A sender that is also a receiver of its own messages
 *   can then be cut off by a daemon (whose per-session queue holds 1000).
 *
 * What counts: a multicast without SELF_DISCARD naming a group this
 * connection had joined when the multicast was queued, or naming its own
 * private group — exactly the messages the daemon delivers back to it. Its
 * permits return when its copy arrives (own messages come back in the order
 * sent). Not counted: SELF_DISCARD messages (they never come back) and
 * messages only to groups the sender is not a member of (open-group sends;
 * pace those by other means — the daemon cuts off *receivers* that fall 1000
 * messages behind).
 *
 * @since 0.1.0
 * @category models
 */
export type FlowWindow =
  | { readonly _tag: "Adaptive"; readonly budget: number }
  | { readonly _tag: "Fixed"; readonly size: number }
  | { readonly _tag: "Off" }

/**
 * An adaptive {@link FlowWindow} (the default, with a budget of 500).
 *
 * @since 0.1.0
 * @category constructors
 */
export const adaptiveWindow = (budget = 500): FlowWindow => ({ _tag: "Adaptive", budget })

/**
 * A fixed {@link FlowWindow} of `size` messages.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fixedWindow = (size: number): FlowWindow => ({ _tag: "Fixed", size })

/**
 * No {@link FlowWindow}.
 *
 * @since 0.1.0
 * @category constructors
 */
export const noWindow: FlowWindow = { _tag: "Off" }

/**
 * Where the daemon listens: a Spread name (`"4803"` is the Unix socket
 * `/tmp/4803`, `"4803@host"` is TCP), an absolute Unix socket path, a TCP
 * host and port, or a Unix socket path as an object.
 *
 * @since 0.1.0
 * @category models
 */
export type DaemonAddress =
  | string
  | { readonly host: string; readonly port?: number }
  | { readonly path: string }

/**
 * Options of {@link connect}.
 *
 * @since 0.1.0
 * @category models
 */
export interface ConnectOptions {
  /**
   * The daemon; `"4803"` (the Unix socket `/tmp/4803`) by default. A list
   * names daemons tried in turn, at `connect` and at each reconnect
   * attempt: the first that accepts a session is used.
   */
  readonly daemon?: DaemonAddress | ReadonlyArray<DaemonAddress>
  /**
   * The private name, 1 to 10 bytes in `$`..`~`. When omitted a random,
   * unique-across-processes name is generated here; `""` asks the daemon to
   * generate one.
   */
  readonly name?: string
  /** Priority; sent as `priority >= 1` like the C library. Spread 5 ignores it. */
  readonly priority?: number
  /** Receive group-membership messages (and keep group views); true by default. */
  readonly membership?: boolean
  /**
   * Limit on dialling plus the handshake, per daemon address tried; 5
   * seconds by default.
   */
  readonly connectTimeout?: Duration.DurationInput
  /** Auth method(s) to request, at most two; `"NULL"` by default. */
  readonly auth?: string | ReadonlyArray<string>
  /** The flow window; {@link adaptiveWindow}() by default. */
  readonly window?: FlowWindow
  /**
   * Messages decoded and not yet taken by a receiver (512 by default). When
   * full, the connection stops reading its socket (backpressure).
   */
  readonly inboundCapacity?: number
  /**
   * Fill ratio of the inbound buffer at which a `SlowConsumer` event is
   * published; 0.75 by default. `ConsumerCaughtUp` follows below a quarter.
   */
  readonly slowConsumerRatio?: number
  /** Most frames queued for the writer (4096 by default); senders wait beyond. */
  readonly outboxMessages?: number
  /** Most bytes queued for the writer (1 MiB by default, at least 256 KiB). */
  readonly outboxBytes?: number
  /**
   * How long closing may wait for queued frames and the disconnect to be
   * written before the socket is closed anyway; 1 second by default.
   */
  readonly closeTimeout?: Duration.DurationInput
  /**
   * Publish the connection's Effect metrics (`ClientMetrics`, tagged with
   * its private group) once a second; true by default.
   */
  readonly metrics?: boolean
  /**
   * Most bytes of one message, 16 MiB by default. Payloads above what one
   * Spread message carries (143151 bytes with its groups) are sent in
   * fragments (see `fragmentBytes`) and put back together by the receiving
   * client; a larger fragmented message from a sender is dropped by a
   * receiver.
   */
  readonly maxMessageBytes?: number
  /**
   * Most payload bytes in one fragment of a large message: 96 KiB by
   * default (`FRAGMENT_BYTES`), so that a fragment to one group is a
   * 98,420-byte frame, which a stock Spread C client receiving into a
   * 100,000-byte buffer takes whole; from 1 to `MAX_FRAGMENT_BYTES` (128 KiB).
   */
  readonly fragmentBytes?: number
  /**
   * Most bytes all partial large messages being received may hold together,
   * 64 MiB by default; a fragment past it drops its message.
   */
  readonly maxReassemblyBytes?: number
  /**
   * Connect over TLS (TCP addresses only): the authorities to trust, a
   * client certificate for daemons that ask for one, the name to verify.
   * Failures are `ConnectError`s `TlsUnknownAuthority`, `TlsNameMismatch`,
   * `TlsCertificateRefused` or `TlsFailed`.
   */
  readonly tls?: TlsOptions
  /**
   * Reconnect when the session is lost (not when closed locally): the
   * first attempt at once, then one more each time this schedule recurs
   * (it gets each attempt's `ConnectError`). Each attempt tries the
   * daemon addresses in turn. When the schedule ends, the connection fails
   * for good with its sticky error. Without it (the default), a lost
   * session fails the connection at once.
   *
   * @example
   * ```ts
   * import { Schedule } from "effect"
   * // Up to 10 attempts, 100 ms apart and doubling, at most 5 s apart.
   * const reconnect = Schedule.exponential("100 millis").pipe(
   *   Schedule.union(Schedule.spaced("5 seconds")),
   *   Schedule.intersect(Schedule.recurs(10)),
   * )
   * ```
   */
  readonly reconnect?: Schedule.Schedule<unknown, ConnectError>
  /**
   * What sends (`multicast`, `join`, `leave`, …) do while reconnecting:
   * `"wait"` (the default) queues them in the outbox while it has room and
   * then waits, so they go out on the new session after the groups are
   * joined again; `"fail"` fails them at once with a `ConnectionError`
   * marked `reconnecting`.
   */
  readonly whileReconnecting?: "wait" | "fail"
}

/**
 * Options after defaults and validation.
 *
 * @since 0.1.0
 * @category models
 */
export interface ResolvedOptions {
  /** The first daemon address. */
  readonly address: Address
  readonly label: string
  /** Every daemon address, in the order to try them. */
  readonly addresses: ReadonlyArray<{ readonly address: Address; readonly label: string }>
  readonly reconnect: Schedule.Schedule<unknown, ConnectError> | undefined
  readonly whileReconnecting: "wait" | "fail"
  readonly name: string
  readonly priority: number
  readonly membership: boolean
  readonly connectTimeout: Duration.Duration
  readonly auth: ReadonlyArray<string>
  readonly authChoice: Uint8Array
  readonly window: FlowWindow
  readonly inboundCapacity: number
  readonly slowHigh: number
  readonly slowLow: number
  readonly outboxMessages: number
  readonly outboxBytes: number
  readonly closeTimeout: Duration.Duration
  readonly metrics: boolean
  readonly maxMessageBytes: number
  readonly fragmentBytes: number
  readonly maxReassemblyBytes: number
  readonly tls: TlsOptions | undefined
}

/** The smallest outbox byte limit: one maximum-size frame plus headroom. */
const MIN_OUTBOX_BYTES = 256 * 1024

const NAME_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"

/**
 * A random private name of 10 base-36 characters (about 51 bits), so names
 * generated by independent processes do not collide in practice.
 *
 * @since 0.1.0
 * @category constructors
 */
export const randomPrivateName = (): string => {
  const bytes = crypto.getRandomValues(new Uint8Array(MAX_PRIVATE_NAME))
  let s = ""
  for (let i = 0; i < bytes.length; i++) s += NAME_ALPHABET[bytes[i] % NAME_ALPHABET.length]
  return s
}

const isPositiveInt = (n: number): boolean => Number.isSafeInteger(n) && n > 0

const addressOf = (d: DaemonAddress | undefined): Address | undefined => {
  if (d === undefined) return parseSpreadName("4803")
  if (typeof d === "string") return parseSpreadName(d)
  if ("path" in d) return d.path.length > 0 ? { _tag: "Unix", path: d.path } : undefined
  const port = d.port ?? 4803
  if (d.host.length === 0 || !Number.isInteger(port) || port < 1 || port > 65535) return undefined
  return { _tag: "Tcp", hostname: d.host, port }
}

const labelOne = (d: DaemonAddress | undefined): string =>
  d === undefined ? "4803" : typeof d === "string" ? d : "path" in d ? d.path : `${d.port ?? 4803}@${d.host}`

const isList = (d: DaemonAddress | ReadonlyArray<DaemonAddress> | undefined): d is ReadonlyArray<DaemonAddress> =>
  Array.isArray(d)

/**
 * The daemon option as given, for messages: one address, or a list joined
 * with commas.
 *
 * @since 0.2.0
 * @category constructors
 */
export const labelOf = (d: DaemonAddress | ReadonlyArray<DaemonAddress> | undefined): string =>
  isList(d) ? d.map(labelOne).join(",") : labelOne(d)

const duration = (input: Duration.DurationInput | undefined, fallback: number): Option.Option<Duration.Duration> => {
  if (input === undefined) return Option.some(Duration.millis(fallback))
  return Option.filter(Duration.decodeUnknown(input), (d) => Duration.isFinite(d) && Duration.toMillis(d) > 0)
}

/**
 * Applies defaults and checks every option before anything is dialled.
 *
 * @since 0.1.0
 * @category constructors
 */
export const resolveOptions = (options: ConnectOptions): Effect.Effect<ResolvedOptions, ConnectError> =>
  Effect.suspend(() => {
    const given = labelOf(options.daemon)
    const bad = (reason: ConnectError["reason"], detail: string, cause?: unknown) =>
      Effect.fail(new ConnectError({ reason, address: given, detail, cause }))
    const daemons = isList(options.daemon) ? options.daemon : [options.daemon]
    if (daemons.length === 0) return bad("IllegalSpread", "the list of daemons is empty")
    const addresses: Array<{ readonly address: Address; readonly label: string }> = []
    for (const d of daemons) {
      const a = addressOf(d)
      if (a === undefined) {
        return bad("IllegalSpread", `"${labelOne(d)}" is not "<port>", "<port>@<host>" or a socket path`)
      }
      addresses.push({ address: a, label: formatAddress(a) })
    }
    const address = addresses[0].address
    const whileReconnecting = options.whileReconnecting ?? "wait"
    if (whileReconnecting !== "wait" && whileReconnecting !== "fail") {
      return bad("IllegalOption", `whileReconnecting "${whileReconnecting}" is not "wait" or "fail"`)
    }
    if (options.tls !== undefined) {
      const tlsError = checkTlsOptions(options.tls, address, given)
      if (tlsError !== undefined) return Effect.fail(tlsError)
    }
    const name = options.name ?? randomPrivateName()
    const nameError = validatePrivateName(name)
    if (nameError !== undefined) return bad("IllegalName", nameError.detail, nameError)
    const connectTimeout = duration(options.connectTimeout, 5000)
    const closeTimeout = duration(options.closeTimeout, 1000)
    if (Option.isNone(connectTimeout) || Option.isNone(closeTimeout)) {
      return bad("IllegalTime", "connectTimeout and closeTimeout are positive, finite durations")
    }
    const auth = options.auth === undefined
      ? ["NULL"]
      : typeof options.auth === "string"
      ? [options.auth]
      : options.auth
    if (auth.length === 0) return bad("IllegalOption", "At least one auth method is needed")
    const authChoice = encodeAuthChoice(auth)
    if (isProtocolError(authChoice)) return bad("IllegalOption", authChoice.detail, authChoice)
    const window = options.window ?? adaptiveWindow()
    switch (window._tag) {
      case "Adaptive":
        if (!isPositiveInt(window.budget)) return bad("IllegalOption", `window budget ${window.budget} is not > 0`)
        break
      case "Fixed":
        if (!isPositiveInt(window.size)) return bad("IllegalOption", `window size ${window.size} is not > 0`)
        break
      case "Off":
        break
    }
    const inboundCapacity = options.inboundCapacity ?? 512
    if (!isPositiveInt(inboundCapacity) || inboundCapacity < 4) {
      return bad("IllegalOption", `inboundCapacity ${inboundCapacity} is not an integer >= 4`)
    }
    const ratio = options.slowConsumerRatio ?? 0.75
    if (!(ratio > 0 && ratio <= 1)) return bad("IllegalOption", `slowConsumerRatio ${ratio} is not in (0, 1]`)
    const outboxMessages = options.outboxMessages ?? 4096
    const outboxBytes = options.outboxBytes ?? 1024 * 1024
    if (!isPositiveInt(outboxMessages)) return bad("IllegalOption", `outboxMessages ${outboxMessages} is not > 0`)
    if (!isPositiveInt(outboxBytes) || outboxBytes < MIN_OUTBOX_BYTES) {
      return bad("IllegalOption", `outboxBytes ${outboxBytes} is below ${MIN_OUTBOX_BYTES}`)
    }
    const maxMessageBytes = options.maxMessageBytes ?? 16 * 1024 * 1024
    const maxReassemblyBytes = options.maxReassemblyBytes ?? 64 * 1024 * 1024
    if (!isPositiveInt(maxMessageBytes)) return bad("IllegalOption", `maxMessageBytes ${maxMessageBytes} is not > 0`)
    if (!isPositiveInt(maxReassemblyBytes)) {
      return bad("IllegalOption", `maxReassemblyBytes ${maxReassemblyBytes} is not > 0`)
    }
    const fragmentBytes = options.fragmentBytes ?? FRAGMENT_BYTES
    if (!isPositiveInt(fragmentBytes) || fragmentBytes > MAX_FRAGMENT_BYTES) {
      return bad("IllegalOption", `fragmentBytes ${fragmentBytes} is not in 1..${MAX_FRAGMENT_BYTES}`)
    }
    const priority = options.priority ?? 0
    if (!Number.isFinite(priority)) return bad("IllegalOption", `priority ${priority} is not a number`)
    return Effect.succeed<ResolvedOptions>({
      address,
      label: formatAddress(address),
      addresses,
      reconnect: options.reconnect,
      whileReconnecting,
      name,
      priority: priority >= 1 ? 1 : 0,
      membership: options.membership ?? true,
      connectTimeout: connectTimeout.value,
      auth,
      authChoice,
      window,
      inboundCapacity,
      slowHigh: Math.max(1, Math.floor(inboundCapacity * ratio)),
      slowLow: Math.floor(inboundCapacity / 4),
      outboxMessages,
      outboxBytes,
      closeTimeout: closeTimeout.value,
      metrics: options.metrics ?? true,
      maxMessageBytes,
      fragmentBytes,
      maxReassemblyBytes,
      tls: options.tls,
    })
  })
