/**
 * Alert recipients over real peers: users verify their phone number by the code the Twilio-compatible
 * server receives and their email address by the code the SMTP relay receives; wrong and expired codes are
 * refused; the per-user limit refuses a code request with a clear text and sends nothing; admins define and
 * rotate groups, other users are refused.
 */
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTwilioFake, type TwilioFake } from "../twilio/server.js";
import { slotDomain } from "../slots.js";
import { errorOf, registration, runCommand, TestUser, xml, type Element } from "../support/client.js";
import { once } from "node:events";
import { gatewayProcess, runGatewayCommand } from "../support/process.js";
import { startRelay, type TestRelay } from "../support/relay.js";
import { sharedBed, startTestGateway, takeSlot, type TestGateway } from "../support/gateway.js";
import { Keys } from "../../src/store/keys.js";

const ACCOUNT = "AC" + "7".repeat(32);
const TOKEN = "people-token";
const FROM = "+12025550700";
/** Codes expire this fast here (config people.codeTtlSeconds), so the expired-code test waits seconds. */
const CODE_TTL_SECONDS = 5;
/** Code requests one user may make in an hour (config people.codesPerUserPerHour). */
const PER_USER = 3;
const API_TOKEN = "people-api-token";
const ADMIN_TOKEN = "people-admin-token";

const COMMANDS = "http://jabber.org/protocol/commands";
const note = (answer: Element) => answer.getChild("command", COMMANDS)?.getChildText("note") ?? "";
const codeIn = (text: string) => /verification code is (\d{6})/.exec(text)?.[1];

describe("alert recipients: contacts and groups", () => {
  const bed = sharedBed();
  const peer = bed.prosody!;
  let fake: TwilioFake;
  let relay: TestRelay;
  let gw: TestGateway;
  let redis: Redis;
  let domain: string;
  let tag: string;
  const users: TestUser[] = [];

  async function user(name: string) {
    const u = await TestUser.login(peer, `${name}-people-${tag}`);
    users.push(u);
    return u;
  }
  const contactKey = (jid: string) => new Keys(gw.keyPrefix).adapterKey("notify")("contact", jid);

  beforeAll(async () => {
    const slot = await takeSlot(bed);
    domain = slotDomain(slot, "alerts");
    tag = String(slot);
    fake = await startTwilioFake({ accountSid: ACCOUNT, authToken: TOKEN, numbers: [FROM] });
    relay = await startRelay();
    redis = new Redis(bed.redis!.url);
    gw = await startTestGateway({
      peer,
      redisUrl: bed.redis!.url,
      slot,
      admins: [`boss-people-${tag}@${peer.host}`],
      http: { admin: { tokenEnv: "TEST_ADMIN_TOKEN" } },
      adapters: {
        notify: {
          tokens: [{ name: "Scripts", tokenEnv: "TEST_API_TOKEN", recipients: [peer.host] }],
          twilio: { accountSid: ACCOUNT, authTokenEnv: "TOKEN", apiBaseUrl: fake.url, from: FROM },
          email: {
            relay: { host: "127.0.0.1", port: relay.port, starttls: false },
            from: "alerts@people-test.example.org",
          },
          people: { codeTtlSeconds: CODE_TTL_SECONDS, codesPerUserPerHour: PER_USER, noticesPerHour: 1 },
        },
      },
      env: { TOKEN, TEST_API_TOKEN: API_TOKEN, TEST_ADMIN_TOKEN: ADMIN_TOKEN },
    });
  });

  afterAll(async () => {
    await Promise.all(users.map((u) => u.stop()));
    await gw?.stop();
    await fake?.stop();
    await relay?.stop();
    redis?.disconnect();
  });

  /** The code texted to `to`, once the Twilio-compatible server has it. */
  async function smsCode(to: string, after: number): Promise<string> {
    await expect
      .poll(
        () =>
          fake
            .sent()
            .slice(after)
            .find((m) => m.to === to),
        { timeout: 10_000 },
      )
      .toBeTruthy();
    const code = codeIn(
      fake
        .sent()
        .slice(after)
        .find((m) => m.to === to)?.body ?? "",
    );
    expect(code).toBeDefined();
    return code!;
  }

  it("verifies a phone number by the code sent by SMS, after refusing a wrong code", async () => {
    const alice = await user("alice");
    const phone = "+12025550711";
    const before = fake.sent().length;
    const asked = await runCommand(alice, domain, "notify-contacts", {
      phone: "+1 202-555-0711",
      tz: "Europe/Paris",
      quietStart: "22:00",
      quietEnd: "07:00",
      "channel-xmpp": "1",
      "channel-sms": "1",
      "channel-email": "0",
    });
    expect(asked.attrs.type, alice.dump()).toBe("result");
    expect(note(asked)).toContain(`A code was sent to ${phone}`);
    const code = await smsCode(phone, before);
    // Not stored until the code comes back: the engine sees no phone number yet.
    expect(await redis.hget(contactKey(alice.bare), "phoneVerified")).toBeNull();

    const wrong = await runCommand(alice, domain, "notify-verify", {
      code: code === "000000" ? "111111" : "000000",
    });
    expect(wrong.attrs.type).toBe("error");
    expect(errorOf(wrong).text).toMatch(/wrong/);
    expect(await redis.hget(contactKey(alice.bare), "phoneVerified")).toBeNull();

    const right = await runCommand(alice, domain, "notify-verify", { code });
    expect(right.attrs.type, alice.dump()).toBe("result");
    expect(note(right)).toContain(`${phone} is verified`);
    expect(await redis.hgetall(contactKey(alice.bare))).toMatchObject({
      phone,
      phoneVerified: "1",
      quietStart: "22:00",
      quietEnd: "07:00",
      tz: "Europe/Paris",
      channels: "xmpp,sms",
    });
  });

  it("refuses a code that expired", async () => {
    const dave = await user("dave");
    const phone = "+12025550712";
    const before = fake.sent().length;
    const asked = await runCommand(dave, domain, "notify-contacts", {
      phone,
      tz: "UTC",
      "channel-xmpp": "1",
      "channel-sms": "1",
    });
    expect(asked.attrs.type, dave.dump()).toBe("result");
    const code = await smsCode(phone, before);
    const pending = new Keys(gw.keyPrefix).adapterKey("notify")("verify", "phone", dave.bare);
    // The code's time runs out in Redis (config people.codeTtlSeconds).
    await expect.poll(() => redis.exists(pending), { timeout: (CODE_TTL_SECONDS + 10) * 1000 }).toBe(0);

    const late = await runCommand(dave, domain, "notify-verify", { code });
    expect(late.attrs.type).toBe("error");
    expect(errorOf(late).text).toMatch(/expired/);
    expect(await redis.hget(contactKey(dave.bare), "phone")).toBeNull();
  });

  it("refuses a code request over the per-user hourly limit with a clear text, and texts nothing", async () => {
    const eve = await user("eve");
    for (let i = 0; i < PER_USER; i++) {
      const asked = await runCommand(eve, domain, "notify-contacts", {
        phone: `+1202555072${i}`,
        tz: "UTC",
        "channel-xmpp": "1",
      });
      expect(asked.attrs.type, eve.dump()).toBe("result");
    }
    await expect
      .poll(() => fake.sent().filter((m) => m.to.startsWith("+1202555072")).length, { timeout: 10_000 })
      .toBe(PER_USER);

    const refused = await runCommand(eve, domain, "notify-contacts", {
      phone: "+12025550729",
      tz: "UTC",
      "channel-xmpp": "1",
    });
    expect(refused.attrs.type).toBe("error");
    expect(errorOf(refused).condition).toBe("policy-violation");
    expect(errorOf(refused).text).toMatch(
      new RegExp(`${PER_USER} verification codes this hour.*No code was sent`),
    );
    await eve.sync();
    expect(fake.sent().some((m) => m.to === "+12025550729")).toBe(false);
    const metrics = await (await fetch(`http://127.0.0.1:${gw.gateway.http!.privatePort}/metrics`)).text();
    expect(metrics).toMatch(/xgw_notify_verification_codes_total\{channel="sms",outcome="refused_user"\} 1/);
  });

  it("verifies an email address by the code sent by mail", async () => {
    const bob = await user("bob");
    const before = relay.mails.length;
    const asked = await runCommand(bob, domain, "notify-contacts", {
      email: "Bob.Smith@Example.ORG",
      tz: "America/New_York",
      "channel-xmpp": "1",
      "channel-email": "1",
    });
    expect(asked.attrs.type, bob.dump()).toBe("result");
    expect(note(asked)).toContain("A code was sent to Bob.Smith@example.org");
    await expect.poll(() => relay.mails.length, { timeout: 10_000 }).toBeGreaterThan(before);
    const mail = relay.mails
      .slice(before)
      .map(String)
      .find((m) => m.includes("Bob.Smith@example.org"));
    const code = codeIn(mail ?? "");
    expect(code, mail).toBeDefined();

    const right = await runCommand(bob, domain, "notify-verify", { code: code! });
    expect(right.attrs.type, bob.dump()).toBe("result");
    expect(await redis.hgetall(contactKey(bob.bare))).toMatchObject({
      email: "Bob.Smith@example.org",
      emailVerified: "1",
      tz: "America/New_York",
      channels: "xmpp,email",
    });
  });

  it("refuses a bad phone number, time zone or time and stores nothing", async () => {
    const fay = await user("fay");
    for (const [fields, text] of [
      [{ phone: "12345" }, /international form/],
      [{ tz: "Mars/Olympus" }, /not a time zone/],
      [{ quietStart: "25:00", quietEnd: "07:00" }, /not a time/],
    ] as const) {
      const answer = await runCommand(fay, domain, "notify-contacts", {
        tz: "UTC",
        "channel-xmpp": "1",
        ...fields,
      });
      expect(answer.attrs.type).toBe("error");
      expect(errorOf(answer).text).toMatch(text);
    }
    expect(await redis.exists(contactKey(fay.bare))).toBe(0);
  });

  it("lets an admin define and rotate a group, and refuses another user", async () => {
    const boss = await user("boss");
    const members = [`a-${tag}@${peer.host}`, `b-${tag}@${peer.host}`, `c-${tag}@${peer.host}`];
    const defined = await runCommand(boss, domain, "notify-group-define", {
      name: "ops-oncall",
      members: members.join("\n"),
    });
    expect(defined.attrs.type, boss.dump()).toBe("result");
    const groupKey = new Keys(gw.keyPrefix).adapterKey("notify")("group", "ops-oncall");
    expect(await redis.lrange(groupKey, 0, -1)).toEqual(members);

    const rotated = await runCommand(boss, domain, "notify-group-rotate", { name: "ops-oncall" });
    expect(note(rotated)).toContain(`${members[1]} is now on call`);
    expect(await redis.lrange(groupKey, 0, -1)).toEqual([members[1], members[2], members[0]]);

    const mallory = await user("mallory");
    const refused = await runCommand(mallory, domain, "notify-group-define", {
      name: "ops-oncall",
      members: mallory.bare,
    });
    expect(refused.attrs.type).toBe("error");
    expect(errorOf(refused).condition).toBe("forbidden");
    expect(await redis.lrange(groupKey, 0, -1)).toEqual([members[1], members[2], members[0]]);

    const deleted = await runCommand(boss, domain, "notify-group-delete", { name: "ops-oncall" });
    expect(note(deleted)).toContain("deleted");
    expect(await redis.exists(groupKey)).toBe(0);
  });

  it("sends an alert from the command line and prints its id; a wrong token prints the server's 401 text", async () => {
    const gina = await user("gina");
    const url = `http://127.0.0.1:${gw.gateway.http!.port}`;
    const sent = await runGatewayCommand(
      ["notify", "--url", url, "--to", gina.bare, "--title", "Disk full", "--text", "/var is at 99 %"],
      { XGW_NOTIFY_TOKEN: API_TOKEN },
    );
    expect(sent.code, sent.stderr).toBe(0);
    const id = sent.stdout.trim();
    expect(id).toMatch(/^[A-Za-z0-9_-]+$/);
    const message = await gina.waitFor(
      (el) => el.name === "message" && el.getChildText("body")?.includes("Disk full") === true,
      20_000,
    );
    expect(message.attrs.from).toBe(`scripts@${domain}`);

    const refused = await runGatewayCommand(
      ["notify", "--url", url, "--to", gina.bare, "--title", "Nope", "--token-env", "OTHER_TOKEN_VAR"],
      { OTHER_TOKEN_VAR: "not-the-token" },
    );
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("HTTP 401");
    expect(refused.stderr).toContain("missing or unknown bearer token");
    expect(refused.stdout).toBe("");
  });

  it("waits with --wait-ack until the recipient acknowledges, then exits 0", async () => {
    const jay = await user("jay");
    const url = `http://127.0.0.1:${gw.gateway.http!.port}`;
    const child = gatewayProcess(
      ["notify", "--url", url, "--to", jay.bare, "--title", "Wait for me", "--text", "x", "--wait-ack"],
      { XGW_NOTIFY_TOKEN: API_TOKEN },
    );
    let stdout = "";
    let stderr = "";
    child.stdout?.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
    const exited = once(child, "exit") as Promise<[number]>;
    try {
      const alert = await jay.waitFor(
        (el) => el.name === "message" && el.getChildText("body")?.includes("Wait for me") === true,
        20_000,
      );
      await expect.poll(() => stdout.trim(), { timeout: 10_000 }).toMatch(/^[A-Za-z0-9_-]+$/);
      expect(child.exitCode).toBeNull(); // still waiting
      await jay.send(
        xml("message", { to: alert.attrs.from, type: "chat", id: "jay-ack" }, xml("body", {}, "ack")),
      );
      const [code] = await exited;
      expect(code, stderr).toBe(0);
      expect(stderr).toContain(`acknowledged by ${jay.bare}`);
    } finally {
      child.kill();
    }
  });

  it("sends an admin's notice to everyone registered after the admin confirms the number of people", async () => {
    const boss = await user("boss2");
    const hal = await user("hal");
    const ivy = await user("ivy");
    for (const u of [hal, ivy]) {
      const reg = await u.iq("set", gw.domain, registration({ nick: u.bare.split("@")[0]! }));
      expect(reg.attrs.type, u.dump()).toBe("result");
    }
    const fields = {
      audience: "everyone",
      title: "Maintenance tonight",
      text: "22:00 UTC",
      severity: "info",
    };
    // Not an admin: refused.
    const refused = await runCommand(hal, domain, "notify-notice", fields);
    expect(errorOf(refused).condition).toBe("forbidden");

    // Through the admin API (what the admin page posts): first the question, then the notice.
    const post = (values: Record<string, string>) =>
      fetch(`http://127.0.0.1:${gw.gateway.http!.privatePort}/admin/api/commands/notify/notify-notice`, {
        method: "POST",
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify({ values }),
      });
    // The admin page: the command's page again, with the question and the "Confirm" field.
    const html = await (
      await fetch(`http://127.0.0.1:${gw.gateway.http!.privatePort}/admin/commands/notify/notify-notice`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${ADMIN_TOKEN}`,
          "content-type": "application/x-www-form-urlencoded",
        },
        body: new URLSearchParams(fields).toString(),
      })
    ).text();
    expect(html).toContain("to 2 people");
    expect(html).toMatch(/name="confirm"/);
    expect(html).toMatch(/name="title" value="Maintenance tonight"/);

    const asked = (await (await post(fields)).json()) as { note: string; next?: unknown };
    expect(asked.note).toContain("to 2 people");
    expect(asked.next).toBeDefined();
    await hal.sync();
    expect(hal.received.some((el) => el.getChildText("body")?.includes("Maintenance") === true)).toBe(false);

    const sent = (await (await post({ ...fields, confirm: "2" })).json()) as { note: string };
    expect(sent.note).toMatch(/Notice \S+ is on its way to 2 people/);
    for (const u of [hal, ivy]) {
      const got = await u.waitFor(
        (el) => el.name === "message" && el.getChildText("body")?.includes("Maintenance tonight") === true,
        20_000,
      );
      expect(got.attrs.from).toBe(`notices@${domain}`);
    }
    await boss.sync();
    expect(boss.received.some((el) => el.getChildText("body")?.includes("Maintenance") === true)).toBe(false);

    // One notice an hour here (config people.noticesPerHour): the next is refused and nothing goes out.
    const again = await post({ ...fields, title: "Second notice", confirm: "2" });
    expect(again.status).toBe(400);
    expect(((await again.json()) as { text: string }).text).toMatch(
      /1 notices have been sent this hour.*Nothing was sent/,
    );
    await hal.sync();
    expect(hal.received.some((el) => el.getChildText("body")?.includes("Second notice") === true)).toBe(
      false,
    );
    const metrics = await (await fetch(`http://127.0.0.1:${gw.gateway.http!.privatePort}/metrics`)).text();
    expect(metrics).toMatch(/xgw_notify_notices_total\{outcome="refused_limit"\} 1/);

    // The dashboard lists the notice among recent alerts with each recipient's state, without its text.
    const page = await (
      await fetch(`http://127.0.0.1:${gw.gateway.http!.privatePort}/admin`, {
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      })
    ).text();
    const id = /Notice (\S+) is on its way/.exec(sent.note)![1]!;
    expect(page).toContain("Recent alerts");
    expect(page).toContain(id);
    expect(page).toContain(`${hal.bare}: xmpp`);
    expect(page).not.toContain("22:00 UTC");
  });

  it("asks for the confirmation over XMPP as a next step of the same command", async () => {
    // The admin logged in by the groups test, or a fresh session when this test runs alone.
    const boss = users.find((u) => u.bare.startsWith("boss-people")) ?? (await user("boss"));
    const first = await boss.iq(
      "set",
      domain,
      xml("command", { xmlns: COMMANDS, node: "notify-notice", action: "execute" }),
    );
    const sessionid = first.getChild("command", COMMANDS)?.attrs.sessionid;
    const asked = await boss.iq(
      "set",
      domain,
      xml(
        "command",
        { xmlns: COMMANDS, node: "notify-notice", sessionid, action: "complete" },
        xml(
          "x",
          { xmlns: "jabber:x:data", type: "submit" },
          ...Object.entries({ audience: "user", to: boss.bare, title: "Hello", severity: "info" }).map(
            ([k, v]) => xml("field", { var: k }, xml("value", {}, v)),
          ),
        ),
      ),
    );
    const command = asked.getChild("command", COMMANDS);
    expect(command?.attrs.status, boss.dump()).toBe("executing");
    expect(command?.getChildText("note")).toContain("to 1 person");
    expect(command?.getChild("x", "jabber:x:data")?.attrs.type).toBe("form");
  });

  it("says a phone number cannot be verified when the gateway sends no SMS, and counts nothing", async () => {
    const slot = await takeSlot(bed);
    const bare = await startTestGateway({
      peer,
      redisUrl: bed.redis!.url,
      slot,
      adapters: { notify: {} },
    });
    try {
      const kim = await user("kim");
      const answer = await runCommand(kim, slotDomain(slot, "alerts"), "notify-contacts", {
        phone: "+12025550740",
        tz: "UTC",
        "channel-xmpp": "1",
      });
      expect(answer.attrs.type).toBe("error");
      expect(errorOf(answer).condition).toBe("feature-not-implemented");
      expect(errorOf(answer).text).toContain("sends no SMS");
      const key = new Keys(bare.keyPrefix).adapterKey("notify");
      expect(await redis.keys(`${key("codes-user")}*`)).toEqual([]);
    } finally {
      await bare.stop();
    }
  });
});
