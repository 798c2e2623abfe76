/**
 * One daemon session under a connection: what is replaced when the
 * connection reconnects.
 *
 * @module
 */
import type { Fiber, Scope } from "effect"
import type { Version } from "../protocol/handshake.ts"
import type { ByteStream } from "../transport/conn.ts"
import type { FlowControl } from "./window.ts"
import type { Outbound } from "./outbound.ts"

/**
 * One daemon session under a connection.
 *
 * @since 0.2.0
 * @category models
 */
export interface Session {
  readonly stream: ByteStream
  readonly scope: Scope.CloseableScope
  readonly out: Outbound
  readonly flow: FlowControl
  readonly privateGroup: string
  readonly privateName: string
  readonly daemonName: string
  readonly version: Version
  readonly label: string
  readonly rejoining: Set<string>
  reader: Fiber.RuntimeFiber<void> | undefined
  writer: Fiber.RuntimeFiber<void> | undefined
}
