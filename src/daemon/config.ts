/**
 * Daemon configuration and its defaults.
 *
 * @module
 */
import { Effect } from "effect"
import { DEFAULT_MAX_SESSION_MESSAGES, DEFAULT_SPREAD_PORT, MAX_LOCAL_GROUP_MEMBERS } from "../protocol/constants.ts"
import type { TlsConfig } from "./tls_sessions.ts"
import type { UdpIngressConfig } from "./udp_ingress.ts"

/**
 * One more virtual daemon in the process (see `DaemonConfig.virtualDaemons`).
 *
 * @since 0.2.0
 * @category models
 */
export interface VirtualDaemonConfig {
  /** Its name (`#name#<daemon>`); unique among the process's daemons. */
  readonly name: string
  /** Its TCP port on the daemon's host; 0 (the default) picks a free one. */
  readonly port?: number
  /** Its proc id in membership ids. Default: a hash of the name. */
  readonly procId?: number
}

/**
 * A virtual daemon as configured, defaults filled in.
 *
 * @since 0.2.0
 * @category models
 */
export interface ResolvedVirtualDaemon {
  /** Its name. */
  readonly name: string
  /** The configured TCP port (0: a free one). */
  readonly port: number
  /** Its proc id. */
  readonly procId: number
}

/**
 * An authentication method a daemon offers (Spread's `NULL`, `IP`, ...).
 * No bytes are exchanged beyond the method's name; `authenticate` decides.
 *
 * @since 0.1.0
 * @category models
 */
export interface AuthMethod {
  /** The name sent in the auth list, 1 to 29 bytes. */
  readonly name: string
  /** Whether a client that asked for this method is let in. */
  readonly authenticate: (client: AuthContext) => Effect.Effect<boolean>
}

/**
 * What an {@link AuthMethod} learns about the client.
 *
 * @since 0.1.0
 * @category models
 */
export interface AuthContext {
  /** The client's private name. */
  readonly privateName: string
  /** The remote address (`host:port`, or the socket path for Unix clients). */
  readonly remote: string
  /** The transport the client came in on (`"tls"`: the daemon's TLS port, its certificate checked already). */
  readonly transport: "tcp" | "unix" | "tls"
}

/**
 * Spread's `NULL` method: always accepts.
 *
 * @since 0.1.0
 * @category constructors
 */
export const NullAuth: AuthMethod = { name: "NULL", authenticate: () => Effect.succeed(true) }

/**
 * Everything a daemon can be told. Every field is optional.
 *
 * @since 0.1.0
 * @category models
 */
export interface DaemonConfig {
  /** TCP interface to listen on. Default `127.0.0.1`. */
  readonly host?: string
  /** TCP port; 0 picks a free one. Default 4803. */
  readonly port?: number
  /**
   * Unix socket: `true` for Spread's `/tmp/<port>` (with the bound port when
   * `port` is 0), a path, or `false` for none. Default `true`, as the real
   * daemon and the `daemon` command do, so a client's `connect({ daemon:
   * "<port>" })`, which dials `/tmp/<port>` as Spread's naming says, reaches
   * it. A stale socket file at the path is replaced; any other file is left
   * alone and the daemon does not start (`ListenFailed`).
   */
  readonly unixSocket?: boolean | string
  /** Daemon name, in every private group `#name#<daemon>`. Default `localhost`. */
  readonly name?: string
  /**
   * Most operational sessions; past it a client gets REJECT_QUOTA (at once,
   * or in place of the accept when the places filled up while it shook
   * hands). Default 997, as Spread.
   */
  readonly maxSessions?: number
  /**
   * Most members of one group; a join past it gets a REJECT message (the
   * join's frame, `old_type` CAUSED_BY_JOIN) and changes nothing. Default
   * 3122, Spread's MAX_LOCAL_GROUP_MEMBERS.
   */
  readonly maxGroupMembers?: number
  /**
   * Most groups one session belongs to at once; a join past it gets a
   * REJECT message, as a join to a full group does. Default 1000.
   */
  readonly maxGroupsPerSession?: number
  /**
   * Most non-empty groups on the daemon; a join that would create one more
   * gets a REJECT message. Default 65536.
   */
  readonly maxGroups?: number
  /**
   * Most connections still shaking hands. They do not take the places of
   * sessions (`maxSessions` counts operational sessions only); past this
   * bound a new connection gets REJECT_QUOTA at once, logged once per
   * episode. Default 256.
   */
  readonly maxHandshaking?: number
  /**
   * Time, in ms, a session has to finish a frame once its first byte is in
   * (a header or body half-sent and left there); past it the session is
   * closed with a warning. Default 10000.
   */
  readonly partialFrameTimeoutMs?: number
  /**
   * Most messages queued for one session whose socket is full before it is
   * cut off as a slow reader (Spread's MaxSessionMessages). As in Spread,
   * the limit applies once the socket stops taking data (here: nothing
   * written for 100 ms); a reader that keeps up is never cut off because a
   * burst queued many frames at once. Default 1000.
   */
  readonly maxSessionMessages?: number
  /** Most bytes queued for one session before it is cut off, stalled or not. Default 64 MiB. */
  readonly maxSessionBytes?: number
  /**
   * Time a client has to finish the handshake, in ms. Default 1000, the time
   * a real daemon waits for the connect message [T22 conn9].
   */
  readonly handshakeTimeoutMs?: number
  /** Offered auth methods, in order. Default `[NullAuth]`. */
  readonly authMethods?: ReadonlyArray<AuthMethod>
  /** Names of methods every client must pass, asked for or not. Default none. */
  readonly requiredAuthMethods?: ReadonlyArray<string>
  /** The daemon membership id in group ids. Default: a hash of the name. */
  readonly procId?: number
  /** TLS sessions (with client-certificate checks) beside TCP and Unix. Default none. */
  readonly tls?: TlsConfig
  /** UDP sockets whose datagrams are multicast into a group. Default none. */
  readonly udpIngress?: ReadonlyArray<UdpIngressConfig>
  /**
   * Answer Spread's monitor (`spmonitor`) status requests on UDP
   * `host:port` (the bound port), as a Spread daemon does on its segment
   * port. Default `true`; a UDP port that cannot be bound is logged and
   * skipped.
   */
  readonly monitorStatus?: boolean
  /**
   * More virtual daemons hosted in this process, each on its own TCP port,
   * sharing this daemon's sequencer so they can be split into components
   * and merged again (`Daemon.partition`, `Daemon.heal`; see
   * docs/partitions.md). This daemon comes first in their configuration.
   * Default none.
   */
  readonly virtualDaemons?: ReadonlyArray<VirtualDaemonConfig>
}

/**
 * A configuration with every default filled in.
 *
 * @since 0.1.0
 * @category models
 */
export interface ResolvedConfig {
  /** TCP interface. */
  readonly host: string
  /** TCP port as configured (0: the bound port is in `Daemon.port`). */
  readonly port: number
  /** Unix socket: `true` for `/tmp/<port>`, a path, or `false`. */
  readonly unixSocket: boolean | string
  /** Daemon name. */
  readonly name: string
  /** Most sessions before REJECT_QUOTA. */
  readonly maxSessions: number
  /** Most members of one group. */
  readonly maxGroupMembers: number
  /** Most groups one session belongs to. */
  readonly maxGroupsPerSession: number
  /** Most non-empty groups. */
  readonly maxGroups: number
  /** Most connections shaking hands at once. */
  readonly maxHandshaking: number
  /** Time to finish a frame once begun, in ms. */
  readonly partialFrameTimeoutMs: number
  /** Frames queued for a stalled session before it is cut off. */
  readonly maxSessionMessages: number
  /** Bytes queued for a session before it is cut off. */
  readonly maxSessionBytes: number
  /** Time allowed for the handshake, in ms. */
  readonly handshakeTimeoutMs: number
  /** Offered auth methods, in order. */
  readonly authMethods: ReadonlyArray<AuthMethod>
  /** Methods every client must pass. */
  readonly requiredAuthMethods: ReadonlyArray<string>
  /** The daemon membership id in group ids. */
  readonly procId: number
  /** TLS sessions, if any. */
  readonly tls: TlsConfig | undefined
  /** UDP ingresses. */
  readonly udpIngress: ReadonlyArray<UdpIngressConfig>
  /** Whether spmonitor status requests are answered. */
  readonly monitorStatus: boolean
  /** Virtual daemons besides this one, in configuration order. */
  readonly virtualDaemons: ReadonlyArray<ResolvedVirtualDaemon>
}

/**
 * A 32-bit FNV-1a hash of the daemon name, used as its membership id.
 *
 * @since 0.1.0
 * @category constructors
 */
export const hashName = (name: string): number => {
  let h = 0x811c9dc5
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i) & 0xff
    h = Math.imul(h, 0x01000193)
  }
  return h | 0
}

/**
 * Fills in the defaults.
 *
 * @since 0.1.0
 * @category constructors
 */
export const resolveConfig = (c: DaemonConfig = {}): ResolvedConfig => {
  const name = c.name ?? "localhost"
  return {
    host: c.host ?? "127.0.0.1",
    port: c.port ?? DEFAULT_SPREAD_PORT,
    unixSocket: c.unixSocket ?? true,
    name,
    maxSessions: c.maxSessions ?? 997,
    maxGroupMembers: c.maxGroupMembers ?? MAX_LOCAL_GROUP_MEMBERS,
    maxGroupsPerSession: c.maxGroupsPerSession ?? 1000,
    maxGroups: c.maxGroups ?? 65536,
    maxHandshaking: c.maxHandshaking ?? 256,
    partialFrameTimeoutMs: c.partialFrameTimeoutMs ?? 10_000,
    maxSessionMessages: c.maxSessionMessages ?? DEFAULT_MAX_SESSION_MESSAGES,
    maxSessionBytes: c.maxSessionBytes ?? 64 * 1024 * 1024,
    handshakeTimeoutMs: c.handshakeTimeoutMs ?? 1000,
    authMethods: c.authMethods ?? [NullAuth],
    requiredAuthMethods: c.requiredAuthMethods ?? [],
    procId: c.procId ?? hashName(name),
    tls: c.tls,
    udpIngress: c.udpIngress ?? [],
    monitorStatus: c.monitorStatus ?? true,
    virtualDaemons: (c.virtualDaemons ?? []).map((v) => ({
      name: v.name,
      port: v.port ?? 0,
      procId: v.procId ?? hashName(v.name),
    })),
  }
}
