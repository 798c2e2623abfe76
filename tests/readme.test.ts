/**
 * The README's examples, as pasted. Every ```ts block is written, unchanged,
 * to a file in a scratch folder of the clone (where `@spreadfx/spreadfx`
 * resolves by name through deno.json, as the README's first program says),
 * type-checked, and run with the permissions the README gives: each must
 * exit 0 within its timeout having printed something, with nothing on
 * stderr. A block that installs signal listeners (the long-lived service) is
 * stopped with SIGTERM and with SIGINT once ready, and must exit 0. The
 * @effect/vitest block must be the example app's tests/echo.test.ts, which
 * the app's own test run executes. The ```ts blocks of docs/*.md are
 * type-checked. The relay's shell commands run as pasted, next to this
 * clone, and must leave it unchanged. `Deno.Command`, not
 * `@effect/platform`'s `Command`, for the reason tests/cli/tools.test.ts gives.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"

const ROOT = new URL("../", import.meta.url)
const RUN = ["run", "--allow-net", "--allow-read", "--allow-write", "--allow-env"]
/** A clean environment: no SPREAD_* setting of the machine reaches a block. */
const ENV = { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", HOME: Deno.env.get("HOME") ?? "/tmp", NO_COLOR: "1" }

const blocksOf = (file: string, lang = "ts"): ReadonlyArray<string> =>
  [...Deno.readTextFileSync(new URL(file, ROOT)).matchAll(new RegExp("^ *```" + lang + "\\n([\\s\\S]*?)^ *```", "gm"))]
    .map(([, code]) => code)

const readme = blocksOf("README.md")
const isTest = (code: string) => code.includes(`from "@effect/vitest"`)
const isService = (code: string) => code.includes("Deno.addSignalListener")

let dir = ""
const fileOf = (i: number) => `${dir}/readme_${String(i).padStart(2, "0")}.ts`

/** Runs `args` with Deno; with `stopWith`, sends that signal once stdout shows `ready`. */
const run = async (args: ReadonlyArray<string>, timeoutMs: number, stopWith?: Deno.Signal) => {
  const child = new Deno.Command(Deno.execPath(), {
    args: [...args],
    cwd: ROOT.pathname,
    env: ENV,
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).spawn()
  let stdout = ""
  const decoder = new TextDecoder()
  const pump = (async () => {
    for await (const chunk of child.stdout) {
      stdout += decoder.decode(chunk, { stream: true })
      if (stopWith !== undefined && stdout.includes("ready")) child.kill(stopWith)
    }
  })()
  const stderr = new Response(child.stderr).text()
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs)
  const status = await child.status
  clearTimeout(timer)
  await pump
  return { code: status.code, signal: status.signal, stdout, stderr: await stderr }
}

describe("README", () => {
  beforeAll(() => {
    dir = Deno.makeTempDirSync({ dir: ROOT.pathname, prefix: ".readme-run-" })
    readme.forEach((code, i) => Deno.writeTextFileSync(fileOf(i), code))
  })
  afterAll(() => Deno.removeSync(dir, { recursive: true }))

  it("every TypeScript block of the README and of docs/ type-checks as written", async () => {
    expect(readme.length).toBeGreaterThan(8)
    const docs = [...Deno.readDirSync(new URL("docs/", ROOT))].filter((e) => e.name.endsWith(".md"))
      .flatMap((e) => blocksOf(`docs/${e.name}`))
    docs.forEach((code, i) => Deno.writeTextFileSync(`${dir}/docs_${String(i).padStart(2, "0")}.ts`, code))
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["check", "--quiet", dir],
      cwd: ROOT.pathname,
      env: ENV,
      stdout: "piped",
      stderr: "piped",
    }).output()
    // On failure the report names the block's file and line; blocks are numbered in order.
    expect(new TextDecoder().decode(out.stderr)).toBe("")
    expect(out.success).toBe(true)
  }, 90_000)

  it("no block names a daemon it did not start (nothing reaches a stranger's daemon on 4803)", () => {
    // Code, not comments: a string that is a port ("4803") or a Spread name ("4803@host") would be an address.
    for (const code of readme) expect(code.replace(/\/\/.*$/gm, "")).not.toMatch(/["'`]\d+(@[\w.-]+)?["'`]/)
  })

  it("the @effect/vitest block is the example app's tests/echo.test.ts, which the app's test run executes", () => {
    const tests = readme.filter(isTest)
    expect(tests).toHaveLength(1)
    expect(tests[0]).toBe(Deno.readTextFileSync(new URL("examples/app/tests/echo.test.ts", ROOT)))
  })

  readme.forEach((code, i) => {
    if (isTest(code) || isService(code)) return
    const first = code.split("\n").find((l) => l.startsWith("const ") || l.startsWith("// ")) ?? ""
    it(`block ${i} runs as pasted and exits 0 (${first.slice(0, 60)})`, async () => {
      const r = await run([...RUN, fileOf(i)], 25_000)
      expect(r.stderr).toBe("")
      expect(r.code).toBe(0)
      expect(r.stdout.trim()).not.toBe("")
    }, 30_000)
  })

  it("the long-lived service block stops on SIGTERM and on SIGINT, closing its scope, and exits 0", async () => {
    const i = readme.findIndex(isService)
    expect(i).toBeGreaterThanOrEqual(0)
    for (const signal of ["SIGTERM", "SIGINT"] as const) {
      const r = await run([...RUN, fileOf(i)], 20_000, signal)
      expect(r.stderr).toBe("")
      expect(r.stdout).toContain("ready")
      expect(r.stdout).toContain("stopping")
      expect(r.code).toBe(0)
    }
  }, 45_000)
})

describe("README relay commands", () => {
  it(
    "the certificate commands write under a temporary folder, and the daemon and TLS reader commands run as pasted",
    async () => {
      const sh = blocksOf("README.md", "sh")
      const certs = sh.find((b) => b.includes("openssl req -x509"))
      const daemon = sh.find((b) => b.startsWith("deno task daemon") && b.includes("--tls-port"))
      const reader = sh.find((b) => b.startsWith("deno task user") && b.includes("--tls-cert"))
      expect(certs).toBeDefined()
      expect(daemon).toBeDefined()
      expect(reader).toBeDefined()
      if (certs === undefined || daemon === undefined || reader === undefined) return
      expect(daemon).toMatch(/--port (\d+)/)
      expect(daemon).not.toMatch(/--port 4803\b/)
      const hasOpenssl = await new Deno.Command("openssl", { args: ["version"], stdout: "null", stderr: "null" })
        .output().then((o) => o.success, () => false)
      if (!hasOpenssl) {
        console.log("skipped: no openssl on this machine")
        return
      }
      const status = () =>
        new Deno.Command("git", { args: ["status", "--porcelain"], cwd: ROOT.pathname, stdout: "piped" }).outputSync()
          .stdout
      const before = new TextDecoder().decode(status())
      // "Next to a daemon already running on 4803": one of ours if the port is free (if it is taken, someone's is).
      const neighbour = new Deno.Command(Deno.execPath(), {
        args: [...RUN, "src/cli/daemon.ts", "--port", "4803", "--no-unix"],
        cwd: ROOT.pathname,
        env: ENV,
        clearEnv: true,
        stdout: "null",
        stderr: "null",
      }).spawn()
      // `deno task` as the README's reader types it, with this Deno.
      const script = [
        "set -e",
        certs,
        'ls "$RELAY" > "$OUT/files"',
        `${daemon.trim()} > "$OUT/daemon.out" 2>&1 &`,
        "pid=$!",
        'for _ in $(seq 100); do grep -q "UDP" "$OUT/daemon.out" && break; sleep 0.1; done',
        `printf 'q\\n' | ${reader.trim()} > "$OUT/user.out" 2>&1 || true`,
        'kill -TERM "$pid"; code=0; wait "$pid" || code=$?; echo "daemon exit $code" >> "$OUT/daemon.out"',
      ].join("\n")
      const out = Deno.makeTempDirSync({ prefix: "spreadfx-relay-" })
      // `deno` on PATH is this Deno, as for a reader who has one.
      Deno.mkdirSync(`${out}/bin`)
      Deno.symlinkSync(Deno.execPath(), `${out}/bin/deno`)
      try {
        const r = await new Deno.Command("bash", {
          args: ["-c", script],
          cwd: ROOT.pathname,
          env: { ...ENV, OUT: out, PATH: `${out}/bin:${ENV.PATH}` },
          clearEnv: true,
          stdout: "piped",
          stderr: "piped",
        }).output()
        const read = (f: string) => Deno.readTextFileSync(`${out}/${f}`)
        expect(r.success, new TextDecoder().decode(r.stderr)).toBe(true)
        expect(read("files").trim().split("\n").sort()).toEqual(
          [
            "ca.key",
            "ca.pem",
            "ca.srl",
            "reader.csr",
            "reader.key",
            "reader.pem",
            "server.csr",
            "server.key",
            "server.pem",
          ],
        )
        expect(read("daemon.out")).toContain("TLS sessions on 4843@127.0.0.1 (client certificates required)")
        expect(read("daemon.out")).toContain("daemon exit 0")
        expect(read("user.out")).toMatch(/connected to 4843@127\.0\.0\.1 with private group #tail#/)
        expect(new TextDecoder().decode(status())).toBe(before)
      } finally {
        try {
          neighbour.kill("SIGTERM")
        } catch {
          // it had already exited: 4803 was taken
        }
        await neighbour.status
        Deno.removeSync(out, { recursive: true })
      }
    },
    60_000,
  )
})
