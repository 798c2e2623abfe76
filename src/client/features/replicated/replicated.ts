/**
 * A Schema-typed value replicated over one Spread group by total order:
 * `replicated(conn, options)` is a scoped resource with `get`, `update` and
 * a `changes` stream. Updates are multicast as operations (AGREED, or SAFE)
 * and every member applies them in the order the daemons deliver them; a
 * member that joins gets the value by state transfer from the first member
 * of the view that holds it; a network merge picks the value by a policy.
 * The guarantees, in Spread's terms, are in docs/replicated.md; the state
 * machine is machine.ts's, the wire format wire.ts's.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { connect, replicated } from "@spreadfx/spreadfx"
 *
 * const program = Effect.scoped(Effect.gen(function* () {
 *   const spread = yield* connect({ daemon: "4803" })
 *   const counter = yield* replicated(spread, {
 *     group: "counter",
 *     value: Schema.Number,
 *     operation: Schema.Number,
 *     initial: 0,
 *     apply: (n, by) => n + by,
 *   })
 *   const now = yield* counter.update(1) // applied here, in the group's order
 *   yield* Effect.log(`counter is ${now}`)
 * }))
 * ```
 *
 * @module
 */
import {
  type Chunk,
  Deferred,
  Duration,
  Effect,
  Either,
  Exit,
  FiberSet,
  PubSub,
  Ref,
  type Schema,
  type Scope,
  Stream,
} from "effect"
import type { ServiceLevel } from "../../../protocol/constants.ts"
import type { ServerMessage } from "../../../protocol/server_messages.ts"
import { isDiscontinuity } from "../../core/discontinuity.ts"
import type { Connection } from "../../model.ts"
import { ReplicaError, type ReplicaErrorReason } from "./errors.ts"
import { type MergePolicy, ReplicaMachine, type ReplicaOutput } from "./machine.ts"
import { eventOf, type Wire, wireCodec } from "./wire.ts"

/**
 * Options of {@link replicated}.
 *
 * @since 0.3.0
 * @category models
 */
export interface ReplicatedOptions<A, AI, Op, OpI> {
  /** The group: the replica's own (every regular message on it must be a replica message). */
  readonly group: string
  /** The value's schema (state transfers and merges carry its encoded form). */
  readonly value: Schema.Schema<A, AI>
  /** The operation's schema. */
  readonly operation: Schema.Schema<Op, OpI>
  /** The value of the group's first member. */
  readonly initial: A
  /** Applies an operation: pure and deterministic (every member calls it with the same arguments). */
  readonly apply: (value: A, op: Op) => A
  /** `"Agreed"` (default) or `"Safe"` for operations. */
  readonly service?: "Agreed" | "Safe"
  /** What a network merge keeps (default `{ _tag: "Largest" }`). */
  readonly merge?: MergePolicy<A>
  /** How long `replicated` waits for its state transfer (default 30 seconds). */
  readonly transferTimeout?: Duration.DurationInput
  /**
   * Events kept at most while joining or merging (default 100 000); beyond,
   * the replica fails with `Overflow`.
   */
  readonly maxKept?: number
  /**
   * Changes a `changes` subscriber may fall behind by (default 1024); past
   * that, the oldest are dropped (sliding): it always gets the latest value.
   */
  readonly changesBuffer?: number
}

/**
 * A replicated value (see the module notes).
 *
 * @since 0.3.0
 * @category models
 */
export interface Replicated<A, Op> {
  /** The group. */
  readonly group: string
  /** The value as this member holds it now (during a merge, the value before it). */
  readonly get: Effect.Effect<A, ReplicaError>
  /**
   * Multicasts `op` and waits until this member applied it (in the group's
   * order, after every operation delivered before it); answers the value
   * right after it. `Encode` when `op` does not fit its schema.
   */
  readonly update: (op: Op) => Effect.Effect<A, ReplicaError>
  /** The value now, then after each change (bounded: see `changesBuffer`); fails when the replica fails. */
  readonly changes: Stream.Stream<A, ReplicaError>
  /** The members that hold the value, oldest holder first (a state transfer's provider is the first in the view). */
  readonly holders: Effect.Effect<ReadonlyArray<string>>
}

type Status =
  | { readonly _tag: "Syncing" }
  | { readonly _tag: "Live" }
  | { readonly _tag: "Failed"; readonly error: ReplicaError }

const utf8 = new TextDecoder("utf-8", { fatal: true })
const encoder = new TextEncoder()

/**
 * Joins `options.group` as a replica and answers once it holds the value
 * (at once for the group's first member, after the state transfer for a
 * joiner); leaves the group when the scope closes.
 *
 * @since 0.3.0
 * @category constructors
 */
export const replicated = <A, AI, Op, OpI>(
  conn: Connection,
  options: ReplicatedOptions<A, AI, Op, OpI>,
): Effect.Effect<Replicated<A, Op>, ReplicaError, Scope.Scope> =>
  Effect.gen(function* () {
    const group = options.group
    const codec = wireCodec(options.value, options.operation)
    const service: ServiceLevel = options.service ?? "Agreed"
    const errorOf = (reason: ReplicaErrorReason, detail: string, cause?: unknown) =>
      new ReplicaError({ reason, group, detail, cause })
    const machineFor = (me: string, resume?: A) =>
      new ReplicaMachine<A, Op>({
        me,
        initial: options.initial,
        resume,
        apply: options.apply,
        merge: options.merge ?? { _tag: "Largest" },
        maxKept: Math.max(1, Math.floor(options.maxKept ?? 100_000)),
      })
    let machine = machineFor(conn.privateGroup)
    let last: A = options.initial
    // Operation ids start at a random point, so two replicas of one group on one
    // connection (they share the subscription) never take each other's answers.
    let nextId = crypto.getRandomValues(new Uint32Array(1))[0] * 1024
    const status = yield* Ref.make<Status>({ _tag: "Syncing" })
    const ready = yield* Deferred.make<void, ReplicaError>()
    const failed = yield* Deferred.make<never, ReplicaError>()
    const waiters = new Map<number, Deferred.Deferred<A, ReplicaError>>()
    const pubsub = yield* Effect.acquireRelease(
      PubSub.sliding<A>(Math.max(1, Math.floor(options.changesBuffer ?? 1024))),
      PubSub.shutdown,
    )
    const sends = yield* FiberSet.make<void, ReplicaError>()

    const fail = (e: ReplicaError) =>
      Effect.gen(function* () {
        yield* Ref.set(status, { _tag: "Failed", error: e })
        for (const d of waiters.values()) Deferred.unsafeDone(d, Exit.fail(e))
        waiters.clear()
        yield* Deferred.fail(ready, e)
        yield* Deferred.fail(failed, e)
      })

    const send = (w: Wire<A, Op>) =>
      Effect.suspend(() => {
        const json = codec.encode(w)
        if (Either.isLeft(json)) return Effect.fail(errorOf("Encode", `Cannot encode a ${w.t} message: ${json.left}`))
        return Effect.mapError(
          conn.multicast({ groups: group, data: encoder.encode(json.right), service }),
          (e) => errorOf("Connection", e.message, e),
        )
      })

    // Turns one received message into the machine's event and feeds it;
    // answers an error that stops the replica, or undefined.
    const feed = (m: ServerMessage, out: Array<ReplicaOutput<A>>): ReplicaError | "reset" | undefined => {
      switch (m._tag) {
        case "Membership": {
          const g = m.groupId
          machine.handle({
            _tag: "View",
            key: `${g.procId}:${g.time}:${g.index}`,
            cause: m.cause,
            members: m.members,
            vsSets: m.vsSets,
            localVsSet: m.localVsSet,
          }, out)
          break
        }
        case "Regular": {
          let text: string
          try {
            text = utf8.decode(m.data)
          } catch (cause) {
            return errorOf(
              "Decode",
              `the ${m.data.length}-byte message from ${JSON.stringify(m.sender)} is not UTF-8`,
              cause,
            )
          }
          const w = codec.decode(text)
          if (Either.isLeft(w)) {
            return errorOf(
              "Decode",
              `the message from ${JSON.stringify(m.sender)} (${
                JSON.stringify(text.slice(0, 64))
              }) is not a replica message: ${w.left}`,
            )
          }
          machine.handle(eventOf(m.sender, w.right), out)
          break
        }
        case "Transitional":
          // A daemon's transitional signal changes nothing here (see docs/replicated.md);
          // a reconnect's discontinuity means messages were lost: start again.
          return isDiscontinuity(m) ? "reset" : undefined
        case "SelfLeave":
        case "Reject":
          return undefined
      }
      const f = machine.failure
      return f === undefined
        ? undefined
        : errorOf("Overflow", `more than ${f.kept} events arrived while joining or merging`)
    }

    const afterChunk = (out: ReadonlyArray<ReplicaOutput<A>>) =>
      Effect.gen(function* () {
        const me = conn.privateGroup
        for (const o of out) {
          switch (o._tag) {
            case "SendState":
              yield* FiberSet.run(sends, send({ t: "state", for: o.for, asOf: o.asOf, snapshot: o.snapshot }))
              break
            case "SendMerge":
              yield* FiberSet.run(
                sends,
                send(
                  o.snapshot === undefined ? { t: "merge", asOf: o.asOf, vs: o.vs } : {
                    t: "merge",
                    asOf: o.asOf,
                    vs: o.vs,
                    snapshot: o.snapshot,
                  },
                ),
              )
              break
            case "Applied":
              if (o.sender === me) {
                const d = waiters.get(o.id)
                if (d !== undefined) {
                  waiters.delete(o.id)
                  Deferred.unsafeDone(d, Exit.succeed(o.value))
                }
              }
              break
            case "Ready":
              yield* Ref.set(status, { _tag: "Live" })
              yield* Deferred.succeed(ready, undefined)
              break
            case "Merged":
              break
          }
        }
        const v = machine.value
        if (v !== undefined && v !== last) {
          last = v
          yield* PubSub.publish(pubsub, v)
        }
      })

    const step = (chunk: Chunk.Chunk<ServerMessage>) =>
      Effect.suspend(() => {
        const out: Array<ReplicaOutput<A>> = []
        for (const m of chunk) {
          let r: ReplicaError | "reset" | undefined
          try {
            r = feed(m, out)
          } catch (cause) {
            r = errorOf("Apply", `apply or merge threw: ${String(cause)}`, cause)
          }
          if (r === "reset") {
            const e = errorOf("Discontinuity", "the connection replaced its session; joining again")
            for (const d of waiters.values()) Deferred.unsafeDone(d, Exit.fail(e))
            waiters.clear()
            machine = machineFor(conn.privateGroup, last)
            out.length = 0
            continue
          }
          if (r !== undefined) return Effect.zipRight(afterChunk(out), Effect.fail(r))
        }
        return afterChunk(out)
      })

    yield* conn.subscribe(group).pipe(
      Stream.mapError((e) => errorOf("Connection", e.message, e)),
      Stream.runForEachChunk(step),
      Effect.zipRight(Effect.fail(errorOf("Connection", "the group's stream ended"))),
      Effect.catchAll(fail),
      Effect.forkScoped,
    )
    // A failed send (the connection ended) stops the replica too.
    yield* FiberSet.join(sends).pipe(Effect.catchAll(fail), Effect.forkScoped)

    const timeout = options.transferTimeout ?? Duration.seconds(30)
    yield* Deferred.await(ready).pipe(
      Effect.timeoutFail({
        duration: timeout,
        onTimeout: () =>
          errorOf("TransferTimeout", `no state transfer came within ${Duration.format(Duration.decode(timeout))}`),
      }),
    )

    const live: Effect.Effect<void, ReplicaError> = Effect.flatMap(
      Ref.get(status),
      (s) => s._tag === "Failed" ? Effect.fail(s.error) : Effect.void,
    )

    return {
      group,
      get: Effect.zipRight(live, Effect.sync(() => last)),
      update: (op) =>
        Effect.gen(function* () {
          yield* live
          const id = nextId++
          const d = yield* Deferred.make<A, ReplicaError>()
          waiters.set(id, d)
          return yield* send({ t: "op", id, op }).pipe(
            Effect.zipRight(Deferred.await(d)),
            Effect.ensuring(Effect.sync(() => waiters.delete(id))),
          )
        }),
      changes: Stream.unwrapScoped(Effect.gen(function* () {
        yield* live
        const sub = yield* PubSub.subscribe(pubsub)
        return Stream.concat(Stream.succeed(last), Stream.fromQueue(sub)).pipe(
          Stream.changesWith((a, b) => a === b),
          Stream.interruptWhen(Deferred.await(failed)),
        )
      })),
      holders: Effect.sync(() => machine.holders),
    }
  })
