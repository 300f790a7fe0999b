/**
 * The core against real XMPP servers, as a user of a stock client library sees it: discovery, version,
 * ping, jabber:iq:gateway, registration, access control, ad-hoc commands, messages and bad input.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorOf, TestUser, xml, type Element } from "../support/client.js";
import { sharedBed, startTestGateway, takeSlot, type TestGateway } from "../support/gateway.js";

const NS = {
  INFO: "http://jabber.org/protocol/disco#info",
  ITEMS: "http://jabber.org/protocol/disco#items",
  REGISTER: "jabber:iq:register",
  GATEWAY: "jabber:iq:gateway",
  COMMANDS: "http://jabber.org/protocol/commands",
  DATA: "jabber:x:data",
  RECEIPTS: "urn:xmpp:receipts",
};

const registerForm = (fields: Record<string, string>) =>
  xml(
    "query",
    { xmlns: NS.REGISTER },
    xml(
      "x",
      { xmlns: NS.DATA, type: "submit" },
      xml("field", { var: "FORM_TYPE" }, xml("value", {}, NS.REGISTER)),
      ...Object.entries(fields).map(([k, v]) => xml("field", { var: k }, xml("value", {}, v))),
    ),
  );

const chat = (to: string, id: string, body: string, ...extra: Element[]) =>
  xml("message", { to, id, type: "chat" }, xml("body", {}, body), ...extra);

describe.each(["prosody", "ejabberd"] as const)("gateway core on %s", (server) => {
  const bed = sharedBed();
  let gw: TestGateway;
  let domain: string;
  let alice: TestUser; // registers
  let mallory: TestUser; // not in the allow list
  let admin: TestUser;

  beforeAll(async () => {
    const peer = bed[server];
    if (!peer || !bed.redis) throw new Error(`the test bed has no ${server} or Redis`);
    const slot = await takeSlot(bed);
    const names = {
      alice: `alice-${server}-${slot}`,
      mallory: `mallory-${server}-${slot}`,
      admin: `admin-${server}-${slot}`,
    };
    const host = peer.host;
    gw = await startTestGateway({
      peer,
      redisUrl: bed.redis.url,
      slot,
      admins: [`${names.admin}@${host}`],
      echo: { access: { allow: [`${names.alice}@${host}`] } },
    });
    domain = gw.domain;
    [alice, mallory, admin] = await Promise.all([
      TestUser.login(peer, names.alice),
      TestUser.login(peer, names.mallory),
      TestUser.login(peer, names.admin),
    ]);
  });

  afterAll(async () => {
    await Promise.all([alice?.stop(), mallory?.stop(), admin?.stop()]);
    await gw?.stop();
  });

  it("is listed by disco#items on the server and describes itself as a gateway", async () => {
    const items = await alice.iq("get", bed[server]!.host, xml("query", { xmlns: NS.ITEMS }));
    expect(
      items
        .getChild("query")
        ?.getChildren("item")
        .map((i) => i.attrs.jid),
    ).toContain(domain);

    const info = await alice.iq("get", domain, xml("query", { xmlns: NS.INFO }));
    const query = info.getChild("query", NS.INFO);
    expect(query?.getChild("identity")?.attrs).toMatchObject({ category: "gateway", type: "xmpp" });
    const features = query?.getChildren("feature").map((f) => f.attrs.var);
    expect(features).toEqual(
      expect.arrayContaining([
        NS.REGISTER,
        NS.GATEWAY,
        NS.COMMANDS,
        "jid\\20escaping",
        "urn:xmpp:ping",
        "jabber:iq:version",
      ]),
    );
  });

  it("answers version and ping", async () => {
    const version = await alice.iq("get", domain, xml("query", { xmlns: "jabber:iq:version" }));
    expect(version.attrs.type).toBe("result");
    expect(version.getChild("query")?.getChildText("name")).toBe("xmpp-gateway");
    expect(version.getChild("query")?.getChildText("version")).toMatch(/^\d+\.\d+\.\d+/);
    const pong = await alice.iq("get", domain, xml("ping", { xmlns: "urn:xmpp:ping" }));
    expect(pong.attrs.type).toBe("result");
  });

  it("turns a typed address into a JID with jabber:iq:gateway (XEP-0100 §6)", async () => {
    const get = await alice.iq("get", domain, xml("query", { xmlns: NS.GATEWAY }));
    expect(get.getChild("query")?.getChildText("prompt")).toBeTruthy();
    expect(get.getChild("query")?.getChildText("desc")).toBeTruthy();
    const set = await alice.iq(
      "set",
      domain,
      xml("query", { xmlns: NS.GATEWAY }, xml("prompt", {}, "my bot")),
    );
    expect(set.getChild("query")?.getChildText("jid")).toBe(`my\\20bot@${domain}`);
    const empty = await alice.iq("set", domain, xml("query", { xmlns: NS.GATEWAY }, xml("prompt", {}, "  ")));
    expect(errorOf(empty).condition).toBe("bad-request");
  });

  it("registers, subscribes, echoes with a receipt, drops a resent id, and unregisters", async () => {
    const contact = `bot@${domain}`;
    const early = await (async () => {
      await alice.send(chat(contact, "early-1", "hello?"));
      return alice.waitFor((el) => el.name === "message" && el.attrs.id === "early-1");
    })();
    expect(errorOf(early)).toMatchObject({ condition: "registration-required" });
    expect(errorOf(early).text).toContain(domain);

    const form = await alice.iq("get", domain, xml("query", { xmlns: NS.REGISTER }));
    const fields = form
      .getChild("query")
      ?.getChild("x", NS.DATA)
      ?.getChildren("field")
      .map((f) => f.attrs.var);
    expect(fields).toEqual(["FORM_TYPE", "nick"]);

    const missing = await alice.iq("set", domain, registerForm({ nick: "" }));
    expect(errorOf(missing)).toMatchObject({ condition: "not-acceptable" });
    expect(errorOf(missing).text).toContain("Nickname");

    const ok = await alice.iq("set", domain, registerForm({ nick: "Al" }));
    expect(ok.attrs.type).toBe("result");
    // XEP-0100 §4.1: the gateway asks to subscribe to the user, and shows its presence with caps.
    await alice.waitFor(
      (el) => el.name === "presence" && el.attrs.from === domain && el.attrs.type === "subscribe",
    );
    const shown = await alice.waitFor(
      (el) => el.name === "presence" && el.attrs.from === domain && !el.attrs.type,
    );
    const c = shown.getChild("c", "http://jabber.org/protocol/caps");
    expect(c?.attrs.ver).toBeTruthy();
    // XEP-0115 §6.2: a client that does not know the hash asks the caps node.
    const capsInfo = await alice.iq(
      "get",
      domain,
      xml("query", { xmlns: NS.INFO, node: `${c?.attrs.node}#${c?.attrs.ver}` }),
    );
    expect(capsInfo.getChild("query", NS.INFO)?.getChild("identity")?.attrs.category).toBe("gateway");
    // The user's client accepts, and subscribes back (what "add the gateway to my contacts" does).
    await alice.send(xml("presence", { to: domain, type: "subscribed" }));
    await alice.send(xml("presence", { to: domain, type: "subscribe" }));
    await alice.waitFor(
      // The gateway approves (servers turn that into a roster push) and shows its presence once more.
      (el) => el.name === "presence" && el.attrs.from === domain && !el.attrs.type && el !== shown,
    );
    const again = await alice.iq("get", domain, xml("query", { xmlns: NS.REGISTER }));
    expect(again.getChild("query")?.getChild("registered")).toBeDefined();

    // The message refused before registering is sent when the client sends it again, with the same id: the
    // refusal kept nothing that would take the resend for a duplicate.
    await alice.send(chat(contact, "early-1", "hello?"));
    await alice.waitFor((el) => el.name === "message" && el.getChildText("body") === "Al: hello?");

    await alice.send(chat(contact, "m-1", "hello", xml("request", { xmlns: NS.RECEIPTS })));
    const echo = await alice.waitFor(
      (el) => el.name === "message" && el.getChildText("body") === "Al: hello",
    );
    expect(echo.attrs.from).toBe(contact);
    expect(echo.attrs.id).toBe("echo-m-1");
    const receipt = await alice.waitFor((el) => el.getChild("received", NS.RECEIPTS)?.attrs.id === "m-1");
    expect(receipt.attrs.from).toBe(contact);

    // A client resending after a reconnect reuses the id: the contact must not get it twice.
    await alice.send(chat(contact, "m-1", "hello", xml("request", { xmlns: NS.RECEIPTS })));
    await alice.send(chat(contact, "m-2", "second"));
    await alice.waitFor((el) => el.getChildText("body") === "Al: second");
    await alice.sync();
    expect(alice.received.filter((el) => el.getChildText("body") === "Al: hello")).toHaveLength(1);
    // …and it is answered with what is known: delivered, so the receipt again.
    const isReceipt = (el: Element) => el.getChild("received", NS.RECEIPTS)?.attrs.id === "m-1";
    await expect.poll(() => alice.received.filter(isReceipt).length, { timeout: 10_000 }).toBe(2);

    const removed = await alice.iq("set", domain, xml("query", { xmlns: NS.REGISTER }, xml("remove")));
    expect(removed.attrs.type).toBe("result");
    for (const type of ["unsubscribe", "unsubscribed", "unavailable"])
      await alice.waitFor(
        (el) => el.name === "presence" && el.attrs.from === domain && el.attrs.type === type,
      );
    await alice.send(chat(contact, "after-remove", "still there?"));
    const refused = await alice.waitFor((el) => el.attrs.id === "after-remove");
    expect(errorOf(refused).condition).toBe("registration-required");
    const twice = await alice.iq("set", domain, xml("query", { xmlns: NS.REGISTER }, xml("remove")));
    expect(errorOf(twice).condition).toBe("registration-required");
  });

  it("refuses users outside the allow list and says who to ask", async () => {
    const reg = await mallory.iq("get", domain, xml("query", { xmlns: NS.REGISTER }));
    expect(errorOf(reg).condition).toBe("forbidden");
    expect(errorOf(reg).text).toContain(admin.bare);
    await mallory.send(chat(`bot@${domain}`, "mal-1", "let me in"));
    const refused = await mallory.waitFor((el) => el.attrs.id === "mal-1");
    expect(errorOf(refused).condition).toBe("forbidden");
    const list = await mallory.iq("get", domain, xml("query", { xmlns: NS.ITEMS, node: NS.COMMANDS }));
    expect(list.getChild("query")?.getChildren("item")).toHaveLength(0);
  });

  it("lists ad-hoc commands by role and runs an admin command", async () => {
    const userList = await alice.iq("get", domain, xml("query", { xmlns: NS.ITEMS, node: NS.COMMANDS }));
    expect(userList.getChild("query")?.getChildren("item")).toHaveLength(0);
    const adminList = await admin.iq("get", domain, xml("query", { xmlns: NS.ITEMS, node: NS.COMMANDS }));
    expect(
      adminList
        .getChild("query")
        ?.getChildren("item")
        .map((i) => i.attrs.node),
    ).toEqual(["registered-users", "unregister-user", "send-test-message", "echo-stats"]);

    await alice.iq("set", domain, registerForm({ nick: "Al" }));
    const run = await admin.iq(
      "set",
      domain,
      xml("command", { xmlns: NS.COMMANDS, node: "registered-users", action: "execute" }),
    );
    const command = run.getChild("command", NS.COMMANDS);
    expect(command?.attrs.status).toBe("completed");
    const users = command
      ?.getChild("x", NS.DATA)
      ?.getChild("field")
      ?.getChildren("value")
      .map((v) => v.getText());
    expect(users).toEqual([alice.bare]);

    // Two steps: the form, then the submission.
    const step1 = await admin.iq(
      "set",
      domain,
      xml("command", { xmlns: NS.COMMANDS, node: "unregister-user", action: "execute" }),
    );
    const c1 = step1.getChild("command", NS.COMMANDS);
    expect(c1?.attrs.status).toBe("executing");
    expect(c1?.getChild("x", NS.DATA)?.getChild("field")?.attrs.var).toBe("jid");
    const step2 = await admin.iq(
      "set",
      domain,
      xml(
        "command",
        { xmlns: NS.COMMANDS, node: "unregister-user", sessionid: c1?.attrs.sessionid, action: "complete" },
        xml(
          "x",
          { xmlns: NS.DATA, type: "submit" },
          xml("field", { var: "jid" }, xml("value", {}, alice.bare)),
        ),
      ),
    );
    expect(step2.getChild("command", NS.COMMANDS)?.getChildText("note")).toContain("no longer registered");
    const form = await alice.iq("get", domain, xml("query", { xmlns: NS.REGISTER }));
    expect(form.getChild("query")?.getChild("registered")).toBeUndefined();

    const denied = await alice.iq(
      "set",
      domain,
      xml("command", { xmlns: NS.COMMANDS, node: "registered-users" }),
    );
    expect(errorOf(denied).condition).toBe("forbidden");
    const unknown = await admin.iq("set", domain, xml("command", { xmlns: NS.COMMANDS, node: "no-such" }));
    expect(errorOf(unknown).condition).toBe("item-not-found");
  });

  it("answers bad input with the right stanza error and keeps working", async () => {
    await alice.iq("set", domain, registerForm({ nick: "Al" }));
    const cases: [Element, string][] = [
      [chat(`${"x".repeat(80)}@${domain}`, "bad-1", "hi"), "jid-malformed"],
      [chat(`bot@${domain}`, "bad-2", "y".repeat(10_001)), "not-acceptable"],
    ];
    for (const [stanza, condition] of cases) {
      await alice.send(stanza);
      const answer = await alice.waitFor((el) => el.attrs.id === stanza.attrs.id);
      expect(errorOf(answer).condition).toBe(condition);
      expect(errorOf(answer).text?.length).toBeGreaterThan(10);
    }
    const unknownNs = await alice.iq("get", domain, xml("query", { xmlns: "urn:example:nothing" }));
    expect(errorOf(unknownNs).condition).toBe("service-unavailable");
    const noForm = await alice.iq("set", domain, xml("query", { xmlns: NS.REGISTER }));
    expect(errorOf(noForm).condition).toBe("bad-request");
    const badForm = await alice.iq("set", domain, registerForm({ nick: "n".repeat(40) }));
    expect(errorOf(badForm).condition).toBe("not-acceptable");

    // Still serving after all that.
    await alice.send(chat(`bot@${domain}`, "good-1", "still fine?"));
    await alice.waitFor((el) => el.getChildText("body") === "Al: still fine?");
  });

  it("answers a message to the gateway itself with help instead of silence", async () => {
    await alice.send(chat(domain, "help-1", "help"));
    const help = await alice.waitFor(
      (el) => el.name === "message" && el.attrs.from === domain && !!el.getChildText("body"),
    );
    expect(help.getChildText("body")).toContain(`bot@${domain}`);
  });
});
