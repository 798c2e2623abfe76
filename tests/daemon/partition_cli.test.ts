/**
 * Partition controls from the `daemon` command: `--virtual` and
 * `--partition-control` (commands on stdin), in a separate process, with
 * clients on real sockets; and the parsers of those texts.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { parseControlLine, parseVirtualDaemon } from "../../src/daemon/network/control.ts"
import { decodeServerMessage, ServiceBits } from "../../src/protocol/mod.ts"
import { RawClient } from "../_helpers/raw_client.ts"
import { joinNow } from "./_fixtures.ts"

const CLI = new URL("../../src/cli/daemon.ts", import.meta.url).pathname

describe("partition control texts", () => {
  it("parseControlLine reads partition, heal and components, and quotes what it cannot read", () => {
    expect(parseControlLine("partition a | b c")).toEqual({ _tag: "Partition", components: [["a"], ["b", "c"]] })
    expect(parseControlLine("  split a,b|c  # comment")).toEqual({ _tag: "Partition", components: [["a", "b"], ["c"]] })
    expect(parseControlLine("heal")).toEqual({ _tag: "Heal" })
    expect(parseControlLine("components")).toEqual({ _tag: "Components" })
    expect(parseControlLine("   ")).toEqual({ _tag: "Empty" })
    expect(parseControlLine("partition a | | b")._tag).toBe("Invalid")
    expect(parseControlLine("heal now")).toEqual({ _tag: "Invalid", message: `"heal" takes no arguments` })
    expect(parseControlLine("explode")).toEqual({
      _tag: "Invalid",
      message: `unknown command "explode" (partition A | B C, heal, components)`,
    })
  })

  it("parseVirtualDaemon reads NAME[:PORT[:PROCID]]", () => {
    expect(parseVirtualDaemon("b")).toEqual({ name: "b", port: 0 })
    expect(parseVirtualDaemon("b:4804")).toEqual({ name: "b", port: 4804 })
    expect(parseVirtualDaemon("b:0:-280616338")).toEqual({ name: "b", port: 0, procId: -280616338 })
    expect(parseVirtualDaemon("b:70000")).toBe(`--virtual "b:70000": port "70000" is not 0..65535`)
    expect(parseVirtualDaemon(":1")).toBe(`--virtual ":1" is not NAME[:PORT[:PROCID]]`)
  })
})

describe("daemon command with --partition-control", () => {
  it.scoped(
    "daemon --virtual b --partition-control splits and merges on stdin commands",
    () =>
      Effect.gen(function* () {
        const child = yield* Effect.acquireRelease(
          Effect.sync(() =>
            new Deno.Command(Deno.execPath(), {
              args: [
                "run",
                "-A",
                CLI,
                "--port",
                "0",
                "--no-unix",
                "--name",
                "a",
                "--virtual",
                "b",
                "--partition-control",
              ],
              stdin: "piped",
              stdout: "piped",
              stderr: "null",
            }).spawn()
          ),
          (c) =>
            Effect.promise(async () => {
              try {
                c.kill("SIGKILL")
              } catch { /* gone */ }
              await c.status
            }),
        )
        const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader()
        let buffered = ""
        const line = (match: RegExp) =>
          Effect.promise(async () => {
            for (;;) {
              const found = buffered.split("\n").find((l) => match.test(l))
              if (found !== undefined) {
                buffered = buffered.slice(buffered.indexOf(found) + found.length)
                return found
              }
              const r = await lines.read()
              if (r.done) throw new Error(`daemon stdout ended before ${match}: ${buffered}`)
              buffered += r.value
            }
          })
        const stdin = child.stdin.getWriter()
        const say = (text: string) => Effect.promise(() => stdin.write(new TextEncoder().encode(text + "\n")))
        const portOf = (l: string) => Number(/listening on (\d+)@/.exec(l)?.[1])
        const a = portOf(yield* line(/daemon a listening on/))
        const b = portOf(yield* line(/daemon b listening on/))
        const x = yield* RawClient.connect({ _tag: "Tcp", hostname: "127.0.0.1", port: a }, { name: "x" })
        const y = yield* RawClient.connect({ _tag: "Tcp", hostname: "127.0.0.1", port: b }, { name: "y" })
        expect(y.privateGroup).toBe("#y#b")
        yield* joinNow(x, "g")
        yield* joinNow(y, "g")
        yield* x.frame()
        yield* say("partition a | b")
        expect(yield* line(/^components:/)).toBe("components: a | b")
        const [t, m] = yield* x.frames(2, 10_000)
        expect(t.type & ServiceBits.TRANSITION_MESS).not.toBe(0)
        const mm = decodeServerMessage(m)
        expect(mm._tag === "Membership" && mm.members).toEqual(["#x#a"])
        yield* say("heal")
        expect(yield* line(/^components:/)).toBe("components: a b")
        // y: the transitional signal and itself alone, then the merge.
        const ys = yield* y.frames(3, 10_000)
        const merged = decodeServerMessage(ys[2])
        expect(merged._tag === "Membership" && merged.members).toEqual(["#x#a", "#y#b"])
      }),
    60_000,
  )
})
