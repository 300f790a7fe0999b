import { describe, expect, it } from "vitest";
import { simpleParser } from "mailparser";
import { GatewayError } from "../../src/xmpp/errors.js";
import { RESERVED_ALIASES, defaultAlias, normaliseAlias } from "./aliases.js";
import { EMPTY_MAIL, MAX_BODY_CHARS, readMail } from "./read.js";
import { relayFailure, safeToRetry } from "./relay.js";
import { presentMail } from "./present.js";

const shown = async (
  parsed: Awaited<ReturnType<typeof mail>>,
  files?: (f: { name: string }) => Promise<string>,
) =>
  presentMail(readMail(parsed).body, parsed.attachments, { files, verifiedSender: null, unverified: false });

const mail = (headers: string, body: string) =>
  simpleParser(`${headers}\r\n\r\n${body}`, { skipHtmlToText: true });

describe("reading inbound mail", () => {
  it("shows plain text, subject, sender name and date", async () => {
    const read = readMail(
      await mail(
        'From: "Jane Friend" <friend@example.com>\r\nSubject: Plans\r\nDate: Sat, 21 Nov 2026 10:00:00 +0000',
        "See you at 8.",
      ),
    );
    expect(read).toEqual({
      body: "See you at 8.",
      subject: "Plans",
      nick: "Jane Friend",
      delay: "2026-11-21T10:00:00.000Z",
    });
  });

  it("turns HTML-only mail into readable text, links kept", async () => {
    const read = readMail(
      await mail(
        "From: a@example.com\r\nContent-Type: text/html; charset=utf-8",
        '<h1>News</h1><p>Hello <b>you</b>, read <a href="https://example.com/x">this</a>.</p><img src="t.gif">',
      ),
    );
    expect(read.body).toBe("News\n\nHello you, read this [https://example.com/x].");
  });

  it("cuts a huge body and says so", async () => {
    const read = await shown(await mail("From: a@example.com", "y".repeat(MAX_BODY_CHARS + 10)));
    expect(read.body.startsWith("y".repeat(MAX_BODY_CHARS))).toBe(true);
    expect(read.body).toMatch(/too long to show/);
  });

  it("says which attachments are not shown, and never gives an empty body", async () => {
    const withFile = await mail(
      'From: a@example.com\r\nSubject: Report\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"',
      [
        "--b",
        "Content-Type: text/plain",
        "",
        "See attached.",
        "--b",
        'Content-Type: application/pdf; name="q3.pdf"',
        'Content-Disposition: attachment; filename="q3.pdf"',
        "Content-Transfer-Encoding: base64",
        "",
        "JVBERi0=",
        "--b--",
      ].join("\r\n"),
    );
    expect((await shown(withFile)).body).toBe("See attached.\n\n[1 attachment(s) not shown here: q3.pdf]");
    expect((await shown(await mail("From: a@example.com\r\nSubject: (empty)", ""))).body).toBe(EMPTY_MAIL);
    // With the HTTP server: a link per file, also as jabber:x:oob.
    const linked = await shown(withFile, (f) => Promise.resolve(`https://gw.example/files/t/${f.name}`));
    expect(linked.body).toBe("See attached.\n\n📎 q3.pdf: https://gw.example/files/t/q3.pdf");
    expect(linked.attachments).toEqual([{ url: "https://gw.example/files/t/q3.pdf", desc: "q3.pdf" }]);
  });

  it("hides quoted text behind a link to the whole mail, and warns first about an unverified sender", async () => {
    const parsed = await mail("From: a@example.com", "Yes.\r\n\r\nOn Mon, Ann wrote:\r\n> Lunch?");
    const stored: string[] = [];
    const files = (f: { name: string }) => (
      stored.push(f.name),
      Promise.resolve(`https://gw.example/f/${f.name}`)
    );
    const result = await presentMail(readMail(parsed).body, [], {
      files,
      verifiedSender: "a@example.com",
      unverified: true,
    });
    expect(result.body).toBe(
      "⚠ The sender of this mail could not be verified: it may not really come from a@example.com. Do not trust links or requests in it without checking.\n\nYes.\n\n[quoted text hidden; the whole mail: https://gw.example/f/mail.txt]",
    );
    expect(stored).toEqual(["mail.txt"]);
  });

  it("leaves out an unparseable date and an empty subject", async () => {
    const read = readMail(await mail("From: a@example.com\r\nDate: yesterday-ish\r\nSubject: ", "x"));
    expect(read.delay).toBeUndefined();
    expect(read.subject).toBeUndefined();
  });
});

describe("aliases", () => {
  it.each([
    ["Alice", "alice"],
    [" bob.smith ", "bob.smith"],
  ])("%j is stored as %j", (alias, stored) => expect(normaliseAlias(alias)).toBe(stored));

  it.each([["a b"], ["a@b"], [""], ["Postmaster"], ["x".repeat(65)]])("%j is refused", (alias) => {
    expect(() => normaliseAlias(alias)).toThrow(GatewayError);
  });

  it("reserves the RFC 2142 mailboxes", () => expect(RESERVED_ALIASES.has("abuse")).toBe(true));

  it.each([
    ["alice@example.org", "alice"],
    ["Alice@example.org", "alice"],
    ["postmaster@example.org", undefined],
    ["a b@example.org", undefined],
  ])("the default alias of %s is %j", (jid, alias) => expect(defaultAlias(jid)).toBe(alias));
});

describe("relay failures as the user sees them", () => {
  it.each([
    [
      { responseCode: 550, code: "EENVELOPE", response: "550 5.1.1 No such user" },
      "item-not-found",
      /No such user/,
    ],
    [
      { responseCode: 554, code: "EMESSAGE", response: "554 5.7.1 Spam" },
      "not-acceptable",
      /refused the message: 554 5.7.1 Spam/,
    ],
    [
      { responseCode: 451, code: "EMESSAGE", response: "451 4.3.0 Try later" },
      "remote-server-timeout",
      /try again later/,
    ],
    [
      { code: "ECONNECTION", message: "connect ECONNREFUSED 127.0.0.1:1" },
      "remote-server-timeout",
      /ECONNREFUSED/,
    ],
    [{ code: "ETIMEDOUT", message: "Greeting never received" }, "remote-server-timeout", /not sent/],
  ])("%j → %s", (err, condition, text) => {
    const failure = relayFailure(err);
    expect(failure.condition).toBe(condition);
    expect(failure.message).toMatch(text);
  });

  it.each([
    [{ responseCode: 451 }, true],
    [{ responseCode: 421, code: "EENVELOPE" }, true],
    [{ responseCode: 550 }, false],
    [{ code: "ETIMEDOUT", timeoutType: "GREETING_TIMEOUT" }, true],
    [{ code: "ETIMEDOUT", timeoutType: "CONNECT_TIMEOUT" }, true],
    [{ code: "ESOCKET", message: "connect ECONNREFUSED 127.0.0.1:25" }, true],
    [{ code: "ETIMEDOUT", timeoutType: "SOCKET_TIMEOUT" }, false], // maybe after DATA: never twice
    [{ code: "ECONNECTION", message: "Connection closed unexpectedly" }, false],
  ])("retrying after %j is safe: %s", (err, safe) => {
    expect(safeToRetry(err)).toBe(safe);
  });

  it("says a mail may have gone out when the relay went silent", () => {
    expect(
      relayFailure({ code: "ETIMEDOUT", timeoutType: "SOCKET_TIMEOUT", message: "Timeout" }).message,
    ).toMatch(/may have been sent/);
  });

  it("never quotes a line break from the relay", () => {
    expect(relayFailure({ responseCode: 550, response: "550 a\r\nb" }).message).not.toMatch(/[\r\n]/);
  });
});
