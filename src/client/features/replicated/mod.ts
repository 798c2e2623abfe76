/**
 * Replicated state over total order: a Schema-typed value every member of a
 * group holds alike (see replicated.ts and docs/replicated.md).
 *
 * @module
 */
export { ReplicaError, type ReplicaErrorFields, type ReplicaErrorReason } from "./errors.ts"
export {
  type Component,
  type Core,
  type MachineFailure,
  type MachineOptions,
  type MergePolicy,
  type Phase,
  type ReplicaEvent,
  ReplicaMachine,
  type ReplicaOutput,
  type Snapshot,
} from "./machine.ts"
export { type Replicated, replicated, type ReplicatedOptions } from "./replicated.ts"
