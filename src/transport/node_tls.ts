/**
 * `node:tls`, loaded only where Deno has no API of its own, and typed by the
 * few members this library uses.
 *
 * Why it is here at all: `Deno.listenTls` (Deno 2.9) cannot ask for or
 * verify client certificates, and neither `Deno.connectTls` nor
 * `Deno.startTls` can present a client certificate while verifying a server
 * name other than the host dialled. Deno's `node:tls` does both.
 *
 * Why it is loaded this way: a static `import "node:tls"` (or a dynamic
 * import of the literal) puts Node's type declarations into the type graph of
 * every program that imports this library, so an app's `deno check` fails
 * unless it installs `@types/node` (Deno looks for `npm:@types/node` as soon
 * as a `node:` module is in the graph). So the module is taken from
 * `process.getBuiltinModule` (Deno 2 has Node's `process` global), the first
 * time it is needed, and checked at run time against the minimal interfaces
 * below, which are all the type checker sees. (A dynamic `import()` of a
 * variable would do the same, but `deno publish` warns about it.)
 *
 * @module
 */
import { Effect } from "effect"

/**
 * The subject fields of a peer certificate this library reads.
 *
 * @since 0.2.0
 * @category models
 */
export interface NodePeerCertificate {
  readonly subject?: { readonly CN?: string | ReadonlyArray<string> } | undefined
  readonly subjectaltname?: string | undefined
}

/**
 * The members of a `node:net` socket this library uses.
 *
 * @since 0.2.0
 * @category models
 */
export interface NodeSocket {
  readonly remoteAddress?: string | undefined
  readonly remotePort?: number | undefined
  readonly destroyed: boolean
  destroy(): void
  once(event: "close", listener: () => void): unknown
  setNoDelay(noDelay: boolean): unknown
  setKeepAlive(enable: boolean): unknown
}

/**
 * The members of a `node:tls` socket this library uses.
 *
 * @since 0.2.0
 * @category models
 */
export interface NodeTlsSocket extends NodeSocket {
  /**
   * The TCP socket under a server-side TLS socket (node's own link, set by
   * Deno's `node:tls` too): how a `tlsClientError` finds its peer's address.
   */
  readonly _parent?: unknown
  on(event: "data", listener: (chunk: Uint8Array) => void): unknown
  on(event: "end" | "close", listener: () => void): unknown
  on(event: "error", listener: (error: Error) => void): unknown
  once(event: "close" | "secureConnect", listener: () => void): unknown
  once(event: "error", listener: (error: Error) => void): unknown
  off(event: "error", listener: (error: Error) => void): unknown
  pause(): unknown
  resume(): unknown
  write(bytes: Uint8Array, callback: (error?: Error | null) => void): unknown
  end(callback: () => void): unknown
  getPeerCertificate(): NodePeerCertificate | null | undefined
}

/**
 * The members of a `node:tls` server this library uses.
 *
 * @since 0.2.0
 * @category models
 */
export interface NodeTlsServer {
  on(event: "connection", listener: (socket: NodeSocket) => void): unknown
  on(event: "secureConnection", listener: (socket: NodeTlsSocket) => void): unknown
  on(
    event: "tlsClientError",
    listener: (error: Error & { readonly code?: string }, socket: NodeTlsSocket) => void,
  ): unknown
  on(event: "error", listener: (error: Error) => void): unknown
  once(event: "error", listener: (error: Error) => void): unknown
  off(event: "error", listener: (error: Error) => void): unknown
  listen(port: number, hostname: string, callback: () => void): unknown
  address(): { readonly port: number } | string | null
  close(): unknown
}

/**
 * The members of the `node:tls` module this library uses.
 *
 * @since 0.2.0
 * @category models
 */
export interface NodeTls {
  createServer(options: {
    readonly cert: string
    readonly key: string
    readonly ca?: string
    readonly requestCert?: boolean
    readonly rejectUnauthorized?: boolean
    readonly handshakeTimeout?: number
  }): NodeTlsServer
  connect(options: {
    readonly host: string
    readonly port: number
    readonly servername: string
    readonly ca?: ReadonlyArray<string>
    readonly cert?: string
    readonly key?: string
  }): NodeTlsSocket
}

const NODE_TLS = "node:tls"

const isNodeTls = (u: unknown): u is NodeTls =>
  typeof u === "object" && u !== null && "createServer" in u && typeof u.createServer === "function" &&
  "connect" in u && typeof u.connect === "function"

let loaded: NodeTls | undefined

/**
 * `node:tls`, loaded on first use; fails when the runtime has none (no
 * `process.getBuiltinModule`).
 *
 * @since 0.2.0
 * @category constructors
 */
export const nodeTls: Effect.Effect<NodeTls, Error> = Effect.suspend(() => {
  if (loaded !== undefined) return Effect.succeed(loaded)
  const proc: unknown = Reflect.get(globalThis, "process")
  const get: unknown = typeof proc === "object" && proc !== null ? Reflect.get(proc, "getBuiltinModule") : undefined
  const mod: unknown = typeof get === "function" ? Reflect.apply(get, proc, [NODE_TLS]) : undefined
  if (!isNodeTls(mod)) {
    return Effect.fail(new Error(`${NODE_TLS} is not available (process.getBuiltinModule("${NODE_TLS}"))`))
  }
  loaded = mod
  return Effect.succeed(mod)
})
