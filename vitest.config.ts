import { defineConfig } from "vitest/config"

// Tests run under Deno (`deno task test`). The summary reporter prints one
// plain "N passed, N failed, N skipped" line that CI reads.
export default defineConfig({
  test: {
    include: ["tests/**/*.test.ts"],
    reporters: ["default", "./tests/_helpers/summary_reporter.ts"],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    pool: "forks",
  },
})
