/**
 * What a dependent project resolves: the library's entry points are the same
 * for Deno (deno.json "exports") and for Node-style resolvers such as vitest's
 * (package.json "exports"), and the library's imports name only what its
 * published code needs, never a tool of its own tests or benchmarks.
 */
import { describe, expect, it } from "@effect/vitest"

const ROOT = new URL("../../", import.meta.url)
const read = (file: string) => JSON.parse(Deno.readTextFileSync(new URL(file, ROOT)))

describe("package", () => {
  it("package.json names the package and exports the entry points deno.json exports", () => {
    const deno = read("deno.json")
    const npm = read("package.json")
    expect(npm.name).toBe(deno.name)
    expect(npm.exports).toEqual(deno.exports)
  })

  it("deno.json imports only the published code's dependencies (no vitest, no NATS client)", () => {
    expect(Object.keys(read("deno.json").imports).sort()).toEqual(["@effect/platform", "effect"])
    expect(Object.keys(read("package.json").dependencies).sort()).toEqual(["@effect/platform", "effect"])
  })

  it("the example app is a workspace member with no node_modules or lockfile of its own", () => {
    expect(read("deno.json").workspace).toContain("./examples/app")
    const app = read("examples/app/deno.json")
    expect(app.imports["@spreadfx/spreadfx"]).toBeUndefined() // resolved through the workspace, by name
    // One node_modules (the root's): one copy of effect for the app, its tests and the library.
    for (const own of ["node_modules/effect", "deno.lock", "package.json"]) {
      expect(() => Deno.statSync(new URL(`examples/app/${own}`, ROOT))).toThrow()
    }
  })
})
