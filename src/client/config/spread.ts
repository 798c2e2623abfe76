/**
 * The connection as an Effect service: a `Context` tag and a scoped layer.
 *
 * @module
 */
import { Context, Layer } from "effect"
import { connect, type Connection } from "../connection.ts"
import type { ConnectError } from "../core/connect_error.ts"
import type { ConnectOptions } from "../options.ts"

/**
 * The tag base of {@link Spread}, typed explicitly so the public API has no
 * inferred ("slow") types.
 *
 * @since 0.1.0
 * @category tags
 */
export const SpreadBase: Context.TagClass<Spread, "@spreadfx/spreadfx/Spread", Connection> = Context.Tag(
  "@spreadfx/spreadfx/Spread",
)<Spread, Connection>()

/**
 * The service tag of a {@link Connection}.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Spread } from "./spread.ts"
 *
 * const program = Effect.gen(function* () {
 *   const spread = yield* Spread
 *   yield* spread.join("chat")
 * })
 * ```
 *
 * @since 0.1.0
 * @category tags
 */
export class Spread extends SpreadBase {}

/**
 * A layer that connects with `options` and closes the connection when the
 * layer is released.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: ConnectOptions = {}): Layer.Layer<Spread, ConnectError> =>
  Layer.scoped(Spread, connect(options))
