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
    [{ ...base, auth: { dnsServers: ["dns.example.org"] } }, /an IP address/],
    [{ ...base, auth: { dnsServers: [] } }, /dnsServers/],
    [{ ...base, auth: { onDmarcFail: "drop" } }, /mark|reject/],
    [{ ...base, dkim: { selector: "s1\r\nX: y", privateKeyEnv: "DKIM_KEY" } }, /selector/],
  ])("refuses %j", (input, why) => {
    const result = emailConfigSchema.safeParse(input);
    expect(result.success).toBe(false);
    expect(JSON.stringify(result.error?.issues)).toMatch(why);
  });

  it("accepts DNS servers for sender authentication as IPs with or without a port", () => {
    const dnsServers = ["10.0.0.53", "127.0.0.1:5353", "::1", "[::1]:53"];
    expect(emailConfigSchema.parse({ ...base, auth: { dnsServers } }).auth).toEqual({
      dnsServers,
      onDmarcFail: "mark",
    });
  });

  it("accepts relay authentication named by two environment variables", () => {
    const relay = { ...base.relay, userEnv: "SMTP_USER", passwordEnv: "SMTP_PASSWORD" };
    expect(emailConfigSchema.parse({ ...base, relay }).relay).toMatchObject(relay);
  });
});
