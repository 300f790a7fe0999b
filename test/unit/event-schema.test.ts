/** The one schema inbound events pass before they are stored and before they become stanzas. */
import { describe, expect, it } from "vitest";
import {
  checkInboundEvent,
  InvalidInboundEventError,
  MAX_BODY_BYTES,
  MAX_EVENT_ID_CHARS,
} from "../../src/delivery/event-schema.js";
import { inboundStanza } from "../../src/xmpp/stanzas.js";

const DOMAIN = "irc.example.org";
const base = {
  kind: "message",
  to: "alice@example.org",
  from: `#chan%net@${DOMAIN}/nick`,
  id: "m1",
  body: "hi",
};

describe("checkInboundEvent", () => {
  it.each([
    ["control characters in the id (an IRC msgid tag)", { id: "a\u0001b\u0000c" }, { id: "abc" }],
    ["control characters in the body", { body: "bell\u0007!" }, { body: "bell!" }],
    ["a delay that is not ISO 8601 (server-time tag)", { delay: "yesterday\u0001" }, { delay: undefined }],
    ["an ISO 8601 delay", { delay: "2024-05-01T10:00:00.123Z" }, { delay: "2024-05-01T10:00:00.123Z" }],
    ["a nick with a lone surrogate", { nick: "bob\ud800" }, { nick: "bob" }],
  ])("cleans %s", (_what, fields, expected) => {
    expect(checkInboundEvent({ ...base, ...fields }, DOMAIN)).toMatchObject(expected);
  });

  it("keeps the actor and reason of a kick (XEP-0045 §9.1)", () => {
    const kick = {
      kind: "presence",
      to: "alice@example.org",
      from: `#chan%net@${DOMAIN}/bob`,
      type: "unavailable",
      muc: { affiliation: "none", role: "none", statusCodes: [307], actor: "carol", reason: "spam\u0007" },
    };
    expect(checkInboundEvent(kick, DOMAIN)).toMatchObject({ muc: { actor: "carol", reason: "spam" } });
  });

  it("cuts an over-long body and says so", () => {
    const event = checkInboundEvent({ ...base, body: "é".repeat(MAX_BODY_BYTES) }, DOMAIN);
    expect(event.kind === "message" && Buffer.byteLength(event.body)).toBeLessThanOrEqual(MAX_BODY_BYTES);
    expect(event.kind === "message" && event.body).toMatch(/too long\]$/);
  });

  it.each([
    ["an id of control characters only", { id: "\u0001\u0002" }, "id"],
    ["an over-long id", { id: "x".repeat(MAX_EVENT_ID_CHARS + 1) }, "id"],
    ["a recipient that is not a JID", { to: "not a jid" }, "to"],
    ["a recipient with a control character", { to: "alice\u0001@example.org" }, "to"],
    ["a sender on another domain", { from: "bot@elsewhere.example" }, "from"],
    ["an unknown kind", { kind: "nonsense" }, "kind"],
    ["an unknown error condition", { kind: "error", text: "x", condition: "made-up" }, "condition"],
  ])("refuses %s", (_what, fields, path) => {
    let error: unknown;
    try {
      checkInboundEvent({ ...base, ...fields }, DOMAIN);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(InvalidInboundEventError);
    expect((error as InvalidInboundEventError).problems.join()).toContain(path);
  });
});

describe("inboundStanza", () => {
  it("never writes a character XML cannot carry, whatever reaches it", () => {
    const stanza = inboundStanza({
      kind: "message",
      to: "alice@example.org\u0001",
      from: `bot@${DOMAIN}`,
      id: "id\u0000x",
      body: "b\u0008",
      delay: "2024\u0007",
    });
    // eslint-disable-next-line no-control-regex
    expect(stanza.toString()).not.toMatch(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/);
    expect(stanza.attrs.id).toBe("idx");
  });
});
