/**
 * Partition controls in text, for manual tries from the `daemon` command:
 * `--virtual NAME[:PORT]` adds a virtual daemon, and with
 * `--partition-control` every line on standard input is a command:
 *
 * ```
 * partition d1 | d2 d3     split into {d1} and {d2, d3}
 * heal                     merge everything again
 * components               print the components now
 * ```
 *
 * @module
 */
import { Console, Effect, Stream } from "effect"
import type { Daemon } from "../daemon.ts"
import type { VirtualDaemonConfig } from "../config.ts"

/**
 * One control command.
 *
 * @since 0.2.0
 * @category models
 */
export type ControlCommand =
  | { readonly _tag: "Partition"; readonly components: ReadonlyArray<ReadonlyArray<string>> }
  | { readonly _tag: "Heal" }
  | { readonly _tag: "Components" }
  | { readonly _tag: "Empty" }
  | { readonly _tag: "Invalid"; readonly message: string }

/**
 * Parses one control line: `partition A | B C`, `heal`, `components`
 * (blank lines and `#` comments are `Empty`).
 *
 * @since 0.2.0
 * @category parsing
 */
export const parseControlLine = (line: string): ControlCommand => {
  const text = line.replace(/#.*$/, "").trim()
  if (text === "") return { _tag: "Empty" }
  const [verb, ...rest] = text.split(/\s+/)
  switch (verb) {
    case "heal":
    case "merge":
      return rest.length === 0 ? { _tag: "Heal" } : { _tag: "Invalid", message: `"${verb}" takes no arguments` }
    case "components":
      return rest.length === 0 ? { _tag: "Components" } : { _tag: "Invalid", message: `"${verb}" takes no arguments` }
    case "partition":
    case "split": {
      const components = rest.join(" ").split("|").map((c) => c.split(/[\s,]+/).filter((n) => n.length > 0))
      if (components.length < 1 || components.some((c) => c.length === 0)) {
        return { _tag: "Invalid", message: `"${text}": components are daemon names separated by "|"` }
      }
      return { _tag: "Partition", components }
    }
    default:
      return {
        _tag: "Invalid",
        message: `unknown command "${verb}" (partition A | B C, heal, components)`,
      }
  }
}

/**
 * Parses the value of `--virtual`: `NAME`, `NAME:PORT` or
 * `NAME:PORT:PROCID`. Answers the problem as a string.
 *
 * @since 0.2.0
 * @category parsing
 */
export const parseVirtualDaemon = (value: string): VirtualDaemonConfig | string => {
  const [name, port, procId, ...more] = value.split(":")
  if (name === undefined || name === "" || more.length > 0) {
    return `--virtual "${value}" is not NAME[:PORT[:PROCID]]`
  }
  const p = port === undefined || port === "" ? 0 : Number(port)
  if (!Number.isInteger(p) || p < 0 || p > 65535) return `--virtual "${value}": port "${port}" is not 0..65535`
  if (procId === undefined) return { name, port: p }
  const id = Number(procId)
  if (!Number.isInteger(id)) return `--virtual "${value}": proc id "${procId}" is not an integer`
  return { name, port: p, procId: id }
}

const show = (components: ReadonlyArray<ReadonlyArray<string>>): string =>
  components.map((c) => c.join(" ")).join(" | ")

/**
 * Applies control lines to a daemon, one at a time, answering each on the
 * console (`components: d1 | d2 d3`, or the problem). Ends with the lines.
 *
 * @since 0.2.0
 * @category combinators
 */
export const runControl = <E, R>(daemon: Daemon, lines: Stream.Stream<string, E, R>): Effect.Effect<void, E, R> =>
  Stream.runForEach(lines, (line) => {
    const cmd = parseControlLine(line)
    switch (cmd._tag) {
      case "Empty":
        return Effect.void
      case "Invalid":
        return Console.error(`control: ${cmd.message}`)
      case "Components":
        return Console.log(`components: ${show(daemon.components())}`)
      case "Heal":
        return Effect.zipRight(
          daemon.heal,
          Effect.suspend(() => Console.log(`components: ${show(daemon.components())}`)),
        )
      case "Partition":
        return daemon.partition(cmd.components).pipe(
          Effect.zipRight(Effect.suspend(() => Console.log(`components: ${show(daemon.components())}`))),
          Effect.catchAll((e) => Console.error(`control: ${e.detail}`)),
        )
    }
  })

/**
 * Standard input as lines, for {@link runControl}.
 *
 * @since 0.2.0
 * @category constructors
 */
export const stdinLines: Stream.Stream<string, never> = Stream.fromReadableStream({
  evaluate: () => Deno.stdin.readable.pipeThrough(new TextDecoderStream()),
  onError: (e) => e,
}).pipe(Stream.orDie, Stream.splitLines)
