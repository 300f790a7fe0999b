/**
 * The fault suite: steady mixed traffic through all three adapters (SMS, email, IRC; both ways) while, in
 * turn, the gateway is killed with SIGKILL and restarted, the XMPP server restarts, Redis restarts (AOF on,
 * as docs/deployment.md asks), the IRC server restarts, the Twilio-compatible API answers 500s and then
 * hangs, and the SMTP relay answers 451 for a while. Afterwards it counts, and names what went wrong:
 * - every inbound message the network was told was stored (webhook 200, SMTP 250) or that the gateway's IRC
 *   connections were in the channel for, reached its user;
 * - no SMS, mail or IRC line was sent twice;
 * - every outbound message either went out or its sender got an error for it.
 * Runs on private servers (it restarts them). Recovery times are printed, not asserted (see bench/).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import nodemailer from "nodemailer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, type IrcPeer, type RedisPeer, type XmppPeer } from "../bed/index.js";
import { startNgircd } from "../bed/ngircd.js";
import { startProsody } from "../bed/prosody.js";
import { startRedis } from "../bed/redis.js";
import { slotDomain, TEST_SECRET } from "../slots.js";
import { registration, TestUser, xml } from "../support/client.js";
import { startDns, type TestDns } from "../support/dns.js";
import { sharedBed, takeSlot, testConfig } from "../support/gateway.js";
import { spawnGateway, type GatewayProcess } from "../support/process.js";
import { RawIrc } from "../support/raw-irc.js";
import { startRelay, type TestRelay } from "../support/relay.js";
import { startTwilioFake, type TwilioFake } from "../twilio/server.js";

const ACCOUNT = "AC" + "6".repeat(32);
const TOKEN = "fault-token";
const USERS = 4;
const MAIL_DOMAIN = "faults.example.org";
const FRIEND = "friend@example.com";
const CHANNEL = "#faults";
const MUC = "http://jabber.org/protocol/muc";
/** Each user's dedicated number, and the phone each one texts with. */
const number = (i: number) => `+1202555070${i}`;
const phone = (i: number) => `+1202555071${i}`;
const nick = (i: number) => `fault${i}`;
/** Pause between two messages of one traffic loop: 6 loops per user ≈ 4 × 6 × 5 = 120 messages/s at most. */
const TRAFFIC_GAP_MS = 200;
/** How long the suite waits after the last fault for stragglers (redelivery, retries). */
const SETTLE_TIMEOUT_MS = 90_000;

/** An outbound message: where it went and the marker its body carries. */
interface Sent {
  user: number;
  id: string;
}

describe("fault suite", () => {
  let dir: string;
  let prosody: XmppPeer;
  let redis: RedisPeer;
  let ircd: IrcPeer;
  let fake: TwilioFake;
  let relay: TestRelay;
  let dns: TestDns;
  let gateway: GatewayProcess | undefined;
  let config: ReturnType<typeof testConfig>;
  /** Fixed across restarts, like a production gateway's (Twilio and mail servers keep the same address). */
  let httpPort: number;
  let smtpPort: number;
  let domains: { sms: string; echo: string; mail: string; irc: string };
  const users: TestUser[] = [];
  /** The IRC side: a plain client in the channel (a new one after each IRC server restart). */
  const petes: RawIrc[] = [];
  const recovery: Record<string, number> = {};
  let starts = 0;

  const startGateway = async () => {
    gateway = await spawnGateway({
      dir,
      name: `gateway-${++starts}`,
      config,
      env: { TEST_ECHO_SECRET: TEST_SECRET, TOKEN },
      httpPort,
    });
    await gateway.waitLog("component stream online", {
      where: () => gateway!.lines.filter((l) => l.msg === "component stream online").length >= 4,
    });
  };
  const room = () => `${CHANNEL}@${domains.irc}`;
  const join = (u: TestUser, i: number) =>
    u.send(xml("presence", { to: `${room()}/${nick(i)}` }, xml("x", { xmlns: MUC })));
  const pete = () => petes.at(-1)!;
  const connectPete = async () => {
    const irc = await RawIrc.connect(ircd.port, "pete");
    irc.send(`JOIN ${CHANNEL}`);
    await irc.waitFor((l) => / 366 /.test(l));
    petes.push(irc);
  };
  /** Whether every user's IRC connection is in the channel, as the IRC server tells a NAMES query. */
  const allInChannel = async (): Promise<boolean> => {
    const irc = pete();
    const from = irc.lines.length;
    irc.send(`NAMES ${CHANNEL}`);
    await irc.waitFor((l) => / 366 /.test(l) && irc.lines.indexOf(l) >= from, 5_000).catch(() => "");
    const names = irc.lines
      .slice(from)
      .filter((l) => / 353 /.test(l))
      .flatMap((l) => l.slice(l.indexOf(" :", 1) + 2).split(" "))
      .map((n) => n.replace(/^[@+%]/, ""));
    return Array.from({ length: USERS }, (_, i) => nick(i)).every((n) => names.includes(n));
  };

  /** Polls `check` until it holds (for setup, where expect.poll is not available). */
  async function until(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
      await sleep(250);
    }
  }

  beforeAll(async () => {
    const slot = await takeSlot(sharedBed());
    domains = {
      sms: slotDomain(slot, "sms"),
      echo: slotDomain(slot, "echo"),
      mail: slotDomain(slot, "mail"),
      irc: slotDomain(slot, "irc"),
    };
    dir = await mkdtemp(path.join(tmpdir(), "gw-faults-"));
    [prosody, redis, ircd, fake, relay, dns] = await Promise.all([
      startProsody({
        dir: path.join(dir, "prosody"),
        host: "localhost",
        components: Object.values(domains).map((domain) => ({ domain, secret: TEST_SECRET })),
      }),
      startRedis({ dir: path.join(dir, "redis"), appendOnly: true }),
      startNgircd({ dir: path.join(dir, "irc") }),
      startTwilioFake({
        accountSid: ACCOUNT,
        authToken: TOKEN,
        numbers: Array.from({ length: USERS }, (_, i) => number(i)),
      }),
      startRelay(),
      startDns({ "example.com": "v=spf1 ip4:127.0.0.1 -all", "_dmarc.example.com": "v=DMARC1; p=none" }),
    ]);
    [httpPort, smtpPort] = [await freePort(), await freePort()];
    config = testConfig({
      peer: prosody,
      redisUrl: redis.url,
      slot,
      keyPrefix: "faults:",
      echo: { requireRegistration: false },
      adapters: {
        sms: {
          twilio: { accountSid: ACCOUNT, authTokenEnv: "TOKEN", apiBaseUrl: fake.url, timeoutSeconds: 2 },
          numbers: {
            dedicated: Object.fromEntries(
              Array.from({ length: USERS }, (_, i) => [number(i), `fault-${i}@${prosody.host}`]),
            ),
          },
          limits: { messagesPerHour: 100_000, segmentsPerDay: 100_000 },
        },
        email: {
          mailDomain: MAIL_DOMAIN,
          relay: { host: "127.0.0.1", port: relay.port, starttls: false, timeoutSeconds: 5 },
          inbound: { port: smtpPort },
          auth: { dnsServers: [dns.server] },
        },
        irc: {
          servers: { fixed: ircd.serverName },
          tls: false,
          addresses: { [ircd.serverName]: { host: "127.0.0.1", port: ircd.port } },
          lineDelayMs: 0,
        },
      },
    });
    await startGateway();
    await connectPete();
    for (let i = 0; i < USERS; i++) {
      const u = await TestUser.login(prosody, `fault-${i}`);
      // Like a real client after a reconnect: roster, then presence (offline messages flow in).
      u.xmpp.on("online", () => {
        void u
          .iq("get", undefined, xml("query", { xmlns: "jabber:iq:roster" }))
          .then(() => u.send(xml("presence")))
          .catch(() => undefined);
      });
      users.push(u);
      expect((await u.iq("set", domains.sms, registration({ mode: "dedicated" }))).attrs.type).toBe("result");
      const mail = await u.iq("set", domains.mail, registration({ alias: `fault-${i}`, name: `Fault ${i}` }));
      expect(mail.attrs.type).toBe("result");
      await join(u, i);
      await u.waitFor((el) => el.name === "presence" && el.attrs.from === `${room()}/${nick(i)}`, 15_000);
    }
    await until(allInChannel, 20_000, "every user's IRC connection in the channel");
  });

  afterAll(async () => {
    for (const irc of petes) irc.close();
    await Promise.all(users.map((u) => u.stop()));
    await gateway?.kill("SIGKILL");
    await Promise.all([
      prosody?.stop(),
      redis?.stop(),
      ircd?.stop(),
      fake?.stop(),
      relay?.stop(),
      dns?.stop(),
    ]);
    if (dir && process.env.GW_KEEP_BED !== "1") await rm(dir, { recursive: true, force: true });
  });

  /** Time until an echo round trip works again, as the first user sees it. */
  async function timeToRecover(fault: string, since: number): Promise<void> {
    const u = users[0]!;
    for (let n = 0; ; n++) {
      const id = `probe-${fault}-${n}`;
      try {
        await u.send(xml("message", { to: `probe@${domains.echo}`, id, type: "chat" }, xml("body", {}, id)));
        await u.waitFor(
          (el) => el.name === "message" && el.getChildText("body")?.endsWith(id) === true,
          1_000,
        );
        recovery[fault] = Date.now() - since;
        return;
      } catch {
        if (Date.now() - since > 60_000) throw new Error(`no recovery from "${fault}" within 60 s`);
        await sleep(200);
      }
    }
  }

  it("loses nothing and sends nothing twice through crashes, restarts and failing providers", async () => {
    /** Inbound the network was told is stored, per user: body markers. */
    const stored: { user: number; marker: string }[] = [];
    const refused: string[] = [];
    const outbound: Sent[] = [];
    /** Outbound pauses while the XMPP side is about to die (see the comments where it is set). */
    let xmppQuiet = false;
    /** IRC inbound pauses while the gateway's IRC connections are not all in the channel. */
    let ircQuiet = false;
    let running = true;
    const loop = async (body: (n: number) => Promise<void> | void) => {
      for (let n = 0; running; n++) {
        await body(n);
        await sleep(TRAFFIC_GAP_MS);
      }
    };
    const outside = nodemailer.createTransport({
      host: "127.0.0.1",
      port: smtpPort,
      ignoreTLS: true,
      pool: false,
    });

    const loops = Array.from({ length: USERS }, (_, i) => [
      // SMS in: a phone texts the user's number through Twilio's webhook.
      loop(async (n) => {
        const marker = `sms-in-${i}-${n}`;
        const answer = await fake
          .sendInbound({
            from: phone(i),
            to: number(i),
            body: marker,
            webhookUrl: `http://127.0.0.1:${httpPort}/sms/twilio/sms`,
          })
          .catch(() => ({ status: 0 }));
        if (answer.status === 200) stored.push({ user: i, marker });
        else refused.push(`${marker}: HTTP ${answer.status}`);
      }),
      // Mail in: an outside server mails the user's alias.
      loop(async (n) => {
        const marker = `mail-in-${i}-${n}`;
        try {
          await outside.sendMail({
            from: FRIEND,
            to: `fault-${i}@${MAIL_DOMAIN}`,
            subject: marker,
            text: marker,
          });
          stored.push({ user: i, marker });
        } catch (err) {
          refused.push(`${marker}: ${(err as Error).message.slice(0, 60)}`);
        }
      }),
      // Out: the user writes to the phone, the friend's address and the IRC channel, in turn.
      loop(async (n) => {
        const u = users[i]!;
        if (xmppQuiet || u.xmpp.status !== "online") return;
        const kind = (["sms", "mail", "irc"] as const)[n % 3]!;
        const id = `${kind}-out-${i}-${n}`;
        const to =
          kind === "sms"
            ? `${phone(i)}@${domains.sms}`
            : kind === "mail"
              ? `${FRIEND.replace("@", "\\40")}@${domains.mail}`
              : room();
        try {
          await u.send(
            xml("message", { to, id, type: kind === "irc" ? "groupchat" : "chat" }, xml("body", {}, id)),
          );
          outbound.push({ user: i, id });
        } catch {
          // Never left the client: the user's own client shows it as not sent.
        }
      }),
    ]).flat();
    // IRC in: a plain IRC user talks in the channel; every user's connection is there to hear it.
    loops.push(
      loop((n) => {
        if (ircQuiet) return;
        const marker = `irc-in-${n}`;
        pete().send(`PRIVMSG ${CHANNEL} :${marker}`);
        for (let i = 0; i < USERS; i++) stored.push({ user: i, marker });
      }),
    );
    const ircBack = async () => {
      await expect.poll(allInChannel, { timeout: 60_000, interval: 500 }).toBe(true);
      ircQuiet = false;
    };
    await sleep(2_000);

    // 1. The gateway dies without a chance to clean up. XEP-0114 and IRC have no acknowledgements: what is
    //    already in the dead process's sockets is gone with it, whatever the gateway does. So traffic into it
    //    pauses a moment first; what it had accepted is covered by its ledger (test/e2e/crash.test.ts).
    xmppQuiet = ircQuiet = true;
    await sleep(500);
    let since = Date.now();
    await gateway!.kill("SIGKILL");
    await sleep(1_000);
    await startGateway();
    xmppQuiet = false;
    await timeToRecover("gateway SIGKILL", since);
    await ircBack();
    await sleep(2_000);

    // 2. The XMPP server restarts. Messages a client sends into a dying server are the server's to lose (no
    //    stream management on this test server), so outbound pauses across the restart; the users' clients
    //    rejoin their rooms when they are back, as real clients do.
    xmppQuiet = ircQuiet = true;
    await sleep(500);
    since = Date.now();
    await prosody.stop();
    await prosody.start();
    await expect.poll(() => users.every((u) => u.xmpp.status === "online"), { timeout: 30_000 }).toBe(true);
    xmppQuiet = false;
    await timeToRecover("XMPP server restart", since);
    // The users' sessions ended with the server, so they left their rooms; their clients join again once the
    // gateway is reachable (a join sent before the component reconnected bounces, and clients retry).
    for (let i = 0; i < USERS; i++) {
      const u = users[i]!;
      const inRoom = (from: number) =>
        u.received
          .slice(from)
          .some((el) => el.name === "presence" && el.attrs.from === `${room()}/${nick(i)}` && !el.attrs.type);
      await until(
        async () => {
          const from = u.received.length;
          await join(u, i);
          await sleep(2_000);
          return inRoom(from);
        },
        30_000,
        `${nick(i)} back in the room`,
      );
    }
    await ircBack();
    await sleep(2_000);

    // 3. Redis restarts (AOF): webhooks answer 503 and SMTP 451 meanwhile (the network retries), stanzas get
    //    "try again"; IRC lines keep coming and must not be lost.
    since = Date.now();
    await redis.stop();
    await sleep(1_000);
    await redis.start();
    await timeToRecover("Redis restart", since);
    await sleep(2_000);

    // 4. The IRC server restarts: every IRC connection drops; the gateway reconnects and rejoins.
    ircQuiet = true;
    since = Date.now();
    await ircd.stop();
    await ircd.start();
    await connectPete();
    await ircBack();
    recovery["IRC server restart"] = Date.now() - since;
    await sleep(2_000);

    // 5. Twilio fails: 500s (retried), then requests left hanging (reported, never repeated).
    since = Date.now();
    fake.fail({ status: 500, times: 10 });
    await sleep(1_500);
    fake.hang(3);
    await sleep(3_000);
    recovery["Twilio 500s and hangs"] = Date.now() - since;

    // 6. The relay is busy: 451 to everything for 3 s (retried with backoff, or reported).
    relay.busy = true;
    await sleep(3_000);
    relay.busy = false;
    await sleep(2_000);

    running = false;
    await Promise.all(loops);
    outside.close();

    // Count. Inbound: everything stored (or heard on IRC) reached its user at least once.
    const received = users.map(
      (u) => new Set(u.received.map((el) => el.getChildText("body") ?? "").filter((b) => b !== "")),
    );
    const missing = () => stored.filter(({ user, marker }) => !received[user]!.has(marker));
    const refresh = () =>
      users.forEach((u, i) => u.received.forEach((el) => received[i]!.add(el.getChildText("body") ?? "")));
    await expect
      .poll(
        () => {
          refresh();
          return missing()
            .map(({ user, marker }) => `${marker} for user ${user}`)
            .slice(0, 20);
        },
        { timeout: SETTLE_TIMEOUT_MS, interval: 1_000 },
      )
      .toEqual([]);

    // Outbound: each marker went out at most once, and either went out or its sender got an error.
    const outCount = new Map<string, number>();
    const countOut = (marker: string) => outCount.set(marker, (outCount.get(marker) ?? 0) + 1);
    const tally = () => {
      outCount.clear();
      for (const m of fake.sent()) countOut(m.body);
      for (const raw of relay.mails)
        for (const marker of new Set(raw.toString("utf8").match(/mail-out-\d+-\d+/g) ?? [])) countOut(marker);
      for (const irc of petes)
        for (const line of irc.lines) {
          const marker = /^:fault\d+!\S+ PRIVMSG #faults :(irc-out-\d+-\d+)$/.exec(line)?.[1];
          if (marker) countOut(marker);
        }
    };
    const errorIds = () =>
      users.map(
        (u) => new Set(u.received.filter((el) => el.attrs.type === "error").map((el) => el.attrs.id ?? "")),
      );
    const unaccounted = () => {
      tally();
      const errors = errorIds();
      return outbound.filter((m) => !outCount.has(m.id) && !errors[m.user]!.has(m.id)).map((m) => m.id);
    };
    await expect.poll(unaccounted, { timeout: SETTLE_TIMEOUT_MS, interval: 1_000 }).toEqual([]);
    tally();
    expect(
      [...outCount].filter(([, n]) => n > 1).map(([marker]) => marker),
      "sent more than once",
    ).toEqual([]);

    const errors = errorIds().reduce((sum, ids) => sum + ids.size, 0);
    console.info(
      `fault suite: ${stored.length} inbound stored or heard (${refused.length} refused and left to the ` +
        `network's retry), ${outbound.length} outbound (${outCount.size} went out, ${errors} answered with ` +
        `an error); time to recover: ${Object.entries(recovery)
          .map(([fault, ms]) => `${fault} ${ms} ms`)
          .join(", ")}`,
    );
    for (const prefix of ["sms-in", "mail-in", "irc-in"])
      expect(stored.filter((s) => s.marker.startsWith(prefix)).length, prefix).toBeGreaterThan(USERS * 5);
    for (const prefix of ["sms-out", "mail-out", "irc-out"])
      expect([...outCount.keys()].filter((m) => m.startsWith(prefix)).length, prefix).toBeGreaterThan(
        USERS * 3,
      );
  }, 300_000);
});
