/**
 * Fixtures of the daemon tests: the shared ones (tests/_helpers/fixtures.ts),
 * a daemon's addresses, and a join that waits until it is sequenced.
 */
import { Effect, LogLevel } from "effect"
import type * as Daemon from "../../src/daemon/mod.ts"
import { decodeServerMessage } from "../../src/protocol/mod.ts"
import type { RawClient } from "../_helpers/raw_client.ts"
import type { Address } from "../../src/protocol/address.ts"

/** The daemon's TCP address. */
export const tcp = (d: Daemon.Daemon): Address => ({ _tag: "Tcp", hostname: d.host, port: d.port })

/** The daemon's Unix socket address (dies without one). */
export const unix = (d: Daemon.Daemon): Address => {
  if (d.unixPath === undefined) throw new Error("the daemon has no Unix socket")
  return { _tag: "Unix", path: d.unixPath }
}

/** Joins and waits for the joiner's own membership message (so the join is sequenced). */
export const joinNow = (c: RawClient, group: string): Effect.Effect<void> =>
  Effect.gen(function* () {
    yield* c.join(group)
    for (;;) {
      const m = decodeServerMessage(yield* c.frame())
      if (m._tag === "Membership" && m.group === group && m.changed === c.privateGroup) return
    }
  })

export { LogLevel }
export { captureLogs, eventually, type LogLine, quiet, sleep, startDaemon } from "../_helpers/fixtures.ts"
