/**
 * Lines from standard input, as Effects.
 *
 * `@effect/platform`'s `Terminal` would fit, but it has no Deno
 * implementation (only Node's, over `node:readline`); this is the smallest
 * replacement over `Deno.stdin`. A read blocked on the terminal is
 * abandoned when its fiber is interrupted; the tools then exit the process,
 * so the abandoned read never matters.
 *
 * @module
 */
import { Effect } from "effect"

/**
 * Reads standard input line by line.
 *
 * @since 0.1.0
 * @category models
 */
export class LineReader {
  #pending = ""
  #eof = false
  readonly #decoder = new TextDecoder()
  readonly #buf = new Uint8Array(16 * 1024)
  readonly #source: { read(p: Uint8Array): Promise<number | null> }

  constructor(source: { read(p: Uint8Array): Promise<number | null> } = Deno.stdin) {
    this.#source = source
  }

  /** The next line without its newline, or `undefined` at end of input. */
  readonly readLine: Effect.Effect<string | undefined> = Effect.suspend(() => {
    const nl = this.#pending.indexOf("\n")
    if (nl >= 0) {
      const line = this.#pending.slice(0, nl).replace(/\r$/, "")
      this.#pending = this.#pending.slice(nl + 1)
      return Effect.succeed(line)
    }
    if (this.#eof) {
      if (this.#pending.length === 0) return Effect.succeed(undefined)
      const last = this.#pending
      this.#pending = ""
      return Effect.succeed(last)
    }
    return Effect.promise(() => this.#source.read(this.#buf).catch(() => null)).pipe(
      Effect.flatMap((n) => {
        if (n === null) {
          this.#eof = true
          this.#pending += this.#decoder.decode()
        } else {
          this.#pending += this.#decoder.decode(this.#buf.subarray(0, n), { stream: true })
        }
        return this.readLine
      }),
    )
  })
}
