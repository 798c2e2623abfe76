/**
 * The one flag parser of the four tools (`daemon`, `user`, `flooder`,
 * `ping`), with Spread's flag style: short flags (`-s 4803@host`, `-u name`),
 * multi-letter single-dash flags (`-ro`, `-wo`, as `spflooder` has them) and
 * long ones (`--port 4803`, `--port=4803`).
 *
 * Why not `@effect/cli`: it spells every name longer than one letter with two
 * dashes and reads `-ro` as the cluster `-r -o`, so `spflooder`'s flags
 * cannot be declared with it; it also adds its own built-in options
 * (`--wizard`, `--completions`, `--log-level`, `--version`) and two printer
 * packages. This file is small and has the behaviour the tools promise:
 *
 * - every usage error says what is wrong, quoting the value
 *   (`unknown flag "--bogus"`, `--port takes a whole number from 0 to 65535,
 *   not "http"`), guesses the flag meant when an unknown one is a slip
 *   (`unknown flag "--prot" (did you mean "--port"?)`), prints a short usage
 *   line, and exits 2;
 * - `-h` / `--help` print the full help on stdout and exit 0;
 * - a value may be given as the next argument or, for `--long` flags, after
 *   `=`; a following argument that is itself a flag of the tool is not taken
 *   as a value (`-s -u bob` is "-s needs a value");
 * - the last occurrence of a flag wins.
 *
 * @module
 */
import { Console, Data, Effect } from "effect"
import { validatePrivateName } from "../protocol/names.ts"

/**
 * A flag the tool takes.
 *
 * @since 0.1.0
 * @category models
 */
export interface FlagSpec {
  /** Every spelling, e.g. `["-s", "--spread"]`. */
  readonly names: ReadonlyArray<string>
  /**
   * `"string"` (takes a value), `"int"` (a whole number ≥ 0, within `min` and
   * `max`), `"bool"` (takes no value; sets `true`, or `constant`),
   * `"optional"` (a string value that may be left out; then `true`) or
   * `"list"` (a string value that may be given again: every one is kept, in
   * order).
   */
  readonly kind: "string" | "int" | "bool" | "optional" | "list"
  /** The key in the result. Several flags may share one key; the last one given wins. */
  readonly key: string
  /** One line for `--help`. */
  readonly help: string
  /** Placeholder for the value in `--help`. */
  readonly value?: string
  /** Smallest value of an `"int"` flag (default 0). */
  readonly min?: number
  /** Largest value of an `"int"` flag (default `Number.MAX_SAFE_INTEGER`). */
  readonly max?: number
  /** The values a `"string"` flag accepts. */
  readonly choices?: ReadonlyArray<string>
  /** What a `"bool"` flag sets (default `true`). */
  readonly constant?: string | number | boolean
  /** Checks a `"string"` value: the problem, or `undefined` when it is fine. */
  readonly check?: (value: string) => string | undefined
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
  /** The value of every flag given, by key (every value of a `"list"` flag). */
  readonly values: ReadonlyMap<string, string | number | boolean | ReadonlyArray<string>>
  /** `-h` or `--help` was given. */
  readonly help: boolean
}

const isHelp = (arg: string): boolean => arg === "-h" || arg === "--help"

/** Edits (insert, delete, substitute, swap two neighbours) between `a` and `b`. */
const distance = (a: string, b: string): number => {
  const d: Array<Array<number>> = Array.from({ length: a.length + 1 }, (_, i) => [i])
  for (let j = 1; j <= b.length; j++) d[0][j] = j
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1)
      }
    }
  }
  return d[a.length][b.length]
}

/**
 * The flag of `specs` closest to the unknown `name`, when one is close
 * enough to be a slip (at most two edits, and fewer than half the letters of
 * the name): `--prot` → `--port`. Single letters get no guess.
 *
 * @since 0.2.0
 * @category parsing
 */
export const closestFlag = (name: string, specs: ReadonlyArray<FlagSpec>): string | undefined => {
  const letters = name.replace(/^-+/, "").length
  let best: { readonly name: string; readonly d: number } | undefined
  for (const candidate of [...specs.flatMap((s) => s.names), "--help"]) {
    const d = distance(name, candidate)
    if (d <= 2 && d * 2 < letters && (best === undefined || d < best.d)) best = { name: candidate, d }
  }
  return best?.name
}

/**
 * Parses `argv` against `specs`. `-h` and `--help` set `help`, wherever they
 * are; every other problem is a `UsageError` for the first bad argument.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseFlags = (argv: ReadonlyArray<string>, specs: ReadonlyArray<FlagSpec>): Parsed | UsageError => {
  if (argv.some(isHelp)) return { values: new Map(), help: true }
  const values = new Map<string, string | number | boolean | ReadonlyArray<string>>()
  const specOf = (name: string): FlagSpec | undefined => specs.find((s) => s.names.includes(name))
  const bad = (detail: string) => new UsageError({ detail })
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    const eq = arg.startsWith("--") ? arg.indexOf("=") : -1
    const name = eq > 0 ? arg.slice(0, eq) : arg
    const inline = eq > 0 ? arg.slice(eq + 1) : undefined
    const spec = specOf(name)
    if (spec === undefined) {
      if (!arg.startsWith("-")) return bad(`unexpected argument "${arg}"`)
      const guess = closestFlag(name, specs)
      return bad(guess === undefined ? `unknown flag "${name}"` : `unknown flag "${name}" (did you mean "${guess}"?)`)
    }
    // The next argument, unless it is one of this tool's flags.
    const next = (): string | undefined => {
      const n = argv[i + 1]
      if (n === undefined || specOf(n.startsWith("--") && n.includes("=") ? n.slice(0, n.indexOf("=")) : n)) {
        return undefined
      }
      i++
      return n
    }
    switch (spec.kind) {
      case "bool": {
        if (inline !== undefined) return bad(`${name} takes no value`)
        values.set(spec.key, spec.constant ?? true)
        break
      }
      case "optional": {
        if (inline === "") return bad(`${name}= needs a ${spec.value ?? "value"}`)
        const raw = inline ?? (argv[i + 1]?.startsWith("-") ? undefined : next())
        values.set(spec.key, raw ?? true)
        break
      }
      case "int": {
        const raw = inline ?? next()
        if (raw === undefined) return bad(`${name} needs a value`)
        const min = spec.min ?? 0
        const max = spec.max ?? Number.MAX_SAFE_INTEGER
        const n = Number(raw)
        if (!/^\d+$/.test(raw) || !Number.isSafeInteger(n) || n < min || n > max) {
          const range = max === Number.MAX_SAFE_INTEGER ? `of at least ${min}` : `from ${min} to ${max}`
          return bad(`${name} takes a whole number ${range}, not "${raw}"`)
        }
        values.set(spec.key, n)
        break
      }
      case "list": {
        const raw = inline ?? next()
        if (raw === undefined || raw.length === 0) return bad(`${name} needs a value`)
        const problem = spec.check?.(raw)
        if (problem !== undefined) return bad(`${name}: ${problem}`)
        const before = values.get(spec.key)
        values.set(spec.key, [...(Array.isArray(before) ? before : []), raw])
        break
      }
      case "string": {
        const raw = inline ?? next()
        if (raw === undefined || raw.length === 0) return bad(`${name} needs a value`)
        if (spec.choices !== undefined && !spec.choices.includes(raw)) {
          const list = spec.choices.slice(0, -1).join(", ") + ` or ${spec.choices[spec.choices.length - 1]}`
          return bad(`${name} takes ${list}, not "${raw}"`)
        }
        const problem = spec.check?.(raw)
        if (problem !== undefined) return bad(`${name}: ${problem}`)
        values.set(spec.key, raw)
        break
      }
    }
  }
  return { values, help: false }
}

const placeholder = (s: FlagSpec): string => {
  switch (s.kind) {
    case "bool":
      return ""
    case "optional":
      return ` [${s.value ?? "value"}]`
    default:
      return ` ${s.value ?? s.kind}`
  }
}

/**
 * The short usage line printed after a usage error: every flag in one line.
 *
 * @since 0.1.0
 * @category formatting
 */
export const usageLine = (tool: string, specs: ReadonlyArray<FlagSpec>): string =>
  `Usage: deno task ${tool} ${specs.map((s) => `[${s.names[0]}${placeholder(s)}]`).join(" ")}\n` +
  `(deno task ${tool} --help describes every flag)`

/**
 * The `--help` text: a usage line, a description and one line per flag.
 *
 * @since 0.1.0
 * @category formatting
 */
export const usage = (tool: string, about: string, specs: ReadonlyArray<FlagSpec>): string => {
  const rows: ReadonlyArray<readonly [string, string]> = [
    ...specs.map((s) => [s.names.join(", ") + placeholder(s), s.help] as const),
    ["-h, --help", "print this text and exit"],
  ]
  // One column for the flags, as wide as the widest, and two spaces before every description.
  const width = Math.max(...rows.map(([flag]) => flag.length))
  return [
    `Usage: deno task ${tool} [flags]`,
    "",
    about,
    "",
    "Flags:",
    ...rows.map(([flag, help]) => `  ${flag.padEnd(width)}  ${help}`),
  ].join("\n")
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
 * Every value of a `"list"` flag, in the order given.
 *
 * @since 0.1.0
 * @category getters
 */
export const list = (p: Parsed, key: string): ReadonlyArray<string> => {
  const v = p.values.get(key)
  return Array.isArray(v) ? v : []
}

/**
 * A boolean flag.
 *
 * @since 0.1.0
 * @category getters
 */
export const bool = (p: Parsed, key: string): boolean => p.values.get(key) === true

/**
 * The usage error as printed: the tool, what is wrong, and the short usage
 * line.
 *
 * @since 0.1.0
 * @category formatting
 */
export const usageError = (tool: string, specs: ReadonlyArray<FlagSpec>, detail: string): string =>
  `${tool}: ${detail}\n${usageLine(tool, specs)}`

/**
 * Parses `argv` and runs `run` with the flags. `--help` prints the full help
 * on stdout and answers 0; a bad flag prints what is wrong and the short
 * usage line on stderr and answers 2, as does a `fail(detail)` from `run` for
 * a bad combination of flags.
 *
 * @since 0.1.0
 * @category running
 */
export const withFlags = <E = never>(
  tool: string,
  about: string,
  specs: ReadonlyArray<FlagSpec>,
  argv: ReadonlyArray<string>,
  run: (flags: Parsed, fail: (detail: string) => Effect.Effect<number>) => Effect.Effect<number, E>,
): Effect.Effect<number, E> => {
  const fail = (detail: string) => Effect.as(Console.error(usageError(tool, specs, detail)), 2)
  const parsed = parseFlags(argv, specs)
  if (parsed instanceof UsageError) return fail(parsed.message)
  if (parsed.help) return Effect.as(Console.log(usage(tool, about, specs)), 0)
  return run(parsed, fail)
}

/**
 * The problem with a private name given with `-u`, checked before anything
 * is sent (at most 10 bytes in `$`..`~`), or `undefined`.
 *
 * @since 0.1.0
 * @category parsing
 */
export const privateNameProblem = (name: string): string | undefined => validatePrivateName(name)?.detail

/**
 * The `-u`/`--user` flag of the client tools: a private name, checked with
 * {@link privateNameProblem}.
 *
 * @since 0.2.0
 * @category parsing
 */
export const userFlag: FlagSpec = {
  names: ["-u", "--user"],
  kind: "string",
  key: "user",
  help: "private name, at most 10 bytes (default: random)",
  value: "name",
  check: privateNameProblem,
}
