import { describe, expect, it } from "vitest";
import { INBOUND_DEFAULTS, emailConfigSchema } from "./config.js";

const base = { mailDomain: "mail.example.org", relay: { host: "smtp.example.org" } };

describe("email config", () => {
  it("fills in the relay and listener defaults", () => {
    const config = emailConfigSchema.parse(base);
    expect(config.relay).toMatchObject({ port: 587, secure: false, starttls: true });
    expect(config.inbound).toEqual(INBOUND_DEFAULTS);
    expect(config.inbound.maxBytes).toBe(10 * 1024 * 1024);
  });

  it.each([
    [{ ...base, relay: { ...base.relay, userEnv: "SMTP_USER" } }, /both userEnv and passwordEnv/],
    [{ ...base, mailDomain: "Mail.Example.org" }, /lowercase domain/],
    [{ ...base, inbound: { maxRecipients: 0 } }, /maxRecipients|>=1/],
    [{ ...base, relay: { ...base.relay, password: "secret" } }, /password/],
  ])("refuses %j", (input, why) => {
    const result = emailConfigSchema.safeParse(input);
    expect(result.success).toBe(false);
    expect(JSON.stringify(result.error?.issues)).toMatch(why);
  });

  it("accepts relay authentication named by two environment variables", () => {
    const relay = { ...base.relay, userEnv: "SMTP_USER", passwordEnv: "SMTP_PASSWORD" };
    expect(emailConfigSchema.parse({ ...base, relay }).relay).toMatchObject(relay);
  });
});
