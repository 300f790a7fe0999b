import { describe, expect, it } from "vitest";
import { capsVer, inboundStanza, stanzaError } from "../../src/xmpp/stanzas.js";

describe("stanzas", () => {
  it("computes the XEP-0115 §5.2 example verification string", () => {
    const ver = capsVer(
      [{ category: "client", type: "pc", name: "Exodus 0.9.1" }],
      [
        "http://jabber.org/protocol/disco#info",
        "http://jabber.org/protocol/disco#items",
        "http://jabber.org/protocol/muc",
        "http://jabber.org/protocol/caps",
      ],
    );
    expect(ver).toBe("QgayPKawpkPSDYmwT/WM94uAlu0=");
  });

  it("builds an error with a condition and human text", () => {
    const el = stanzaError("forbidden", "auth", "Ask admin@example.org");
    expect(el.toString()).toBe(
      '<error type="auth"><forbidden xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/>' +
        '<text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas" xml:lang="en">Ask admin@example.org</text></error>',
    );
  });

  it("escapes hostile bodies instead of letting them become markup", () => {
    const el = inboundStanza({
      kind: "message",
      to: "alice@example.org",
      from: "bot@echo.example.org",
      id: "x1",
      body: "</body><iq type='set'/>&",
    });
    expect(el.toString()).toContain("<body>&lt;/body&gt;&lt;iq type='set'/&gt;&amp;</body>");
    expect(el.getChildText("body")).toBe("</body><iq type='set'/>&");
  });

  it("drops characters XML 1.0 cannot carry, which would otherwise kill the component stream", () => {
    const el = inboundStanza({
      kind: "message",
      to: "alice@example.org",
      from: "bot@echo.example.org",
      id: "x2",
      body: "a\u0000b\u0007c\td\uFFFEe\uD800f😀",
      subject: "s\u001bt",
    });
    expect(el.getChildText("body")).toBe("abc\tdef😀");
    expect(el.getChildText("subject")).toBe("st");
  });

  it("carries XEP-0203 delay, XEP-0066 links and the XEP-0359 stable id", () => {
    const el = inboundStanza({
      kind: "message",
      to: "alice@example.org",
      from: "+15551234567@sms.example.org",
      id: "SM123",
      body: "photo",
      delay: "2026-01-01T00:00:00Z",
      attachments: [{ url: "https://gw.example.org/media/abc" }],
    });
    expect(el.getChild("delay", "urn:xmpp:delay")?.attrs.stamp).toBe("2026-01-01T00:00:00Z");
    expect(el.getChild("x", "jabber:x:oob")?.getChildText("url")).toBe("https://gw.example.org/media/abc");
    expect(el.getChild("stanza-id", "urn:xmpp:sid:0")?.attrs).toMatchObject({
      id: "SM123",
      by: "sms.example.org",
    });
  });

  it("builds XEP-0045 occupant presence with the item and status codes", () => {
    const el = inboundStanza({
      kind: "presence",
      to: "alice@example.org/phone",
      from: "#chat%irc.example.net@irc.example.org/alice",
      muc: { affiliation: "none", role: "participant", statusCodes: [110] },
    });
    const x = el.getChild("x", "http://jabber.org/protocol/muc#user");
    expect(x?.getChild("item")?.attrs).toMatchObject({ affiliation: "none", role: "participant" });
    expect(x?.getChildren("status").map((s) => s.attrs.code)).toEqual(["110"]);
    // XEP-0045 §9.1: a kick carries the actor and the reason in the item.
    const kicked = inboundStanza({
      kind: "presence",
      to: "alice@example.org/phone",
      from: "#chat%irc.example.net@irc.example.org/bob",
      type: "unavailable",
      muc: { affiliation: "none", role: "none", statusCodes: [307], actor: "carol", reason: "spam" },
    });
    const item = kicked.getChild("x", "http://jabber.org/protocol/muc#user")?.getChild("item");
    expect(item?.getChild("actor")?.attrs.nick).toBe("carol");
    expect(item?.getChildText("reason")).toBe("spam");
    const refused = inboundStanza({
      kind: "presence",
      to: "alice@example.org/phone",
      from: "#chat%irc.example.net@irc.example.org/alice",
      type: "error",
      error: { condition: "conflict", text: "That nickname is in use on the IRC server." },
    });
    expect(refused.attrs.type).toBe("error");
    expect(refused.getChild("error")?.getChild("conflict")).toBeDefined();
  });
});
