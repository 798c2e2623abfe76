/**
 * `deno task daemon` on both install paths, stopped by a signal:
 *
 * - after `npm ci` there is no node_modules/.bin (.npmrc: bin-links=false),
 *   and the task's `deno` is the Deno running the task;
 * - after `deno install` there is node_modules/.bin/deno, the npm package's
 *   JavaScript shim (bin.cjs), which `deno task` prefers for a bare `deno`:
 *   a task that ran its command through it was three processes, and SIGTERM
 *   to the task killed the shim and orphaned the daemon, still listening.
 *
 * The second path is laid out in a scratch folder (the repository's files
 * and node_modules entries linked, plus .bin/deno pointing at the shim), so
 * the test needs no network and leaves the clone as it is. Each run sends
 * SIGTERM or SIGINT to the task's process and asserts the exit code the
 * README documents (0) and that the daemon's port is free afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"

const ROOT = new URL("../../", import.meta.url).pathname

/** A port nobody listens on now. */
const freePort = (): number => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 })
  const port = (l.addr as Deno.NetAddr).port
  l.close()
  return port
}

const portIsFree = (port: number): boolean => {
  try {
    Deno.listen({ hostname: "127.0.0.1", port }).close()
    return true
  } catch {
    return false
  }
}

/** Pids of processes whose command line holds `needle` (to clean up an orphan the test made). */
const pidsWith = (needle: string): ReadonlyArray<number> =>
  [...Deno.readDirSync("/proc")].flatMap((e) => {
    if (!/^\d+$/.test(e.name)) return []
    try {
      const cmd = Deno.readTextFileSync(`/proc/${e.name}/cmdline`).replaceAll("\0", " ")
      return cmd.includes(needle) && !cmd.includes("vitest") ? [Number(e.name)] : []
    } catch {
      return []
    }
  })

/** A clone as `deno install` leaves it: node_modules/.bin/deno is the npm package's JavaScript shim. */
let denoInstalled = ""

beforeAll(() => {
  denoInstalled = Deno.makeTempDirSync({ prefix: "spreadfx-deno-install-" })
  for (const e of Deno.readDirSync(ROOT)) {
    if (e.name === "node_modules" || e.name === ".git") continue
    Deno.symlinkSync(`${ROOT}${e.name}`, `${denoInstalled}/${e.name}`)
  }
  Deno.mkdirSync(`${denoInstalled}/node_modules/.bin`, { recursive: true })
  for (const e of Deno.readDirSync(`${ROOT}node_modules`)) {
    Deno.symlinkSync(`${ROOT}node_modules/${e.name}`, `${denoInstalled}/node_modules/${e.name}`)
  }
  Deno.symlinkSync(`${ROOT}node_modules/deno/bin.cjs`, `${denoInstalled}/node_modules/.bin/deno`)
})

afterAll(() => {
  if (denoInstalled !== "") Deno.removeSync(denoInstalled, { recursive: true })
})

/** Starts `deno task daemon` in `cwd`, waits for its start line, sends `signal`, answers how it ended. */
const runDaemonTask = async (cwd: string, signal: "SIGTERM" | "SIGINT") => {
  const port = freePort()
  const child = new Deno.Command(Deno.execPath(), {
    args: ["task", "daemon", "--port", String(port), "--no-unix"],
    cwd,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn()
  let out = ""
  const decoder = new TextDecoder()
  const pump = (async () => {
    for await (const chunk of child.stdout) out += decoder.decode(chunk, { stream: true })
  })()
  const err = new Response(child.stderr).text()
  const until = Date.now() + 15_000
  while (!out.includes("listening on") && Date.now() < until) await new Promise((r) => setTimeout(r, 20))
  const started = out.includes("listening on")
  child.kill(started ? signal : "SIGKILL")
  const status = await child.status
  // The daemon may take a moment to release the port after its task ended; an orphan never does.
  const freeBy = Date.now() + 2_000
  while (!portIsFree(port) && Date.now() < freeBy) await new Promise((r) => setTimeout(r, 20))
  const free = portIsFree(port)
  // An orphan holds the task's output pipes open: end it before reading them to the end.
  const orphans = pidsWith(`--port ${port} `)
  for (const pid of orphans) Deno.kill(pid, "SIGKILL")
  await pump
  return { started, code: status.code, free, orphans: orphans.length, out, err: await err }
}

describe("deno task daemon, stopped by a signal", () => {
  for (const [path, cwd] of [["after npm ci", () => ROOT], ["after deno install", () => denoInstalled]] as const) {
    for (const signal of ["SIGTERM", "SIGINT"] as const) {
      it(`${path}: ${signal} to the task stops the daemon, frees its port and exits 0`, async () => {
        const r = await runDaemonTask(cwd(), signal)
        expect(r.started, r.err).toBe(true)
        expect(r.orphans).toBe(0)
        expect(r.free).toBe(true)
        expect(r.code).toBe(0)
      }, 40_000)
    }
  }

  it("the Deno-only layout really has the shim in front of a bare `deno`", () => {
    const link = Deno.readLinkSync(`${denoInstalled}/node_modules/.bin/deno`)
    expect(link.endsWith("bin.cjs")).toBe(true)
  })
})
