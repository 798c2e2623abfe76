/**
 * The one flag parser of the tools (src/cli/args.ts).
 */
import { describe, expect, it } from "@effect/vitest"
import { type FlagSpec, parseFlags, usage, UsageError, usageLine } from "../../src/cli/args.ts"

const SPECS: ReadonlyArray<FlagSpec> = [
  { names: ["-s", "--spread"], kind: "string", key: "spread", help: "daemon", value: "address" },
  { names: ["-m"], kind: "int", key: "m", min: 1, max: 100, help: "messages", value: "n" },
  { names: ["-ro"], kind: "bool", key: "ro", help: "read only" },
  { names: ["-wo"], kind: "bool", key: "wo", help: "write only" },
  { names: ["--unix"], kind: "optional", key: "unix", help: "socket", value: "path" },
  { names: ["--no-unix"], kind: "bool", key: "unix", constant: false, help: "no socket" },
  { names: ["--level"], kind: "string", key: "level", choices: ["low", "mid", "high"], help: "level" },
  {
    names: ["-u"],
    kind: "string",
    key: "u",
    help: "name",
    check: (v) => v.length > 3 ? `"${v}" is longer than 3` : undefined,
  },
]

const detail = (argv: ReadonlyArray<string>): string => {
  const r = parseFlags(argv, SPECS)
  return r instanceof UsageError ? r.detail : "parsed"
}

describe("parseFlags", () => {
  it("parseFlags reads Spread's multi-letter single-dash flags whole, not as clusters", () => {
    const r = parseFlags(["-ro", "-s", "4803@h", "-m", "7"], SPECS)
    expect(r).not.toBeInstanceOf(UsageError)
    if (r instanceof UsageError) return
    expect(Object.fromEntries(r.values)).toEqual({ ro: true, spread: "4803@h", m: 7 })
    expect(detail(["-r"])).toBe('unknown flag "-r"')
  })

  it("parseFlags takes --flag=value and lets the last of flags sharing a key win", () => {
    const r = parseFlags(["--spread=/tmp/x", "--no-unix", "--unix"], SPECS)
    if (r instanceof UsageError) throw r
    expect(Object.fromEntries(r.values)).toEqual({ spread: "/tmp/x", unix: true })
    const off = parseFlags(["--unix", "/tmp/s", "--no-unix"], SPECS)
    if (off instanceof UsageError) throw off
    expect(off.values.get("unix")).toBe(false)
    const path = parseFlags(["--unix", "/tmp/s", "-ro"], SPECS)
    if (path instanceof UsageError) throw path
    expect(path.values.get("unix")).toBe("/tmp/s")
  })

  it("parseFlags answers help for -h or --help anywhere, even after a bad flag", () => {
    expect(parseFlags(["--bogus", "--help"], SPECS)).toEqual({ values: new Map(), help: true })
    expect(parseFlags(["-m", "5", "-h"], SPECS)).toEqual({ values: new Map(), help: true })
  })

  it("parseFlags names every problem with one message style", () => {
    expect(detail(["--bogus"])).toBe('unknown flag "--bogus"')
    expect(detail(["--bogus=3"])).toBe('unknown flag "--bogus"')
    expect(detail(["extra"])).toBe('unexpected argument "extra"')
    expect(detail(["-s"])).toBe("-s needs a value")
    expect(detail(["-s", "-ro"])).toBe("-s needs a value")
    expect(detail(["-m", "0"])).toBe('-m takes a whole number from 1 to 100, not "0"')
    expect(detail(["-m", "101"])).toBe('-m takes a whole number from 1 to 100, not "101"')
    expect(detail(["-m", "2.5"])).toBe('-m takes a whole number from 1 to 100, not "2.5"')
    expect(detail(["--no-unix=1"])).toBe("--no-unix takes no value")
    expect(detail(["--unix="])).toBe("--unix= needs a path")
    expect(detail(["--level", "max"])).toBe('--level takes low, mid or high, not "max"')
    expect(detail(["-u", "long"])).toBe('-u: "long" is longer than 3')
    expect(detail(["-u", "abc", "-m", "100"])).toBe("parsed")
  })

  it("usageLine lists every flag on one line and points at --help", () => {
    expect(usageLine("tool", SPECS).split("\n")).toEqual([
      "Usage: deno task tool [-s address] [-m n] [-ro] [-wo] [--unix [path]] [--no-unix] [--level string] [-u string]",
      "(deno task tool --help describes every flag)",
    ])
  })

  it("parseFlags guesses the flag meant when an unknown one is a slip, and only then", () => {
    expect(detail(["--sprad", "x"])).toBe('unknown flag "--sprad" (did you mean "--spread"?)')
    expect(detail(["--levle", "low"])).toBe('unknown flag "--levle" (did you mean "--level"?)') // a swap is one edit
    expect(detail(["--unxi"])).toBe('unknown flag "--unxi" (did you mean "--unix"?)')
    expect(detail(["--hlep"])).toBe('unknown flag "--hlep" (did you mean "--help"?)')
    expect(detail(["-x"])).toBe('unknown flag "-x"') // one letter: no guess
    expect(detail(["--bogus"])).toBe('unknown flag "--bogus"') // nothing close
  })

  it("usage aligns every description in one column, two spaces after the widest flag", () => {
    const specs: ReadonlyArray<FlagSpec> = [
      { names: ["--port"], kind: "int", key: "port", value: "n", help: "TCP port" },
      {
        names: ["--udp-ingress"],
        kind: "list",
        key: "udp",
        value: "[host:]port:group",
        help: "datagrams into a group",
      },
    ]
    expect(usage("daemon", "About.", specs).split("\n").slice(5)).toEqual([
      "  --port n                         TCP port",
      "  --udp-ingress [host:]port:group  datagrams into a group",
      "  -h, --help                       print this text and exit",
    ])
  })
})
