/**
 * W3C trace context for channels: the current span as a `traceparent`, a
 * received `traceparent` as an Effect `ExternalSpan`, and the span
 * attributes channels set.
 *
 * Which relation a receiving span has to the sender's:
 *
 * - request handling (`serve`) is a **child** of the requester's span: the
 *   requester waits for it, it happens once per request, and its duration
 *   is part of the request's — one operation, one trace.
 * - broadcast delivery (`subscribe`) is a **link**: one publish reaches any
 *   number of subscribers, at times of their own, long after the publisher
 *   moved on; children would make the publisher's trace grow with every
 *   subscriber's work and never end. Each delivery starts its own trace
 *   and links to the publish (as OpenTelemetry's messaging conventions do
 *   for fan-out).
 *
 * @module
 */
import { Tracer } from "effect"
import type { GroupId } from "../../../protocol/server_messages.ts"

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/
const HEX32 = /^[0-9a-f]{32}$/
const HEX16 = /^[0-9a-f]{16}$/

/**
 * The W3C `traceparent` of a span (`00-<trace id>-<span id>-<flags>`), or
 * `undefined` when its ids are not W3C ids (a tracer with ids of its own).
 *
 * @since 0.3.0
 * @category tracing
 */
export const traceparentOf = (span: Tracer.AnySpan): string | undefined =>
  HEX32.test(span.traceId) && HEX16.test(span.spanId)
    ? `00-${span.traceId}-${span.spanId}-${span.sampled ? "01" : "00"}`
    : undefined

/**
 * The span a W3C `traceparent` names, as an Effect `ExternalSpan` to parent
 * or link to; `undefined` for anything not a valid traceparent (version
 * `ff`, all-zero ids, wrong shape).
 *
 * @since 0.3.0
 * @category tracing
 */
export const spanOfTraceparent = (traceparent: string | undefined): Tracer.ExternalSpan | undefined => {
  if (traceparent === undefined) return undefined
  const m = TRACEPARENT.exec(traceparent)
  if (m === null || m[1] === "ff" || /^0+$/.test(m[2]) || /^0+$/.test(m[3])) return undefined
  return Tracer.externalSpan({ traceId: m[2], spanId: m[3], sampled: (parseInt(m[4], 16) & 1) === 1 })
}

/**
 * A group id as one span attribute value: `procId.time.index`.
 *
 * @since 0.3.0
 * @category tracing
 */
export const viewIdOf = (id: GroupId): string => `${id.procId}.${id.time}.${id.index}`
