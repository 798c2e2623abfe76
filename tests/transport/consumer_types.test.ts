/**
 * No Node types in what a consumer type-checks: an app that maps the
 * library's entry points and has only `effect` and `@effect/platform` (with
 * their own dependencies) in its node_modules — no `@types/node` — passes
 * `deno check`. The repository's node_modules holds `@types/node`, so the
 * app is built in a temporary directory with a node_modules of its own
 * (symlinks to the packages it needs, nothing else) and a copy of the
 * library's published files (mod.ts and src/), as `deno add` would give it.
 * A control file that imports `node:tls` must fail there, which shows Node's
 * types are really out of reach.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"

const root = new URL("../../", import.meta.url).pathname
const modules = `${root}node_modules`

// The packages `names` need, from their package.json `dependencies`.
const closure = (names: ReadonlyArray<string>): Set<string> => {
  const seen = new Set<string>()
  const visit = (name: string) => {
    if (seen.has(name)) return
    seen.add(name)
    const pkg = JSON.parse(Deno.readTextFileSync(`${modules}/${name}/package.json`)) as {
      dependencies?: Record<string, string>
    }
    for (const dep of Object.keys(pkg.dependencies ?? {})) visit(dep)
  }
  names.forEach(visit)
  return seen
}

const app = `import { Effect, Schema, Stream } from "effect"
import { connect, isRegular, json, text } from "@spreadfx/spreadfx"
import * as Daemon from "@spreadfx/spreadfx/daemon"
import { encodeFrame } from "@spreadfx/spreadfx/protocol"
import * as Testing from "@spreadfx/spreadfx/testing"

const Order = Schema.Struct({ id: Schema.Number })
export const program = Effect.scoped(Effect.gen(function* () {
  const spread = yield* connect({ daemon: "4803@127.0.0.1", name: "app", tls: { serverName: "spread.internal" } })
  yield* spread.join("orders")
  yield* spread.messages.pipe(Stream.filter(isRegular), Stream.take(1), Stream.runForEach((m) => Effect.log(text(m))))
}))
export const used = [json(Order), Daemon.make, encodeFrame, Testing]
`

const run = (cwd: string, file: string) =>
  Effect.promise(() =>
    new Deno.Command(Deno.execPath(), { args: ["check", "--quiet", file], cwd, stdout: "piped", stderr: "piped" })
      .output()
  ).pipe(Effect.map((o) => ({ code: o.code, output: new TextDecoder().decode(o.stderr) })))

describe("Consumer type check", () => {
  it.scopedLive(
    "an app importing every entry point type-checks with no @types/node in reach",
    () =>
      Effect.gen(function* () {
        const dir = yield* Effect.acquireRelease(
          Effect.sync(() => Deno.makeTempDirSync({ prefix: "spreadfx-consumer-" })),
          (d) => Effect.sync(() => Deno.removeSync(d, { recursive: true })),
        )
        const needed = closure(["effect", "@effect/platform"])
        expect(needed.has("@types/node")).toBe(false)
        for (const name of needed) {
          const at = `${dir}/node_modules/${name}`
          Deno.mkdirSync(at.slice(0, at.lastIndexOf("/")), { recursive: true })
          Deno.symlinkSync(`${modules}/${name}`, at)
        }
        Deno.mkdirSync(`${dir}/lib`)
        Deno.copyFileSync(`${root}mod.ts`, `${dir}/lib/mod.ts`)
        yield* Effect.promise(() => new Deno.Command("cp", { args: ["-r", `${root}src`, `${dir}/lib/src`] }).output())
        const exports = JSON.parse(Deno.readTextFileSync(`${root}deno.json`)).exports as Record<string, string>
        const imports: Record<string, string> = {
          effect: "npm:effect@^3.22.0",
          "@effect/platform": "npm:@effect/platform@^0.97.0",
        }
        for (const [k, v] of Object.entries(exports)) {
          imports[k === "." ? "@spreadfx/spreadfx" : `@spreadfx/spreadfx/${k.slice(2)}`] = `./lib/${v.slice(2)}`
        }
        Deno.writeTextFileSync(`${dir}/deno.json`, JSON.stringify({ nodeModulesDir: "manual", imports }, null, 2))
        Deno.writeTextFileSync(
          `${dir}/package.json`,
          JSON.stringify({ private: true, dependencies: { effect: "^3.22.0", "@effect/platform": "^0.97.0" } }),
        )
        Deno.writeTextFileSync(`${dir}/app.ts`, app)
        Deno.writeTextFileSync(`${dir}/control.ts`, `import tls from "node:tls"\nexport const t = tls\n`)

        const control = yield* run(dir, "control.ts")
        expect(control.code).not.toBe(0)
        expect(control.output).toContain("@types/node")

        const checked = yield* run(dir, "app.ts")
        expect(checked.output).toBe("")
        expect(checked.code).toBe(0)
      }),
    120_000,
  )
})
