import MailComposer from "nodemailer/lib/mail-composer/index.js";
import { describe, expect, it } from "vitest";
import {
  MAX_REFERENCES,
  MAX_SUBJECT_CHARS,
  NO_SUBJECT,
  composeMail,
  mailText,
  subjectFor,
  trimReferences,
} from "./compose.js";

const base = {
  fromName: "Alice",
  fromAddress: "alice@mail.example.org",
  to: "friend@example.com",
  subject: undefined,
  body: "Hello there\nsecond line",
  attachments: [],
  messageId: "<m1@mail.example.org>",
  references: [],
  threadSubject: undefined,
};

/** The raw mail nodemailer would put on the wire, split into its header lines and text. */
async function raw(options: ReturnType<typeof composeMail>): Promise<{ headers: string[]; text: string }> {
  const message = await new MailComposer(options).compile().build();
  const [head = "", ...rest] = message.toString("utf8").split("\r\n\r\n");
  return { headers: head.split("\r\n"), text: rest.join("\r\n\r\n") };
}

describe("email subject", () => {
  it.each([
    ["Lunch?", "whatever", undefined, "Lunch?"],
    [undefined, "Hi Bob\nhow are you", undefined, "Hi Bob"],
    [undefined, "\n\n  first real line\n", undefined, "first real line"],
    [undefined, "x".repeat(200), undefined, `${"x".repeat(MAX_SUBJECT_CHARS - 1)}…`],
    [undefined, "", undefined, NO_SUBJECT],
    [undefined, "ok", "Re: AW: Lunch?", "Re: Lunch?"],
    ["", "ok", "Lunch?", "Re: Lunch?"],
    ["a\r\nBcc: x@y.com", "", undefined, "a Bcc: x@y.com"],
  ])("subject %j, body %j, thread %j → %j", (subject, body, thread, expected) => {
    expect(subjectFor(subject, body, thread)).toBe(expected);
  });
});

describe("email text and references", () => {
  it.each([
    ["see this", [{ url: "https://u.example/a.png" }], "see this\n\nhttps://u.example/a.png"],
    ["https://u.example/a.png", [{ url: "https://u.example/a.png" }], "https://u.example/a.png"],
    ["", [{ url: "https://u.example/a.pdf", desc: "the\nreport" }], "the report: https://u.example/a.pdf"],
  ])("body %j with links %j → %j", (body, attachments, text) => {
    expect(mailText(body, attachments)).toBe(text);
  });

  it("keeps the root and the latest references", () => {
    const refs = Array.from({ length: 30 }, (_, i) => `<r${i}@x>`);
    const kept = trimReferences(refs);
    expect(kept).toHaveLength(MAX_REFERENCES);
    expect(kept[0]).toBe("<r0@x>");
    expect(kept.at(-1)).toBe("<r29@x>");
  });
});

describe("composed mail on the wire", () => {
  it("has the From name, Subject, Message-ID and threading headers", async () => {
    const mail = await raw(
      composeMail({ ...base, references: ["<root@example.com>", "<p@example.com>"], threadSubject: "Plans" }),
    );
    expect(mail.headers).toContain("From: Alice <alice@mail.example.org>");
    expect(mail.headers).toContain("Subject: Re: Plans");
    expect(mail.headers).toContain("Message-ID: <m1@mail.example.org>");
    expect(mail.headers).toContain("In-Reply-To: <p@example.com>");
    expect(mail.headers).toContain("References: <root@example.com> <p@example.com>");
  });

  it("never lets a subject or display name add a header", async () => {
    const mail = await raw(
      composeMail({ ...base, fromName: "Eve\r\nBcc: x@y.com", subject: "Hi\r\nBcc: x@y.com\nX-Evil: 1" }),
    );
    expect(mail.headers.filter((h) => /^(bcc|x-evil):/i.test(h))).toEqual([]);
    expect(mail.headers.find((h) => h.startsWith("Subject:"))).toBe("Subject: Hi Bcc: x@y.com X-Evil: 1");
  });
});
