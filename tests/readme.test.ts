/**
 * The README's TypeScript examples, pasted as they stand: every ```ts block
 * is written to a file of its own, with the package's name pointing at this
 * checkout (through deno.json's `name` and `exports`, as `deno add` would
 * resolve it), and type-checked. A snippet that names something the package
 * does not export, or uses it wrongly, fails here. `Deno.Command`, not
 * `@effect/platform`'s `Command`, for the reason tests/cli/tools.test.ts gives.
 */
import { describe, expect, it } from "@effect/vitest"

const ROOT = new URL("../", import.meta.url)

/** The README's ```ts blocks, each with the package's specifiers made file URLs. */
const readmeBlocks = (): ReadonlyArray<string> => {
  const readme = Deno.readTextFileSync(new URL("README.md", ROOT))
  const config = JSON.parse(Deno.readTextFileSync(new URL("deno.json", ROOT))) as {
    name: string
    exports: Record<string, string>
  }
  // Longest first, so "@spreadfx/spreadfx/daemon" is not taken for "@spreadfx/spreadfx".
  const specifiers = Object.entries(config.exports)
    .map(([sub, file]) => [config.name + sub.slice(1), new URL(file, ROOT).href] as const)
    .sort((a, b) => b[0].length - a[0].length)
  return [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map(([, code]) =>
    specifiers.reduce((text, [name, url]) => text.replaceAll(`"${name}"`, `"${url}"`), code)
  )
}

describe("README", () => {
  it("every TypeScript example type-checks as written, against this checkout", async () => {
    const blocks = readmeBlocks()
    expect(blocks.length).toBeGreaterThan(5)
    const dir = await Deno.makeTempDir({ prefix: "spreadfx-readme-" })
    try {
      const files = blocks.map((code, i) => {
        const file = `${dir}/example_${String(i).padStart(2, "0")}.ts`
        Deno.writeTextFileSync(file, code)
        return file
      })
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["check", "--quiet", "--config", new URL("deno.json", ROOT).pathname, ...files],
        cwd: ROOT.pathname,
        env: { NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output()
      const report = new TextDecoder().decode(out.stderr)
      // On failure the report names the example file and line; the blocks are numbered in README order.
      expect(report).toBe("")
      expect(out.success).toBe(true)
    } finally {
      await Deno.remove(dir, { recursive: true })
    }
  }, 60_000)
})
