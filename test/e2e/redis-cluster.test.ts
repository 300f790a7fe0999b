/**
 * Redis Cluster: the compiled gateway on a real cluster of three masters (test/bed/redis-cluster.ts). Its
 * scripts and transactions touch several keys at once, which a cluster refuses (CROSSSLOT) unless they share
 * a hash slot: registration, echo both ways, SMS and email both ways show that they do. Then the slots of
 * the SMS domain's inbox and of the SMS ledger move to other masters (`redis-cli --cluster reshard`) while
 * webhooks and XMPP messages flow: nothing acknowledged is lost, nothing arrives or is sent twice.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import nodemailer from "nodemailer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../bed/ports.js";
import { startRedisCluster, type RedisCluster } from "../bed/redis-cluster.js";
import { slotDomain, TEST_SECRET } from "../slots.js";
import { registration, TestUser, until, xml } from "../support/client.js";
import { startDns, type TestDns } from "../support/dns.js";
import { ensureDist } from "../support/dist.js";
import { sharedBed, takeSlot, testConfig } from "../support/gateway.js";
import { spawnGateway, type GatewayProcess } from "../support/process.js";
import { startRelay, type TestRelay } from "../support/relay.js";
import { startTwilioFake, type TwilioFake } from "../twilio/server.js";
import { Keys } from "../../src/store/keys.js";

const ACCOUNT = "AC" + "7".repeat(32);
const TOKEN = "cluster-token";
const OWN = "+12025550700";
const CONTACT = "+12025550711";
const MAIL_DOMAIN = "cluster.example.org";
const FRIEND = "friend@example.com";
/** Senders at once (webhooks, and SMS from the user) while the slots move. */
const PARALLEL = 3;
/** Pause of each sender between two messages: steady traffic, not a flood. */
const GAP_MS = 20;
/** How often an unanswered webhook is sent again (as Twilio retries). */
const RETRY_MS = 100;

const duplicates = (items: string[]) => items.filter((x, i) => items.indexOf(x) !== i);
const chat = (to: string, id: string, body: string) =>
  xml("message", { to, id, type: "chat" }, xml("body", {}, body));

describe("on a Redis Cluster of three masters", () => {
  const bed = sharedBed();
  const peer = bed.prosody!;
  let dir: string;
  let cluster: RedisCluster;
  let fake: TwilioFake;
  let relay: TestRelay;
  let dns: TestDns;
  let gw: GatewayProcess;
  let user: TestUser;
  let domains: { echo: string; sms: string; mail: string };
  let keys: Keys;
  let smtpPort: number;
  const bodies = (from: string) =>
    user.received
      .filter((el) => el.name === "message" && el.attrs.from?.startsWith(from) && el.attrs.type !== "error")
      .map((el) => el.getChildText("body") ?? "");

  beforeAll(async () => {
    ensureDist();
    const slot = await takeSlot(bed);
    domains = {
      echo: slotDomain(slot, "echo"),
      sms: slotDomain(slot, "sms"),
      mail: slotDomain(slot, "mail"),
    };
    dir = await mkdtemp(path.join(tmpdir(), "gw-cluster-"));
    [cluster, fake, relay, dns] = await Promise.all([
      startRedisCluster({ dir: path.join(dir, "redis") }),
      startTwilioFake({ accountSid: ACCOUNT, authToken: TOKEN, numbers: [OWN] }),
      startRelay(),
      startDns({ "example.com": "v=spf1 ip4:127.0.0.1 -all", "_dmarc.example.com": "v=DMARC1; p=none" }),
    ]);
    smtpPort = await freePort();
    const userName = `cluster-${slot}`;
    const keyPrefix = `cluster-${slot}:`;
    keys = new Keys(keyPrefix);
    const config = testConfig({
      peer,
      redisUrl: "",
      slot,
      keyPrefix,
      adapters: {
        sms: {
          twilio: {
            accountSid: ACCOUNT,
            authTokenEnv: "TWILIO_TOKEN",
            apiBaseUrl: fake.url,
            timeoutSeconds: 5,
          },
          numbers: { dedicated: { [OWN]: `${userName}@${peer.host}` } },
          limits: { messagesPerHour: 100_000, segmentsPerDay: 100_000 },
        },
        email: {
          mailDomain: MAIL_DOMAIN,
          relay: { host: "127.0.0.1", port: relay.port, starttls: false, timeoutSeconds: 5 },
          inbound: { port: smtpPort },
          auth: { dnsServers: [dns.server] },
        },
      },
    });
    gw = await spawnGateway({
      dir,
      name: "cluster",
      env: { TEST_ECHO_SECRET: TEST_SECRET, TWILIO_TOKEN: TOKEN },
      config: { ...config, redis: { cluster: cluster.seeds, keyPrefix } },
    });
    await gw.waitLog("component stream online", {
      timeoutMs: 60_000,
      where: () => gw.lines.filter((l) => l.msg === "component stream online").length >= 3,
    });
    user = await TestUser.login(peer, userName);
    for (const [domain, fields] of [
      [domains.echo, { nick: "Cl" }],
      [domains.sms, { mode: "dedicated" }],
      [domains.mail, { alias: userName }],
    ] as const) {
      const reg = await user.iq("set", domain, registration(fields));
      expect(reg.attrs.type, user.dump()).toBe("result");
    }
  });

  afterAll(async () => {
    await user?.stop();
    await gw?.kill("SIGKILL");
    await Promise.all([cluster?.stop(), fake?.stop(), relay?.stop(), dns?.stop()]);
    if (dir && process.env.GW_KEEP_BED !== "1") await rm(dir, { recursive: true, force: true });
  });

  it("echoes a message both ways (registration, outbound ledger, inbox)", async () => {
    await user.send(chat(`bot@${domains.echo}`, "echo-1", "hello cluster"));
    await user.waitFor((el) => el.name === "message" && el.getChildText("body") === "Cl: hello cluster");
  });

  it("sends an SMS through Twilio and delivers a signed webhook's SMS", async () => {
    await user.send(chat(`${CONTACT}@${domains.sms}`, "sms-1", "sms out"));
    await until(
      () => fake.sent().some((m) => m.body === "sms out" && m.to === CONTACT && m.from === OWN),
      15_000,
      () => `sent: ${JSON.stringify(fake.sent())}\n${user.dump()}`,
    );
    const answer = await fake.sendInbound({
      from: CONTACT,
      to: OWN,
      body: "sms in",
      webhookUrl: `http://127.0.0.1:${gw.httpPort}/sms/twilio/sms`,
    });
    expect(answer.status).toBe(200);
    await user.waitFor(
      (el) => el.attrs.from === `${CONTACT}@${domains.sms}` && el.getChildText("body") === "sms in",
    );
  });

  it("sends a mail through the relay and delivers an outside mail to the alias", async () => {
    await user.send(chat(`${FRIEND.replace("@", "\\40")}@${domains.mail}`, "mail-1", "mail out"));
    await until(
      () => relay.mails.some((m) => m.toString().includes("mail out")),
      15_000,
      () => user.dump(),
    );
    const outside = nodemailer.createTransport({ host: "127.0.0.1", port: smtpPort, ignoreTLS: true });
    await outside.sendMail({
      from: FRIEND,
      to: `${user.jid.split("@")[0]}@${MAIL_DOMAIN}`,
      subject: "mail in",
      text: "mail in",
    });
    outside.close();
    await user.waitFor((el) => el.name === "message" && el.getChildText("subject") === "mail in");
  });

  it("loses nothing acknowledged and sends nothing twice while the inbox and ledger slots move to other masters", async () => {
    const webhookUrl = `http://127.0.0.1:${gw.httpPort}/sms/twilio/sms`;
    const acknowledged: string[] = [];
    let moving = true;
    let inbound = 0;
    const sendInbound = async (): Promise<void> => {
      const n = inbound++;
      const body = `in-${n}`;
      const messageSid = `SM${String(n).padStart(32, "0")}`;
      for (;;) {
        const answer = await fake
          .sendInbound({ from: CONTACT, to: OWN, body, webhookUrl, messageSid })
          .catch(() => ({ status: 0 }));
        if (answer.status === 200) return void acknowledged.push(body);
        await new Promise((r) => setTimeout(r, RETRY_MS));
      }
    };
    let outbound = 0;
    const sendOutbound = () => {
      const id = `out-${outbound++}`;
      return user.send(chat(`${CONTACT}@${domains.sms}`, id, id));
    };
    const traffic = Array.from({ length: PARALLEL }, async () => {
      while (moving) {
        await Promise.all([sendInbound(), sendOutbound()]);
        await new Promise((r) => setTimeout(r, GAP_MS));
      }
    });
    await until(
      () => acknowledged.length >= 10,
      30_000,
      () => `acknowledged: ${acknowledged.length}`,
    );

    // The SMS domain's inbox (with its seen markers, attempts, dead letters) and the SMS ledger (seen markers,
    // in-flight set, and the adapter's own keys) each move to another master, one after the other.
    const moved: string[] = [];
    for (const key of [keys.inbox(domains.sms), keys.outboundInFlight("sms")]) {
      const before = await cluster.ownerOf(key);
      const to = cluster.ports.find((p) => p !== before)!;
      const started = Date.now();
      const slots = await cluster.reshard(key, to);
      expect(await cluster.ownerOf(key)).toBe(to);
      moved.push(`${key}: ${slots} slots from ${before} to ${to} in ${Date.now() - started} ms`);
    }
    const afterMove = acknowledged.length;
    await until(
      () => acknowledged.length >= afterMove + 10,
      30_000,
      () => `acknowledged: ${acknowledged.length}`,
    );
    moving = false;
    await Promise.all(traffic);
    console.log(
      `cluster reshard under traffic: ${moved.join("; ")}; ${acknowledged.length} acknowledged, ${outbound} SMS asked for`,
    );

    // Every acknowledged webhook reaches the user, once.
    await until(
      () => acknowledged.every((b) => bodies(`${CONTACT}@`).includes(b)),
      60_000,
      () => `lost: ${acknowledged.filter((b) => !bodies(`${CONTACT}@`).includes(b)).join(", ")}`,
    );
    expect(duplicates(bodies(`${CONTACT}@`).filter((b) => b.startsWith("in-"))), "delivered twice").toEqual(
      [],
    );
    // Every SMS the user wrote leaves once, or its sender is told it did not (an error stanza); none twice.
    const refused = new Set(
      user.received
        .filter((el) => el.attrs.type === "error" && el.attrs.id?.startsWith("out-"))
        .map((el) => el.attrs.id ?? ""),
    );
    await until(
      () => {
        const sent = new Set(fake.sent().map((m) => m.body));
        return Array.from({ length: outbound }, (_, i) => `out-${i}`).every(
          (id) => sent.has(id) || refused.has(id),
        );
      },
      30_000,
      () => `sent ${fake.sent().length} of ${outbound}, ${refused.size} refused`,
    );
    if (refused.size > 0)
      console.log(`SMS refused during the moves (the sender was told): ${[...refused].join(", ")}`);
    await fake.idle();
    expect(duplicates(fake.sent().map((m) => m.body)), "SMS sent twice").toEqual([]);
  }, 120_000);
});
