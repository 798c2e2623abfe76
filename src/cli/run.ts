/**
 * Runs a tool's main effect with `@effect/platform`'s `runMain` machinery
 * (`Runtime.makeRunMain`), over Deno's signals: SIGINT and SIGTERM interrupt
 * the main fiber (so every finalizer runs), then the process exits with the
 * tool's code.
 *
 * @module
 */
import * as Runtime from "@effect/platform/Runtime"
import { Cause, Console, Effect, Exit, Logger, LogLevel } from "effect"
import type { ConnectionError, RequestError } from "../client/core/errors.ts"
import type { ConnectError } from "../client/core/connect_error.ts"

/**
 * How a tool ended by a signal, as a process exit code.
 *
 * @since 0.1.0
 * @category models
 */
export interface ExitCodes {
  /** Code when SIGINT ended the tool. */
  readonly sigint: number
  /** Code when SIGTERM ended the tool. */
  readonly sigterm: number
}

/**
 * Runs `main` to completion and exits the process with the number it
 * answers. A signal interrupts `main` (finalizers run: sockets close, the
 * daemon stops) and the process exits with the signal's code. A defect is
 * printed and exits 70.
 *
 * @since 0.1.0
 * @category running
 */
export const runTool = (
  main: Effect.Effect<number>,
  codes: ExitCodes,
  logLevel: LogLevel.LogLevel = LogLevel.Warning,
): void => {
  let signalled: number | undefined
  const runMain = Runtime.makeRunMain(({ fiber, teardown }) => {
    const onSignal = (code: number) => () => {
      if (signalled !== undefined) return
      signalled = code
      fiber.unsafeInterruptAsFork(fiber.id())
    }
    const onInt = onSignal(codes.sigint)
    const onTerm = onSignal(codes.sigterm)
    Deno.addSignalListener("SIGINT", onInt)
    Deno.addSignalListener("SIGTERM", onTerm)
    fiber.addObserver((exit) => {
      Deno.removeSignalListener("SIGINT", onInt)
      Deno.removeSignalListener("SIGTERM", onTerm)
      // A terminal read may still be pending: exit rather than wait for it.
      teardown(exit, (code) => Deno.exit(code))
    })
  })
  runMain(main.pipe(Logger.withMinimumLogLevel(logLevel)), {
    disableErrorReporting: true,
    disablePrettyLogger: true,
    teardown: (exit, onExit) => {
      if (Exit.isSuccess(exit)) return onExit(typeof exit.value === "number" ? exit.value : 0)
      if (Cause.isInterruptedOnly(exit.cause)) return onExit(signalled ?? 130)
      console.error(Cause.pretty(exit.cause))
      onExit(70)
    },
  })
}

/**
 * Parses a `--log-level` value.
 *
 * @since 0.1.0
 * @category parsing
 */
export const logLevelOf = (name: string): LogLevel.LogLevel | undefined => {
  switch (name.toLowerCase()) {
    case "debug":
      return LogLevel.Debug
    case "info":
      return LogLevel.Info
    case "warning":
    case "warn":
      return LogLevel.Warning
    case "error":
      return LogLevel.Error
    case "none":
      return LogLevel.None
    default:
      return undefined
  }
}

/**
 * The exit code of a client tool's failure, after printing it: 3 when the
 * connection could not be made, 1 when it was lost, 2 for a request the
 * flags made invalid.
 *
 * @since 0.1.0
 * @category running
 */
export const clientExitCodes =
  (tool: string) =>
  (self: Effect.Effect<number, ConnectError | ConnectionError | RequestError>): Effect.Effect<number> =>
    Effect.catchAll(self, (e) => {
      switch (e._tag) {
        case "ConnectError":
          return Effect.as(Console.error(`${tool}: ${e.message}`), 3)
        case "ConnectionError":
          return Effect.as(Console.error(`\n${tool}: connection lost: ${e.message}`), 1)
        case "RequestError":
          return Effect.as(Console.error(`${tool}: ${e.message}`), 2)
      }
    })
