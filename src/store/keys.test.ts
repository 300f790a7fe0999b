import { describe, expect, it } from "vitest";
import { Keys } from "./keys.js";

/** Redis Cluster's hash tag: the part between the first `{` and the next `}`, when not empty. */
function tagOf(key: string): string {
  const open = key.indexOf("{");
  const close = key.indexOf("}", open + 1);
  return open >= 0 && close > open + 1 ? key.slice(open + 1, close) : key;
}

describe("key names", () => {
  const keys = new Keys("xgw:");

  it("puts what a script or transaction touches together under one hash tag", () => {
    const domain = "sms.example.org";
    // Enqueue (inbox + seen marker), acknowledge and set aside (inbox + attempts + dead letters).
    const inbound = [
      keys.inbox(domain),
      keys.inboundSeen(domain, "SM123"),
      keys.deliveryAttempts(domain),
      keys.deadLetters(domain),
    ];
    expect(new Set(inbound.map(tagOf))).toEqual(new Set([domain]));
    // The outbound ledger: seen marker + in-flight set, whatever the sender's resource holds.
    const ledger = [keys.outboundSeen("sms", "u@example.org/{weird}", "id-1"), keys.outboundInFlight("sms")];
    expect(new Set(ledger.map(tagOf))).toEqual(new Set(["sms"]));
    // An adapter's own keys share its tag; `own` keys are placed by their own tag.
    const key = keys.adapterKey("sms");
    expect(tagOf(key("pool", "+15550001", "+15550002"))).toBe("sms");
    expect(tagOf(key("pool-user", "u@example.org", "+15550002"))).toBe("sms");
    expect(tagOf(keys.adapterKey("irc").own("mam", "{irc.example.net/#chan}"))).toBe("irc.example.net/#chan");
  });

  it("gives each key written before hash tags its new name, and leaves the others alone", () => {
    const renamed: [string, string | undefined][] = [
      ["xgw:inbox:sms.example.org", "xgw:inbox:{sms.example.org}"],
      ["xgw:attempts:sms.example.org", "xgw:attempts:{sms.example.org}"],
      ["xgw:dead:sms.example.org", "xgw:dead:{sms.example.org}"],
      ["xgw:in:sms.example.org:SM1:x", "xgw:in:{sms.example.org}:SM1:x"],
      ["xgw:out:sms:u@example.org/res:id-1", "xgw:out:{sms}:u@example.org/res:id-1"],
      ["xgw:outflight:sms", "xgw:outflight:{sms}"],
      ["xgw:a:sms:pool:+15550001:+15550002", "xgw:a:{sms}:pool:+15550001:+15550002"],
      ["xgw:a:notify:contact:{odd}@example.org", "xgw:a:{notify}:contact:{odd}@example.org"],
      // Kept: already tagged, tagged by their own parts, touched alone, or not ours.
      ["xgw:inbox:{sms.example.org}", undefined],
      ["xgw:a:{sms}:owners", undefined],
      ["xgw:a:irc:mam:{irc.example.net/#chan}", undefined],
      ["xgw:reg:sms", undefined],
      ["xgw:settings:sms", undefined],
      ["xgw:instance:gw1", undefined],
      ["xgw:inboxes", undefined],
      ["other:inbox:sms.example.org", undefined],
    ];
    for (const [old, now] of renamed) expect(keys.legacyKeyTarget(old), old).toBe(now);
    // Every new name is what the builders make today.
    expect(keys.legacyKeyTarget("xgw:inbox:d")).toBe(keys.inbox("d"));
    expect(keys.legacyKeyTarget("xgw:out:sms:j/r:i")).toBe(keys.outboundSeen("sms", "j/r", "i"));
  });
});
