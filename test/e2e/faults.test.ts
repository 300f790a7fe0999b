/**
 * The fault suite: steady mixed traffic through all three adapters (SMS, email, IRC; both ways) runs straight
 * through, in turn: a gateway SIGKILL and restart, an XMPP server restart, a Redis restart (AOF on, as
 * docs/deployment.md asks), an IRC server restart, poison input (control characters and invalid UTF-8 on
 * IRC, a webhook whose MessageSid carries control characters), Twilio answering 500s and then hanging, the
 * SMTP relay answering 451, and last a Redis that loses all its data (restarted without its files). Traffic
 * never pauses for a fault: the crash windows are crossed.
 *
 * Afterwards every message is accounted for and each loss is put in one of three classes:
 * - (a) in a killed process's socket: XEP-0114 and IRC have no acknowledgements, so what the XMPP server or
 *   the IRC server had already written to a gateway that then died is gone with it (README, "The one loss a
 *   component cannot prevent"). A message counts here only with evidence: an outbound stanza the gateway
 *   never claimed (its ledger has no trace of it), sent just before the kill; an IRC line the server had
 *   relayed to a connection that then dropped because the gateway was killed.
 * - (r) with the data of a Redis that lost it: what was stored and not yet delivered when Redis came back
 *   empty (an operator who runs Redis without persistence accepts that; docs/deployment.md says so).
 * - (b) everything else, which must be zero.
 * Outbound duplicates (a second SMS, mail or IRC line for one stanza) must be zero too. Per fault it prints
 * lost (a), lost (r), lost (b), duplicates and the time until an echo round trip works again (printed, not
 * asserted: timings belong in bench/).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import nodemailer from "nodemailer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, type IrcPeer, type RedisPeer, type XmppPeer } from "../bed/index.js";
import { startNgircd } from "../bed/ngircd.js";
import { startProsody } from "../bed/prosody.js";
import { startRedis } from "../bed/redis.js";
import { slotDomain, TEST_SECRET } from "../slots.js";
import { registration, TestUser, xml, type Element } from "../support/client.js";
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
const KEY_PREFIX = "faults:";
/** Each user's dedicated number, and the phone each one texts with. */
const number = (i: number) => `+1202555070${i}`;
const phone = (i: number) => `+1202555071${i}`;
const nick = (i: number) => `fault${i}`;
/** Pause between two messages of one traffic loop: 3 loops per user + IRC ≈ 4 × 3 × 5 + 5 = 65 messages/s. */
const TRAFFIC_GAP_MS = 200;
/**
 * How long before a process died a message may have been sent and still be sitting in that process's socket
 * or read buffer. Generous for a busy 2-core machine; a message counts as (a) only with the evidence described
 * above, never by its timing alone.
 */
const SOCKET_WINDOW_MS = 3_000;
/** How long the suite waits after the last fault for stragglers (redelivery, retries). */
const SETTLE_TIMEOUT_MS = 90_000;
/** Every marker a body of this suite carries. */
const MARKER = /\b(?:sms|mail|irc)-(?:in|out|poison)-\d+(?:-\d+)?\b/g;

type LossClass = "a" | "r" | "b";

interface Fault {
  name: string;
  /** When it started (ms). */
  at: number;
  /** A process killed or stopped by this fault, whose sockets may hold messages (class a). */
  kills?: "gateway" | "xmpp" | "irc";
  /**
   * For a stop that takes a while (the XMPP server shutting down its sessions): when it had stopped. What was
   * handed to it until then went down with the sessions it was closing, as in a killed process's socket.
   */
  stoppedAt?: number;
  /** For kills: the IRC witness's line index when the gateway died and when it was back (class a on IRC). */
  ircWindow?: { witness: RawIrc; from: number; to: number };
  /** Redis lost its data: what the inboxes held just before (markers per user), and when that was read. */
  wiped?: { markers: Set<string>; readAt: number; backAt?: number };
  recoveryMs?: number;
}

/** An inbound message the network was told is stored (webhook 200, SMTP 250) or heard on IRC. */
interface Expected {
  user: number;
  marker: string;
  /** When the network was told (or the IRC server relayed it). */
  at: number;
  /** For IRC: the witness stream and line index where the server relayed it. */
  irc?: { witness: RawIrc; index: number };
}

interface Outbound {
  user: number;
  id: string;
  at: number;
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
  /** When each user first received each marker. */
  const arrivals: Map<string, number>[] = [];
  /** How often each user received each marker (a redelivery with the same id is allowed: clients drop it). */
  const copies: Map<string, number>[] = [];
  /** The IRC side: pete talks, wit only listens (a new pair after each IRC server restart). */
  const petes: RawIrc[] = [];
  const witnesses: RawIrc[] = [];
  /** Outbound stanza ids the gateway's ledger held at some point (evidence they left the socket). */
  const claimed = new Set<string>();
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
      timeoutMs: 60_000,
      where: () => gateway!.lines.filter((l) => l.msg === "component stream online").length >= 4,
    });
  };
  const room = () => `${CHANNEL}@${domains.irc}`;
  /**
   * Joins the room; a rejoin `since` a time asks for the lines said from then on (XEP-0045 §7.2.14), as a
   * client does after its session was gone (or it catches up with MAM): lines said while it was away reach
   * it that way, since a live line sent to a resource that is not back yet is dropped by the XMPP server.
   */
  const join = (u: TestUser, i: number, since?: number) =>
    u.send(
      xml(
        "presence",
        { to: `${room()}/${nick(i)}` },
        xml(
          "x",
          { xmlns: MUC },
          since === undefined ? null : xml("history", { since: new Date(since).toISOString() }),
        ),
      ),
    );
  /** When each user last got a line from the room (what its client would ask history from). */
  const lastRoomLine: number[] = [];
  const pete = () => petes.at(-1)!;
  const witness = () => witnesses.at(-1)!;
  const connectIrcPeers = async () => {
    for (const [list, name] of [
      [witnesses, "wit"],
      [petes, "pete"],
    ] as const) {
      const irc = await RawIrc.connect(ircd.port, name);
      irc.send(`JOIN ${CHANNEL}`);
      await irc.waitFor((l) => / 366 /.test(l));
      list.push(irc);
    }
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
  /** Registers user i with the SMS and email adapters (again after Redis lost everything). */
  const registerUser = async (i: number) => {
    const u = users[i]!;
    expect((await u.iq("set", domains.sms, registration({ mode: "dedicated" }))).attrs.type).toBe("result");
    const mail = await u.iq("set", domains.mail, registration({ alias: `fault-${i}`, name: `Fault ${i}` }));
    expect(mail.attrs.type).toBe("result");
  };
  /** The markers the inbound queues hold now, per user JID localpart and marker ("fault-0 sms-in-0-3"). */
  const inboxMarkers = async (): Promise<Set<string>> => {
    const r = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    const markers = new Set<string>();
    try {
      await r.connect();
      for (const key of await r.keys(`${KEY_PREFIX}inbox:*`))
        for (const [, fields] of await r.xrange(key, "-", "+")) {
          const raw = fields[fields.indexOf("e") + 1] ?? "";
          const user = /"to":"(fault-\d+)@/.exec(raw)?.[1];
          for (const marker of raw.match(MARKER) ?? []) if (user) markers.add(`${user} ${marker}`);
        }
    } finally {
      r.disconnect();
    }
    return markers;
  };
  /** Records which outbound ids the gateway's ledger holds now. */
  const snapshotLedger = async () => {
    const r = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await r.connect();
      let cursor = "0";
      do {
        const [next, keys] = await r.scan(cursor, "MATCH", `${KEY_PREFIX}out*`, "COUNT", 1000);
        cursor = next;
        for (const key of keys)
          for (const id of key.match(/(?:sms|mail|irc)-out-\d+-\d+/g) ?? []) claimed.add(id);
      } while (cursor !== "0");
    } finally {
      r.disconnect();
    }
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
      keyPrefix: KEY_PREFIX,
      echo: { requireRegistration: false },
      admins: [`fault-admin@${prosody.host}`],
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
    await connectIrcPeers();
    for (let i = 0; i < USERS; i++) {
      const u = await TestUser.login(prosody, `fault-${i}`);
      const seen = new Map<string, number>();
      const count = new Map<string, number>();
      arrivals.push(seen);
      copies.push(count);
      u.xmpp.on("stanza", (el: Element) => {
        if (el.name !== "message" || el.attrs.type === "error") return;
        if (el.attrs.type === "groupchat") lastRoomLine[i] = Date.now();
        for (const marker of new Set(el.getChildText("body")?.match(MARKER) ?? [])) {
          if (!seen.has(marker)) seen.set(marker, Date.now());
          count.set(marker, (count.get(marker) ?? 0) + 1);
        }
      });
      // Like a real client after a reconnect: roster, then presence (offline messages flow in).
      u.xmpp.on("online", () => {
        void u
          .iq("get", undefined, xml("query", { xmlns: "jabber:iq:roster" }))
          .then(() => u.send(xml("presence")))
          .catch(() => undefined);
      });
      users.push(u);
      await registerUser(i);
      await join(u, i);
      await u.waitFor((el) => el.name === "presence" && el.attrs.from === `${room()}/${nick(i)}`, 15_000);
    }
    await until(allInChannel, 20_000, "every user's IRC connection in the channel");
  });

  afterAll(async () => {
    for (const irc of [...petes, ...witnesses]) irc.close();
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
  async function timeToRecover(fault: Fault): Promise<void> {
    const u = users[0]!;
    for (let n = 0; ; n++) {
      const id = `probe-${fault.name.replace(/\W+/g, "-")}-${n}`;
      try {
        await u.send(xml("message", { to: `probe@${domains.echo}`, id, type: "chat" }, xml("body", {}, id)));
        await u.waitFor(
          (el) => el.name === "message" && el.getChildText("body")?.endsWith(id) === true,
          1_000,
        );
        fault.recoveryMs = Date.now() - fault.at;
        return;
      } catch {
        if (Date.now() - fault.at > 90_000) throw new Error(`no recovery from "${fault.name}" within 90 s`);
        await sleep(200);
      }
    }
  }

  it("loses nothing outside the documented window and sends nothing twice, with traffic straight through every fault", async () => {
    const expected: Expected[] = [];
    const refused: string[] = [];
    const outbound: Outbound[] = [];
    /** When pete said each IRC marker. */
    const ircSaid = new Map<string, number>();
    const faults: Fault[] = [{ name: "steady traffic", at: Date.now() }];
    const faultOf = (at: number) => faults.filter((f) => f.at <= at).at(-1) ?? faults[0]!;
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
        if (answer.status === 200) expected.push({ user: i, marker, at: Date.now() });
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
          expected.push({ user: i, marker, at: Date.now() });
        } catch (err) {
          refused.push(`${marker}: ${(err as Error).message.slice(0, 60)}`);
        }
      }),
      // Out: the user writes to the phone, the friend's address and the IRC channel, in turn. A client that
      // is offline (its server is restarting) sends nothing: it shows the message as not sent.
      loop(async (n) => {
        const u = users[i]!;
        if (u.xmpp.status !== "online") return;
        const kind = (["sms", "mail", "irc"] as const)[n % 3]!;
        const id = `${kind}-out-${i}-${n}`;
        const to =
          kind === "sms"
            ? `${phone(i)}@${domains.sms}`
            : kind === "mail"
              ? `${FRIEND.replace("@", "\\40")}@${domains.mail}`
              : room();
        const at = Date.now();
        try {
          await u.send(
            xml("message", { to, id, type: kind === "irc" ? "groupchat" : "chat" }, xml("body", {}, id)),
          );
          outbound.push({ user: i, id, at });
        } catch {
          // Never left the client: the user's own client shows it as not sent.
        }
      }),
    ]).flat();
    // IRC in: a plain IRC user talks in the channel. Which bridged users it was for is read afterwards
    // from a second plain client's view of the channel (the server relays to every member in one order).
    loops.push(
      loop((n) => {
        const irc = pete();
        if (irc.closed) return;
        ircSaid.set(`irc-in-${n}`, Date.now());
        irc.send(`PRIVMSG ${CHANNEL} :irc-in-${n}`);
      }),
    );
    const begin = (name: string, extra: Partial<Fault> = {}): Fault => {
      const fault: Fault = { name, at: Date.now(), ...extra };
      faults.push(fault);
      return fault;
    };
    const ircBack = () => expect.poll(allInChannel, { timeout: 60_000, interval: 500 }).toBe(true);
    await sleep(3_000);

    // 1. The gateway dies without a chance to clean up, with traffic flowing into it.
    await snapshotLedger();
    let fault = begin("gateway SIGKILL", { kills: "gateway" });
    const from = witness().lines.length;
    await gateway!.kill("SIGKILL");
    await sleep(1_000);
    await startGateway();
    fault.ircWindow = { witness: witness(), from, to: witness().lines.length };
    await timeToRecover(fault);
    await ircBack();
    await sleep(3_000);

    // 2. The XMPP server restarts. The users' clients reconnect and rejoin their rooms once the gateway is
    //    reachable again (a join sent before the component reconnected bounces, and clients retry).
    await snapshotLedger();
    fault = begin("XMPP server restart", { kills: "xmpp" });
    await prosody.stop();
    fault.stoppedAt = Date.now();
    await prosody.start();
    await expect.poll(() => users.every((u) => u.xmpp.status === "online"), { timeout: 30_000 }).toBe(true);
    await timeToRecover(fault);
    for (let i = 0; i < USERS; i++) {
      const u = users[i]!;
      const inRoom = (since: number) =>
        u.received
          .slice(since)
          .some((el) => el.name === "presence" && el.attrs.from === `${room()}/${nick(i)}` && !el.attrs.type);
      await until(
        async () => {
          const since = u.received.length;
          // A second of slack for the archive's clock: a line seen twice is counted, never lost.
          await join(u, i, (lastRoomLine[i] ?? Date.now()) - 1_000);
          await sleep(2_000);
          return inRoom(since);
        },
        30_000,
        `${nick(i)} back in the room`,
      );
    }
    await ircBack();
    await sleep(3_000);

    // 3. Redis restarts (AOF): webhooks answer 503 and SMTP 451 meanwhile (the network retries), stanzas get
    //    "try again"; IRC lines keep coming and must not be lost.
    fault = begin("Redis restart (AOF)");
    await redis.stop();
    await sleep(1_000);
    await redis.start();
    await timeToRecover(fault);
    await sleep(3_000);

    // 4. The IRC server restarts: every IRC connection drops; the gateway reconnects and rejoins.
    fault = begin("IRC server restart", { kills: "irc" });
    await ircd.stop();
    await ircd.start();
    await connectIrcPeers();
    await ircBack();
    fault.recoveryMs = Date.now() - fault.at;
    await sleep(3_000);

    // 5. Poison: control characters and invalid UTF-8 from IRC, control characters in a signed webhook's
    //    MessageSid. Whatever the gateway makes of them, the component streams stay up and the rest flows on.
    fault = begin("poison input");
    for (const n of [1, 2, 3]) ircSaid.set(`irc-poison-${n}`, Date.now());
    pete().send(`PRIVMSG ${CHANNEL} :irc-poison-1 \x01\x02\x03\x04\x07\x08\x0b\x0c\x0e\x1b\x1f\x7f end`);
    pete().send(
      Buffer.concat([
        Buffer.from(`PRIVMSG ${CHANNEL} :irc-poison-2 `),
        Buffer.from([0xff, 0xfe, 0xc3, 0x28]),
      ]),
    );
    pete().send(`PRIVMSG ${CHANNEL} :\x01ACTION irc-poison-3 \x1b[31m\x0b\x01`);
    for (const sid of ["SM\x01\x02poison", "SM\x1bpoison\x7f", `SM${"\x0b".repeat(40)}`]) {
      const answer = await fake
        .sendInbound({
          from: phone(0),
          to: number(0),
          body: `sms-poison-${sid.length}`,
          messageSid: sid,
          webhookUrl: `http://127.0.0.1:${httpPort}/sms/twilio/sms`,
        })
        .catch(() => ({ status: 0 }));
      if (answer.status === 200)
        expected.push({ user: 0, marker: `sms-poison-${sid.length}`, at: Date.now() });
    }
    await timeToRecover(fault);
    await sleep(3_000);

    // 6. Twilio fails: 500s (retried), then requests left hanging (reported, never repeated).
    fault = begin("Twilio 500s and hangs");
    fake.fail({ status: 500, times: 10 });
    await sleep(1_500);
    fake.hang(3);
    await sleep(3_000);
    fault.recoveryMs = Date.now() - fault.at;

    // 7. The relay is busy: 451 to everything for 3 s (retried with backoff, or reported).
    fault = begin("relay busy");
    relay.busy = true;
    await sleep(3_000);
    relay.busy = false;
    fault.recoveryMs = Date.now() - fault.at;
    await sleep(2_000);

    // 8. Redis loses all its data (restarted without its files, as a failover to an empty replica would):
    //    registrations go with it, so users register again; config-assigned numbers still route; delivery
    //    carries on without a gateway restart.
    await snapshotLedger();
    fault = begin("Redis data loss");
    fault.wiped = { readAt: Date.now(), markers: await inboxMarkers() };
    await redis.stop();
    await rm(path.join(redis.info.dir, "appendonlydir"), { recursive: true, force: true });
    await redis.start();
    fault.wiped.backAt = Date.now();
    await timeToRecover(fault);
    for (let i = 0; i < USERS; i++) await registerUser(i);
    await sleep(6_000);

    running = false;
    await Promise.all(loops);
    outside.close();
    await snapshotLedger();

    // IRC in: what the server relayed to each bridged user's connection, read from the witnesses' view.
    const ircDrops: { witness: RawIrc; nick: string; index: number }[] = [];
    for (const wit of witnesses) {
      const members = new Set<string>();
      wit.lines.forEach((line, index) => {
        const names = / 353 \S+ [=*@] #faults :(.*)$/.exec(line)?.[1];
        if (names) for (const n of names.split(" ")) members.add(n.replace(/^[@+%]/, ""));
        const event = /^:([^!\s]+)!\S+ (JOIN|PART|QUIT|KICK|PRIVMSG) ?(\S*) ?:?(.*)$/.exec(line);
        if (!event) return;
        const [, who, verb, , rest] = event as unknown as [string, string, string, string, string];
        if (verb === "JOIN") members.add(who);
        else if (verb === "PART" || verb === "QUIT") {
          members.delete(who);
          ircDrops.push({ witness: wit, nick: who, index });
        } else if (verb === "KICK") members.delete(rest.split(" ")[0] ?? "");
        else if (who === "pete")
          for (const marker of rest.match(MARKER) ?? [])
            for (let i = 0; i < USERS; i++)
              if (members.has(nick(i)))
                expected.push({
                  user: i,
                  marker,
                  at: ircSaid.get(marker) ?? 0,
                  irc: { witness: wit, index },
                });
      });
    }

    /**
     * A process that `kills` died (or finished stopping) within SOCKET_WINDOW_MS after `at` (or, with `around`, also just before it:
     * a stanza the server routed to a component whose socket was closing is lost the same way).
     */
    const diedSoonAfter = (at: number, kills: Fault["kills"][], around = false) =>
      faults.some(
        (f) =>
          kills.includes(f.kills) &&
          (around ? Math.abs(f.at - at) : (f.stoppedAt ?? f.at) - at) <= SOCKET_WINDOW_MS &&
          (around || at <= (f.stoppedAt ?? f.at)),
      );
    const classify = (e: Expected): LossClass => {
      // Still waiting in an inbox when Redis lost everything, or acknowledged between the reading of the
      // inboxes and Redis's return (stored before it stopped; the answer may reach the network later).
      const wiped = faults.some(
        (f) =>
          f.wiped !== undefined &&
          (f.wiped.markers.has(`fault-${e.user} ${e.marker}`) ||
            (e.at >= f.wiped.readAt && e.at <= (f.wiped.backAt ?? 0))),
      );
      if (wiped) return "r";
      if (e.irc) {
        // Relayed to a connection that dropped because the gateway was killed, before the gateway read it.
        const drop = ircDrops.find(
          (d) => d.witness === e.irc!.witness && d.nick === nick(e.user) && d.index > e.irc!.index,
        );
        const killed =
          drop !== undefined &&
          faults.some(
            (f) =>
              f.ircWindow?.witness === drop.witness &&
              drop.index >= f.ircWindow.from &&
              drop.index <= f.ircWindow.to,
          );
        if (killed) return "a";
      }
      // Handed to the XMPP server just before it stopped, with the user's session going down with it.
      return diedSoonAfter(e.at, ["xmpp"]) ? "a" : "b";
    };
    const missing = () => expected.filter((e) => !arrivals[e.user]!.has(e.marker));
    const lostInbound = () =>
      missing()
        .filter((e) => classify(e) === "b")
        .map((e) => `${e.marker} for user ${e.user} (${faultOf(e.at).name})`);

    // Outbound: each marker went out at most once, and either went out or its sender got an error.
    const outCount = new Map<string, number>();
    const countOut = (marker: string) => outCount.set(marker, (outCount.get(marker) ?? 0) + 1);
    const tally = () => {
      outCount.clear();
      for (const m of fake.sent()) countOut(m.body);
      for (const raw of relay.mails) {
        // The body only: a reply's Subject and threading headers name the conversation's first message.
        const text = raw.toString("utf8");
        const body = text.slice(text.indexOf("\r\n\r\n") + 4);
        for (const marker of new Set(body.match(/mail-out-\d+-\d+/g) ?? [])) countOut(marker);
      }
      for (const irc of witnesses)
        for (const line of irc.lines) {
          const marker = /^:fault\d+!\S+ PRIVMSG #faults :(irc-out-\d+-\d+)$/.exec(line)?.[1];
          if (marker) countOut(marker);
        }
    };
    const errorIds = () =>
      users.map(
        (u) => new Set(u.received.filter((el) => el.attrs.type === "error").map((el) => el.attrs.id ?? "")),
      );
    const classifyOut = (m: Outbound): LossClass => {
      // An IRC line written to an IRC server just before it died (IRC has no acknowledgements either).
      if (m.id.startsWith("irc-") && diedSoonAfter(m.at, ["irc"])) return "a";
      // Never claimed by the gateway, and sent just before a process with it in its socket died.
      if (claimed.has(m.id)) return "b";
      return diedSoonAfter(m.at, ["gateway", "xmpp"], true) ? "a" : "b";
    };
    const unaccounted = () => {
      tally();
      const errors = errorIds();
      return outbound.filter((m) => !outCount.has(m.id) && !errors[m.user]!.has(m.id));
    };
    const lostOutbound = () =>
      unaccounted()
        .filter((m) => classifyOut(m) === "b")
        .map((m) => `${m.id} (${faultOf(m.at).name})`);
    // Stragglers (redelivery, retries, the crash sweep's reports) get time to arrive; the figures are printed
    // whatever the outcome, then checked.
    const settleBy = Date.now() + SETTLE_TIMEOUT_MS;
    while (Date.now() < settleBy && (lostInbound().length > 0 || lostOutbound().length > 0))
      await sleep(1_000);
    tally();

    // The figures, per fault.
    const rows = faults.map((f) => ({
      fault: f.name,
      a: 0,
      r: 0,
      b: 0,
      duplicates: 0,
      redelivered: 0,
      recoveryMs: f.recoveryMs,
    }));
    const row = (at: number) => rows[faults.indexOf(faultOf(at))]!;
    for (const e of missing()) row(e.at)[classify(e)]++;
    for (const m of unaccounted()) row(m.at)[classifyOut(m)]++;
    for (const m of outbound) if ((outCount.get(m.id) ?? 0) > 1) row(m.at).duplicates++;
    for (const e of expected) if ((copies[e.user]!.get(e.marker) ?? 0) > 1) row(e.at).redelivered++;
    const errors = errorIds().reduce((sum, ids) => sum + ids.size, 0);
    const lostList = [
      ...missing().map((e) => `${e.marker} for user ${e.user}: ${classify(e)}`),
      ...unaccounted().map((m) => `${m.id}: ${classifyOut(m)}`),
    ];
    console.info(
      `fault suite: ${expected.length} inbound stored or relayed (${refused.length} refused and left to the ` +
        `network's retry), ${outbound.length} outbound (${outCount.size} went out, ${errors} answered with ` +
        `an error)\n` +
        "fault                  | lost (a) socket | lost (r) Redis data | lost (b) | duplicates | redelivered same id | recovery\n" +
        rows
          .map(
            (r) =>
              `${r.fault.padEnd(22)} | ${String(r.a).padStart(15)} | ${String(r.r).padStart(19)} | ` +
              `${String(r.b).padStart(8)} | ${String(r.duplicates).padStart(10)} | ` +
              `${String(r.redelivered).padStart(19)} | ${r.recoveryMs === undefined ? "-" : `${r.recoveryMs} ms`}`,
          )
          .join("\n") +
        (lostList.length ? `\nlost: ${lostList.slice(0, 40).join(", ")}` : ""),
    );
    expect(lostInbound().slice(0, 20), "inbound lost outside the documented windows").toEqual([]);
    expect(lostOutbound().slice(0, 20), "outbound neither sent nor answered with an error").toEqual([]);
    expect(
      rows.filter((r) => r.duplicates > 0).map((r) => r.fault),
      "faults after which a message went out twice",
    ).toEqual([]);
    for (const prefix of ["sms-in", "mail-in", "irc-in"])
      expect(expected.filter((s) => s.marker.startsWith(prefix)).length, prefix).toBeGreaterThan(USERS * 5);
    for (const prefix of ["sms-out", "mail-out", "irc-out"])
      expect([...outCount.keys()].filter((m) => m.startsWith(prefix)).length, prefix).toBeGreaterThan(
        USERS * 3,
      );
    // The poison lines reached every bridged user (cleaned of what XML cannot carry), and traffic after them
    // flowed: the streams survived.
    for (let i = 0; i < USERS; i++)
      for (const marker of ["irc-poison-1", "irc-poison-2", "irc-poison-3"])
        expect(arrivals[i]!.has(marker), `${marker} for user ${i}`).toBe(true);
  }, 420_000);
});
