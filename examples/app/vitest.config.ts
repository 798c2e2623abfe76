import { defineConfig } from "vitest/config"

// Nothing about spreadfx here: no alias, no dedupe. Vitest resolves
// "@spreadfx/spreadfx" the Node way, through the package's package.json
// "exports" (the same entry points as its deno.json), and finds one copy of
// effect in the one node_modules. This file only keeps vitest from taking the
// library's own vitest.config.ts from the folder above.
export default defineConfig({
  test: {
    include: ["tests/**/*.test.ts"],
  },
})
