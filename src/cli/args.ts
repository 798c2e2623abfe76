/**
 * A small flag parser for the command-line tools, with Spread's short flags
 * (`-s 4803@host`, `-u name`, `-ro`) and long ones (`--port 4803`).
 *
 * @module
 */
import { Console, Data, Effect } from "effect"

/**
 * A flag the tool takes.
 *
 * @since 0.1.0
 * @category models
 */
export interface FlagSpec {
  /** Every spelling, e.g. `["-s", "--spread"]`. */
  readonly names: ReadonlyArray<string>
  /** `"string"`, `"int"` (a whole number ≥ 0) or `"bool"` (takes no value). */
  readonly kind: "string" | "int" | "bool"
  /** The key in the result. */
  readonly key: string
  /** One line for `--help`. */
  readonly help: string
  /** Placeholder for the value in `--help`. */
  readonly value?: string
}

/**
 * A bad command line: the message says what is wrong, quoting the value.
 *
 * @since 0.1.0
 * @category errors
 */
export class UsageError extends Data.TaggedError("UsageError")<{ readonly detail: string }> {
  /**
   * The one-line description.
   *
   * @since 0.1.0
   */
  override get message(): string {
    return this.detail
  }
}

/**
 * The parsed flags: strings, numbers and booleans by key, plus `help`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Parsed {
  readonly values: ReadonlyMap<string, string | number | boolean>
  readonly help: boolean
}

/**
 * Parses `argv` against `specs`. `-h` and `--help` set `help`.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseFlags = (argv: ReadonlyArray<string>, specs: ReadonlyArray<FlagSpec>): Parsed | UsageError => {
  const values = new Map<string, string | number | boolean>()
  let help = false
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === "-h" || arg === "--help") {
      help = true
      continue
    }
    const eq = arg.startsWith("--") ? arg.indexOf("=") : -1
    const name = eq > 0 ? arg.slice(0, eq) : arg
    const spec = specs.find((s) => s.names.includes(name))
    if (spec === undefined) return new UsageError({ detail: `Unknown flag "${arg}"` })
    if (spec.kind === "bool") {
      if (eq > 0) return new UsageError({ detail: `Flag "${name}" takes no value` })
      values.set(spec.key, true)
      continue
    }
    let raw: string | undefined
    if (eq > 0) raw = arg.slice(eq + 1)
    else raw = argv[++i]
    if (raw === undefined) return new UsageError({ detail: `Flag "${name}" needs a value` })
    if (spec.kind === "int") {
      if (!/^\d+$/.test(raw) || !Number.isSafeInteger(Number(raw))) {
        return new UsageError({ detail: `Flag "${name}" takes a whole number, not "${raw}"` })
      }
      values.set(spec.key, Number(raw))
    } else {
      values.set(spec.key, raw)
    }
  }
  return { values, help }
}

/**
 * The `--help` text: a usage line, a description and one line per flag.
 *
 * @since 0.1.0
 * @category formatting
 */
export const usage = (tool: string, about: string, specs: ReadonlyArray<FlagSpec>): string => {
  const rows = specs.map((s) => {
    const left = s.names.join(", ") + (s.kind === "bool" ? "" : ` <${s.value ?? s.kind}>`)
    return `  ${left.padEnd(30)} ${s.help}`
  })
  return [`Usage: ${tool} [flags]`, "", about, "", "Flags:", ...rows, `  ${"-h, --help".padEnd(30)} this text`].join(
    "\n",
  )
}

/**
 * A string flag, or `fallback`.
 *
 * @since 0.1.0
 * @category getters
 */
export const str = (p: Parsed, key: string, fallback: string): string => {
  const v = p.values.get(key)
  return typeof v === "string" ? v : fallback
}

/**
 * A whole-number flag, or `fallback`.
 *
 * @since 0.1.0
 * @category getters
 */
export const int = (p: Parsed, key: string, fallback: number): number => {
  const v = p.values.get(key)
  return typeof v === "number" ? v : fallback
}

/**
 * A boolean flag.
 *
 * @since 0.1.0
 * @category getters
 */
export const bool = (p: Parsed, key: string): boolean => p.values.get(key) === true

/**
 * Parses `argv` and runs `run` with the flags. `--help` prints the usage and
 * answers 0; a bad flag prints what is wrong and the usage and answers 2, as
 * does a `fail(detail)` from `run` for a bad combination of flags.
 *
 * @since 0.1.0
 * @category running
 */
export const withFlags = (
  tool: string,
  about: string,
  specs: ReadonlyArray<FlagSpec>,
  argv: ReadonlyArray<string>,
  run: (flags: Parsed, fail: (detail: string) => Effect.Effect<number>) => Effect.Effect<number>,
): Effect.Effect<number> => {
  const fail = (detail: string) => Effect.as(Console.error(`${tool}: ${detail}\n\n${usage(tool, about, specs)}`), 2)
  const parsed = parseFlags(argv, specs)
  if (parsed instanceof UsageError) return fail(parsed.message)
  if (parsed.help) return Effect.as(Console.log(usage(tool, about, specs)), 0)
  return run(parsed, fail)
}
