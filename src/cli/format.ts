/**
 * Messages printed the way Spread's `spuser` prints them.
 *
 * @module
 */
import type { ServerMessage } from "../protocol/server_messages.ts"

const SEPARATOR = "============================"
const decoder = new TextDecoder()

/** The data as text, up to the first NUL (as `printf("%s")` shows it). */
const text = (data: Uint8Array): string => {
  const nul = data.indexOf(0)
  return decoder.decode(nul < 0 ? data : data.subarray(0, nul))
}

const serviceName = (m: ServerMessage & { readonly _tag: "Regular" }): string => m.service.toUpperCase()

/**
 * Formats a message as `spuser` does, for the private group `me`.
 *
 * @since 0.1.0
 * @category formatting
 */
export const formatMessage = (m: ServerMessage, me: string): string => {
  switch (m._tag) {
    case "Regular":
      return `${SEPARATOR}\nreceived ${serviceName(m)} message from ${m.sender}, of type ${m.messType}, (endian ${
        m.endianMismatch ? 1 : 0
      }) to ${m.groups.length} groups \n(${m.data.length} bytes): ${text(m.data)}\n`
    case "Membership": {
      const lines = [
        SEPARATOR,
        `Received REGULAR membership for group ${m.group} with ${m.members.length} members, where I am member ${
          m.members.indexOf(me)
        }:`,
        ...m.members.map((x) => `\t${x}`),
        `grp id is ${m.groupId.procId} ${m.groupId.time} ${m.groupId.index}`,
      ]
      switch (m.cause) {
        case "Join":
          lines.push(`Due to the JOIN of ${m.changed ?? "?"}`)
          break
        case "Leave":
          lines.push(`Due to the LEAVE of ${m.changed ?? "?"}`)
          break
        case "Disconnect":
          lines.push(`Due to the DISCONNECT of ${m.changed ?? "?"}`)
          break
        case "Network":
          lines.push(`Due to NETWORK change with ${m.vsSets.length} VS sets`)
          m.vsSets.forEach((set, i) => {
            lines.push(`${i === m.localVsSet ? "LOCAL " : ""}VS set ${i} has ${set.length} members:`)
            for (const x of set) lines.push(`\t\t${x}`)
          })
          break
      }
      return lines.join("\n") + "\n"
    }
    case "Transitional":
      return `${SEPARATOR}\nreceived TRANSITIONAL membership for group ${m.group}\n`
    case "SelfLeave":
      return `${SEPARATOR}\nreceived membership message that left group ${m.group}\n`
    case "Reject":
      return `${SEPARATOR}\nREJECTED message from ${m.sender}, of servicetype 0x${
        m.oldType.toString(16)
      } messagetype ${m.messType}, to ${m.groups.length} groups \n(${m.data.length} bytes): ${text(m.data)}\n`
  }
}
