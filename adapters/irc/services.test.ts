/** Who may receive the NickServ password: WHOIS facts against the configured services masks. */
import { describe, expect, it } from "vitest";
import { DEFAULT_SERVICES } from "./config.js";
import { isServices, maskMatches } from "./services.js";

describe("isServices", () => {
  it.each([
    // [what the config says, what WHOIS said, trusted]
    [DEFAULT_SERVICES, { server: "services.libera.chat", host: "services.libera.chat" }, true],
    [DEFAULT_SERVICES, { server: "SERVICES.oftc.net" }, true],
    [DEFAULT_SERVICES, { server: "irc.localhost", host: "127.0.0.1" }, false],
    [DEFAULT_SERVICES, {}, false], // no such nick, or no answer
    [{ nick: "NickServ", host: "services.example.net" }, { server: "x", host: "services.example.net" }, true],
    [{ nick: "NickServ", host: "services.example.net" }, { server: "x", host: "evil.example.net" }, false],
    [
      { nick: "NickServ", server: "services.*", host: "*.rizon.net" },
      { server: "services.rizon.net", host: "x" },
      false,
    ],
    [{ nick: "NickServ" }, { server: "anything" }, false], // nothing configured trusts no one
  ])("%j with %j → %s", (spec, facts, trusted) => {
    expect(isServices(spec, facts)).toBe(trusted);
  });

  it("masks: * and ? as wildcards, other characters literal", () => {
    expect(maskMatches("services.*", "services.libera.chat")).toBe(true);
    expect(maskMatches("services.*", "servicesXlibera")).toBe(false);
    expect(maskMatches("s?rv", "serv")).toBe(true);
    expect(maskMatches("a+b", "aab")).toBe(false);
  });
});
