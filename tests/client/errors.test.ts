import { describe, expect, it } from "@effect/vitest"
import {
  ConnectionError,
  connectionErrorCodes,
  type RequestError,
  requestErrorCodes,
  requestErrorOf,
} from "../../src/client/core/errors.ts"
import { ConnectError, connectErrorCodes, rejectError, rejectReasons } from "../../src/client/core/connect_error.ts"
import { ErrorCodes, RejectCodes } from "../../src/protocol/constants.ts"
import { validateGroupName } from "../../src/protocol/names.ts"
import { validateMulticast } from "../../src/protocol/client_requests.ts"

describe("error mapping", () => {
  it("connectErrorCodes maps every ConnectError reason to its sp.h code", () => {
    expect(connectErrorCodes).toEqual({
      IllegalSpread: -1,
      IllegalName: -5,
      IllegalTime: -20,
      IllegalOption: -1,
      CouldNotConnect: -2,
      Timeout: -2,
      ConnectionClosed: -8,
      NotSpreadDaemon: -8,
      RejectQuota: -3,
      RejectNoName: -4,
      RejectIllegalName: -5,
      RejectNotUnique: -6,
      RejectVersion: -7,
      RejectAuth: -9,
      RejectUnknown: -8,
      TlsUnknownAuthority: -2,
      TlsNameMismatch: -2,
      TlsCertificateRefused: -2,
      TlsFailed: -2,
      PlainOnTlsPort: -2,
      TlsOnPlainPort: -2,
    })
  })

  it("rejectError maps every handshake reject code to a typed reason with the same code", () => {
    for (const [name, code] of Object.entries(RejectCodes) as Array<[keyof typeof RejectCodes, number]>) {
      const e = rejectError("4803@h", code, name)
      expect(e).toBeInstanceOf(ConnectError)
      expect(e.reason).toBe(rejectReasons[name])
      expect(e.code).toBe(code)
      expect(e.rejectCode).toBe(code)
      expect(e.message).toContain("4803@h")
    }
    expect(rejectReasons).toEqual({
      REJECT_QUOTA: "RejectQuota",
      REJECT_NO_NAME: "RejectNoName",
      REJECT_ILLEGAL_NAME: "RejectIllegalName",
      REJECT_NOT_UNIQUE: "RejectNotUnique",
      REJECT_VERSION: "RejectVersion",
      REJECT_AUTH: "RejectAuth",
    })
  })

  it("rejectError keeps an unknown reject byte as the code", () => {
    const e = rejectError("x", -42, "Unknown")
    expect(e.reason).toBe("RejectUnknown")
    expect(e.code).toBe(-42)
    expect(e.message).toContain("-42")
  })

  it("connectionErrorCodes maps the sticky reasons to CONNECTION_CLOSED, ILLEGAL_MESSAGE and ILLEGAL_SESSION", () => {
    expect(connectionErrorCodes).toEqual({
      ConnectionClosed: ErrorCodes.CONNECTION_CLOSED,
      NetError: ErrorCodes.CONNECTION_CLOSED,
      ProtocolViolation: ErrorCodes.ILLEGAL_MESSAGE,
      Closed: ErrorCodes.ILLEGAL_SESSION,
    })
    const e = new ConnectionError({ reason: "Closed", privateGroup: "#a#b", detail: "d" })
    expect(e.code).toBe(-11)
    expect(e.message).toBe(`Spread session "#a#b" is unusable: Closed: d`)
  })

  it("requestErrorCodes maps every RequestError reason to its sp.h code", () => {
    expect(requestErrorCodes).toEqual({
      IllegalGroup: -14,
      NoGroups: -14,
      TooManyGroups: -17,
      MessageTooLong: -17,
      IllegalMessType: -13,
      IllegalService: -12,
      NeedsOrderedService: -12,
      JoinRefused: -14,
      NoMembership: -11,
    })
  })

  it("requestErrorOf classifies every validation failure of the codec", () => {
    const base = { privateGroup: "#a#h", service: "Agreed" as const, data: new Uint8Array(0), groups: ["g"] }
    const cases: Array<[ReturnType<typeof validateMulticast>, RequestError["reason"]]> = [
      [validateMulticast({ ...base, groups: [] }), "NoGroups"],
      [validateMulticast({ ...base, groups: Array.from({ length: 101 }, (_, i) => `g${i}`) }), "TooManyGroups"],
      [validateMulticast({ ...base, groups: ["bad name"] }), "IllegalGroup"],
      [validateMulticast({ ...base, groups: ["#nope"] }), "IllegalGroup"],
      [validateMulticast({ ...base, messType: 70000 }), "IllegalMessType"],
      [validateMulticast({ ...base, service: "Bogus" as "Agreed" }), "IllegalService"],
      [validateMulticast({ ...base, data: new Uint8Array(143152 - 32 + 1) }), "MessageTooLong"],
      [validateGroupName(""), "IllegalGroup"],
      [validateGroupName("x".repeat(32)), "IllegalGroup"],
    ]
    for (const [err, reason] of cases) {
      expect(err).toBeDefined()
      if (err === undefined) continue
      const e = requestErrorOf("multicast", err)
      expect(e.reason).toBe(reason)
      expect(e.code).toBe(requestErrorCodes[reason])
      expect(e.message).toContain("Invalid multicast")
    }
    expect(validateMulticast({ ...base, data: new Uint8Array(143152 - 32) })).toBeUndefined()
  })
})
