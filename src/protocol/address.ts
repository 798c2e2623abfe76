/**
 * Daemon addresses in Spread's forms: the `port@host` names of the C library, next to
 * the other Spread naming rules (names.ts). Pure: no IO.
 *
 * @module
 */
import { DEFAULT_SPREAD_PORT } from "./constants.ts"

/**
 * Where a daemon listens: TCP host and port, or a Unix stream socket path.
 *
 * @since 0.1.0
 * @category models
 */
export type Address =
  | { readonly _tag: "Tcp"; readonly hostname: string; readonly port: number }
  | { readonly _tag: "Unix"; readonly path: string }

/**
 * Parses a Spread daemon name: `""` or `"4803"` (the Unix socket
 * `/tmp/4803`), `"4803@host"` (TCP), or an absolute Unix socket path.
 * Answers `undefined` for anything else (the C library's ILLEGAL_SPREAD).
 *
 * @example
 * ```ts
 * import { parseSpreadName } from "./address.ts"
 * parseSpreadName("4803@127.0.0.1") // { _tag: "Tcp", hostname: "127.0.0.1", port: 4803 }
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const parseSpreadName = (name: string, unixDir = "/tmp"): Address | undefined => {
  if (name === "") return { _tag: "Unix", path: `${unixDir}/${DEFAULT_SPREAD_PORT}` }
  if (name.startsWith("/")) return { _tag: "Unix", path: name }
  const m = /^(\d{1,5})(?:@(.+))?$/.exec(name)
  if (m === null) return undefined
  const port = Number(m[1])
  if (port < 1 || port > 65535) return undefined
  const host = m[2]
  if (host === undefined) return { _tag: "Unix", path: `${unixDir}/${port}` }
  const hostname = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host
  return { _tag: "Tcp", hostname, port }
}

/**
 * Renders an address in Spread's form (`port@host` or the socket path).
 *
 * @since 0.1.0
 * @category formatting
 */
export const formatAddress = (a: Address): string =>
  a._tag === "Tcp" ? `${a.port}@${a.hostname.includes(":") ? `[${a.hostname}]` : a.hostname}` : a.path
