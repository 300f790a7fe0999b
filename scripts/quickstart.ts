/**
 * The quickstart: a local XMPP server with demo users, Redis, an IRC server and the gateway, wired together
 * from the committed gateway.config.json (only the ports change: the servers run on free loopback ports).
 */
import { spawn, type ChildProcessByStdio } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { client, xml, type Client, type Element } from "@xmpp/client";
import { createWriteStream } from "node:fs";
import { createInterface } from "node:readline";
import { PassThrough, Readable } from "node:stream";
import { freePort, startBed, type Bed } from "../test/bed/index.js";
import { isMailLine, startMailSandbox, type MailSandbox } from "../test/mail/sandbox.js";
import { startDns, type TestDns } from "../test/support/dns.js";
import { ensureDist, GATEWAY_MAIN } from "../test/support/dist.js";
import { startSandbox } from "../test/twilio/sandbox.js";
import type { TwilioFake } from "../test/twilio/server.js";
import { QUICKSTART_IRC_SERVER, smokeIrc } from "./quickstart-irc.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const DIR = path.join(ROOT, ".quickstart");
const DEMO_USERS = [
  { user: "alice", password: "alice" },
  { user: "bob", password: "bob" },
  { user: "admin", password: "admin" },
];

interface Config {
  xmpp: { service: string; serverDomains: string[] };
  http?: { port?: number; private?: { host?: string; port?: number }; admin?: { tokenEnv: string } };
  redis: { url: string };
  admins?: string[];
  adapters: Record<string, AdapterEntry>;
}

interface AdapterEntry {
  enabled?: boolean;
  domain: string;
  secretEnv: string;
  twilio?: { accountSid: string; authTokenEnv?: string; apiBaseUrl?: string };
  numbers?: { dedicated?: Record<string, string>; pool?: string[] };
  addresses?: Record<string, { host: string; port?: number; tls?: boolean }>;
  mailDomain?: string;
  relay?: Record<string, unknown>;
  inbound?: Record<string, unknown>;
  auth?: Record<string, unknown>;
  files?: Record<string, unknown>;
}

/** The outside address the quickstart's mail sandbox answers as (its domain's SPF allows loopback). */
const SANDBOX_MAIL = "friend@example.com";

/** The phone the quickstart's SMS sandbox pretends to be. */
const SANDBOX_PHONE = "+12025550123";

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { smoke: { type: "boolean", default: false } } });
  const config = JSON.parse(await readFile(path.join(ROOT, "gateway.config.json"), "utf8")) as Config;
  const host = config.xmpp.serverDomains[0] ?? "localhost";
  const adapters = Object.entries(config.adapters).filter(([, a]) => a.enabled !== false);
  const secrets: Record<string, string> = Object.fromEntries(
    adapters.map(([, a]) => [a.secretEnv, randomBytes(16).toString("hex")]),
  );
  const sms = adapters.find(([key]) => key === "sms")?.[1];
  if (sms?.twilio) secrets[sms.twilio.authTokenEnv ?? "TWILIO_AUTH_TOKEN"] = randomBytes(16).toString("hex");
  // The admin page (/admin) and the CLI's admin commands, with a token made for this run.
  const adminTokenEnv = config.http?.admin?.tokenEnv ?? "GATEWAY_ADMIN_TOKEN";
  secrets[adminTokenEnv] = randomBytes(16).toString("hex");

  // One run at a time: the previous run's servers are gone, its data with them.
  const runDir = path.join(DIR, "run");
  await rm(runDir, { recursive: true, force: true });
  await mkdir(DIR, { recursive: true });
  console.log("Starting Prosody, Redis and the IRC server (installing what is missing)…");
  const bed = await startBed({
    dir: runDir,
    ejabberd: false,
    host,
    redisAppendOnly: true,
    components: adapters.map(([, a]) => ({ domain: a.domain, secret: secrets[a.secretEnv] ?? "" })),
  });
  const stopBed = () => bed.stop().catch((err: unknown) => console.error(err));
  let gateway: ChildProcessByStdio<null, Readable, null> | undefined;
  let sandbox: Awaited<ReturnType<typeof startSandbox>> | undefined;
  let mailSandbox: MailSandbox | undefined;
  let dns: TestDns | undefined;
  const email = adapters.find(([key]) => key === "email")?.[1];
  try {
    const xmpp = bed.prosody!;
    await xmpp.registerUsers(DEMO_USERS);
    config.xmpp.service = `xmpp://127.0.0.1:${xmpp.componentPort}`;
    config.redis.url = bed.redis!.url;
    // Public listener (webhooks, media, files) and private one (health, metrics, admin), both on loopback.
    config.http = {
      ...config.http,
      port: await freePort(),
      private: { host: "127.0.0.1", port: await freePort() },
      admin: { tokenEnv: adminTokenEnv },
    };
    const smsWebhook = `http://127.0.0.1:${config.http.port}/sms/twilio/sms`;
    // Lines typed for the mail sandbox ("friend@example.com> hi") are not for the SMS sandbox.
    let smsInput: Readable | undefined;
    if (email) {
      // example.com's SPF and DMARC records, served on loopback, so the sandbox's mail is verified.
      dns = await startDns({
        "example.com": "v=spf1 ip4:127.0.0.1 -all",
        "_dmarc.example.com": "v=DMARC1; p=none",
      });
      const inboundPort = await freePort();
      mailSandbox = await startMailSandbox({
        gateway: { host: "127.0.0.1", port: inboundPort },
        ...(values.smoke ? { input: Readable.from([]), output: new PassThrough() } : {}),
      });
      email.relay = { ...email.relay, host: "127.0.0.1", port: mailSandbox.port, starttls: false };
      email.inbound = { ...email.inbound, host: "127.0.0.1", port: inboundPort };
      email.auth = { ...email.auth, dnsServers: [dns.server] };
      // Mail files of this run live (and go) with the run's servers.
      email.files = { ...email.files, dir: path.join(runDir, "files") };
      if (!values.smoke) {
        const filtered = new PassThrough();
        createInterface({ input: process.stdin }).on("line", (line) => {
          if (!isMailLine(line)) filtered.write(line + "\n");
        });
        smsInput = filtered;
      }
    }
    sandbox = sms?.twilio
      ? await startSandbox({
          accountSid: sms.twilio.accountSid,
          authToken: secrets[sms.twilio.authTokenEnv ?? "TWILIO_AUTH_TOKEN"] ?? "",
          numbers: [...Object.keys(sms.numbers?.dedicated ?? {}), ...(sms.numbers?.pool ?? [])],
          webhookUrl: smsWebhook,
          // In smoke mode nobody types: no terminal input, output kept quiet.
          ...(values.smoke ? { input: Readable.from([]), output: new PassThrough() } : {}),
          ...(smsInput ? { input: smsInput } : {}),
        })
      : undefined;
    if (sms?.twilio && sandbox) sms.twilio.apiBaseUrl = sandbox.fake.url;
    const irc = adapters.find(([key]) => key === "irc")?.[1];
    const ircAddress = irc?.addresses?.[QUICKSTART_IRC_SERVER];
    if (ircAddress && bed.irc) ircAddress.port = bed.irc.port;
    const file = path.join(bed.dir, "gateway.config.json");
    await writeFile(file, JSON.stringify(config, null, 2));

    // The compiled gateway, as in production (built here when dist/ is missing or older than the sources).
    ensureDist();
    gateway = spawn(process.execPath, [GATEWAY_MAIN, "--config", file], {
      cwd: ROOT,
      env: { ...process.env, ...secrets },
      stdio: ["ignore", "pipe", "inherit"],
    });
    let log = "";
    const logFile = createWriteStream(path.join(bed.dir, "gateway.log"));
    gateway.stdout.on("data", (d: Buffer) => {
      log += d.toString();
      logFile.write(d);
    });
    const online = () => (log.match(/component stream online/g) ?? []).length >= adapters.length;
    for (let i = 0; i < 200 && !online(); i++) await new Promise((r) => setTimeout(r, 100));
    if (!online()) throw new Error(`the gateway did not come online:\n${log}`);

    if (values.smoke) {
      await smoke(bed, host, adapters[0]?.[1].domain ?? "", sandbox?.fake, sms, smsWebhook, irc, {
        ...(email && mailSandbox ? { email: { entry: email, sandbox: mailSandbox } } : {}),
      });
      await smokeOps(bed, `http://127.0.0.1:${config.http.private?.port ?? 0}`, secrets[adminTokenEnv] ?? "");
      gateway.kill("SIGTERM");
      const [code] = (await once(gateway, "exit")) as [number];
      console.log(`quickstart smoke check passed; gateway exited ${code}`);
      return;
    }
    printHowTo(
      bed,
      config,
      host,
      adapters.map(([, a]) => a.domain),
      file,
      { env: adminTokenEnv, token: secrets[adminTokenEnv] ?? "" },
    );
    const running = gateway;
    const stop = () => running.kill("SIGTERM");
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
    await once(running, "exit");
  } finally {
    if (gateway && gateway.exitCode === null) {
      gateway.kill("SIGTERM");
      await once(gateway, "exit");
    }
    await sandbox?.stop();
    await mailSandbox?.stop();
    await dns?.stop();
    await stopBed();
  }
}

function printHowTo(
  bed: Bed,
  config: Config,
  host: string,
  domains: string[],
  file: string,
  admin: { env: string; token: string },
): void {
  const xmpp = bed.prosody!;
  console.log(`
==============================================================================
 xmpp-gateway is running.

 XMPP server : 127.0.0.1 port ${xmpp.c2sPort} (plain TCP, no TLS: set your client to allow it)
 Accounts    : alice@${host} / alice    bob@${host} / bob    admin@${host} / admin (gateway admin)
 Services    : ${domains.join(", ")}
 IRC server  : 127.0.0.1 port ${bed.irc?.port ?? "-"}
 Redis       : ${bed.redis?.url ?? "-"}
 Webhooks    : http://127.0.0.1:${config.http?.port ?? "-"}/sms/twilio/sms  (public listener)
 HTTP        : http://127.0.0.1:${config.http?.private?.port ?? "-"}/readyz  /metrics  (private listener)
 Admin page  : http://127.0.0.1:${config.http?.private?.port ?? "-"}/admin  (token ${admin.token})
 CLI         : ${admin.env}=${admin.token} node dist/src/main.js status --config ${file}
 Config used : ${file}

 Gateway log : ${path.join(bed.dir, "gateway.log")}

 Try it: log in as alice, browse the services of ${host}, register with ${domains[0] ?? ""},
 accept its presence request, then write to bot@${domains[0] ?? ""}.
${
  domains.includes("sms." + host)
    ? ` SMS sandbox: register with sms.${host} ("my own number"), write to ${SANDBOX_PHONE}@sms.${host}: the
 text shows up here. Answer as that phone by typing here:  ${SANDBOX_PHONE}> hello back
`
    : ""
}${
    domains.includes("irc." + host)
      ? ` IRC: join the room #test%${QUICKSTART_IRC_SERVER}@irc.${host} (any nick); talk to it from an IRC client on
 127.0.0.1 port ${bed.irc?.port ?? "-"} (plain, no TLS) in #test.
`
      : ""
  }${
    config.adapters.email?.enabled !== false && config.adapters.email
      ? ` Mail sandbox: register with ${config.adapters.email.domain} (your address: alice@${config.adapters.email.mailDomain ?? ""}),
 write to ${SANDBOX_MAIL.replace("@", "\\40")}@${config.adapters.email.domain}: the mail shows up here. Answer as
 that address by typing here:  ${SANDBOX_MAIL}> hello back       (it threads back into your chat)
`
      : ""
  } Stop with Ctrl-C.
==============================================================================
`);
}

/** What the README promises, checked as alice with a stock client library. */
async function smoke(
  bed: Bed,
  host: string,
  domain: string,
  fake: TwilioFake | undefined,
  sms: AdapterEntry | undefined,
  smsWebhook: string,
  irc: AdapterEntry | undefined,
  more: { email?: { entry: AdapterEntry; sandbox: MailSandbox } } = {},
): Promise<void> {
  const xmpp = client({
    service: `xmpp://127.0.0.1:${bed.prosody!.c2sPort}`,
    domain: host,
    username: "alice",
    password: "alice",
    resource: "quickstart",
  });
  const inbox: Element[] = [];
  xmpp.on("stanza", (el: Element) => inbox.push(el));
  xmpp.on("error", () => undefined);
  await xmpp.start();
  await xmpp.send(xml("presence")); // online, like any client: messages to the bare JID reach this session
  const iq = async (type: string, to: string, child: Element): Promise<Element> => {
    const id = randomBytes(4).toString("hex");
    await xmpp.send(xml("iq", { type, to, id }, child));
    for (let i = 0; i < 100; i++) {
      const answer = inbox.find((el) => el.name === "iq" && el.attrs.id === id);
      if (answer) return answer;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`no answer to ${child.toString()}`);
  };
  const check = (ok: boolean, what: string) => {
    if (!ok) throw new Error(`quickstart smoke check failed: ${what}`);
    console.log(`ok - ${what}`);
  };
  try {
    const items = await iq("get", host, xml("query", { xmlns: "http://jabber.org/protocol/disco#items" }));
    const jids =
      items
        .getChild("query")
        ?.getChildren("item")
        .map((i) => i.attrs.jid) ?? [];
    check(jids.includes(domain), `disco#items on ${host} lists ${domain}`);
    const form = xml(
      "x",
      { xmlns: "jabber:x:data", type: "submit" },
      xml("field", { var: "nick" }, xml("value", {}, "Alice")),
    );
    const reg = await iq("set", domain, xml("query", { xmlns: "jabber:iq:register" }, form));
    check(reg.attrs.type === "result", `registered with ${domain}`);
    await xmpp.send(
      xml("message", { to: `bot@${domain}`, id: "qs-1", type: "chat" }, xml("body", {}, "hello")),
    );
    for (let i = 0; i < 100 && !inbox.some((el) => el.getChildText("body") === "Alice: hello"); i++)
      await new Promise((r) => setTimeout(r, 50));
    check(
      inbox.some((el) => el.getChildText("body") === "Alice: hello"),
      `bot@${domain} answered`,
    );
    const removed = await iq("set", domain, xml("query", { xmlns: "jabber:iq:register" }, xml("remove")));
    check(removed.attrs.type === "result", `unregistered from ${domain}`);
    if (fake && sms) await smokeSms(xmpp, iq, inbox, check, fake, sms, smsWebhook);
    if (irc) await smokeIrc(xmpp, inbox, check, bed, irc.domain);
    if (more.email) await smokeEmail(xmpp, iq, inbox, check, more.email.entry, more.email.sandbox);
  } finally {
    await xmpp.stop().catch(() => undefined);
  }
}

type Check = (ok: boolean, what: string) => void;

/** Texts the sandbox phone from alice's own number, sees the receipt, and gets the phone's answer. */
async function smokeSms(
  xmpp: Client,
  iq: (type: string, to: string, child: Element) => Promise<Element>,
  inbox: Element[],
  check: Check,
  fake: TwilioFake,
  sms: AdapterEntry,
  webhookUrl: string,
): Promise<void> {
  const domain = sms.domain;
  const own = Object.keys(sms.numbers?.dedicated ?? {})[0] ?? "";
  const form = xml(
    "x",
    { xmlns: "jabber:x:data", type: "submit" },
    xml("field", { var: "mode" }, xml("value", {}, "dedicated")),
  );
  const reg = await iq("set", domain, xml("query", { xmlns: "jabber:iq:register" }, form));
  check(reg.attrs.type === "result", `registered with ${domain} (own number ${own})`);
  await xmpp.send(
    xml(
      "message",
      { to: `${SANDBOX_PHONE}@${domain}`, id: "qs-sms", type: "chat" },
      xml("body", {}, "Hello from XMPP"),
      xml("request", { xmlns: "urn:xmpp:receipts" }),
    ),
  );
  const waitFor = async (what: () => boolean) => {
    for (let i = 0; i < 100 && !what(); i++) await new Promise((r) => setTimeout(r, 50));
    return what();
  };
  check(
    await waitFor(() => fake.sent().some((m) => m.to === SANDBOX_PHONE && m.from === own)),
    `the sandbox phone ${SANDBOX_PHONE} got the SMS from ${own}`,
  );
  check(
    await waitFor(() =>
      inbox.some((el) => el.getChild("received", "urn:xmpp:receipts")?.attrs.id === "qs-sms"),
    ),
    "a delivery receipt came back",
  );
  const answer = await fake.sendInbound({
    from: SANDBOX_PHONE,
    to: own,
    body: "Hello from the phone",
    webhookUrl,
  });
  check(answer.status === 200, "the gateway took the phone's answer (HTTP 200)");
  check(
    await waitFor(() => inbox.some((el) => el.getChildText("body") === "Hello from the phone")),
    "the phone's answer arrived in the same chat",
  );
}

/**
 * What the operations docs promise: /readyz tells the truth while Prosody or Redis is stopped and once it is
 * back, /metrics answers, and the admin API answers only with the token.
 */
async function smokeOps(bed: Bed, base: string, token: string): Promise<void> {
  const check: Check = (ok, what) => {
    if (!ok) throw new Error(`quickstart smoke check failed: ${what}`);
    console.log(`ok - ${what}`);
  };
  const readyz = async () => {
    const answer = await fetch(`${base}/readyz`);
    return { status: answer.status, body: (await answer.json()) as { checks: Record<string, string> } };
  };
  /** Polls /readyz until `want` holds (the gateway notices a lost stream at once, reconnects within seconds). */
  const until = async (want: (r: Awaited<ReturnType<typeof readyz>>) => boolean) => {
    for (let i = 0; i < 600; i++) {
      const r = await readyz();
      if (want(r)) return r;
      await new Promise((done) => setTimeout(done, 100));
    }
    return readyz();
  };
  check((await readyz()).status === 200, "/readyz answers 200 while everything is up");
  await bed.prosody!.stop();
  const noXmpp = await until((r) => r.status === 503);
  check(
    noXmpp.status === 503 && Object.values(noXmpp.body.checks).includes("component stream down"),
    "/readyz answers 503 (component stream down) while Prosody is stopped",
  );
  await bed.prosody!.start();
  check(
    (await until((r) => r.status === 200)).status === 200,
    "/readyz answers 200 again once Prosody is back",
  );
  await bed.redis!.stop();
  const noRedis = await until((r) => r.status === 503);
  check(
    noRedis.status === 503 && noRedis.body.checks.redis === "unreachable",
    "/readyz answers 503 (redis unreachable) while Redis is stopped",
  );
  await bed.redis!.start();
  check(
    (await until((r) => r.status === 200)).status === 200,
    "/readyz answers 200 again once Redis is back",
  );
  const metrics = await (await fetch(`${base}/metrics`)).text();
  check(/^xgw_messages_total\{/m.test(metrics), "/metrics counts the messages sent");
  check(
    (await fetch(`${base}/admin/api/status`)).status === 401,
    "the admin API refuses a caller without the token",
  );
  const status = await fetch(`${base}/admin/api/status`, { headers: { authorization: `Bearer ${token}` } });
  check(status.status === 200, "the admin API answers with the token");
}

/**
 * The email promise: alice mails an outside address from her chat, gets the receipt, the answer threads
 * back into the same chat, and her next line answers that mail.
 */
async function smokeEmail(
  xmpp: Client,
  iq: (type: string, to: string, child: Element) => Promise<Element>,
  inbox: Element[],
  check: Check,
  email: AdapterEntry,
  sandbox: MailSandbox,
): Promise<void> {
  const domain = email.domain;
  const contact = `${SANDBOX_MAIL.replace("@", "\\40")}@${domain}`;
  const address = `alice@${email.mailDomain ?? ""}`;
  const form = xml(
    "x",
    { xmlns: "jabber:x:data", type: "submit" },
    xml("field", { var: "alias" }, xml("value", {}, "alice")),
    xml("field", { var: "name" }, xml("value", {}, "Alice")),
  );
  const reg = await iq("set", domain, xml("query", { xmlns: "jabber:iq:register" }, form));
  check(reg.attrs.type === "result", `registered with ${domain} (address ${address})`);
  const say = (id: string, text: string) =>
    xmpp.send(
      xml(
        "message",
        { to: contact, id, type: "chat" },
        xml("body", {}, text),
        xml("request", { xmlns: "urn:xmpp:receipts" }),
      ),
    );
  const waitFor = async (what: () => boolean) => {
    for (let i = 0; i < 200 && !what(); i++) await new Promise((r) => setTimeout(r, 50));
    return what();
  };
  await say("qs-mail-1", "Dinner on Friday?");
  check(
    await waitFor(() =>
      sandbox.mails.some((m) => m.rcpt.includes(SANDBOX_MAIL) && m.mail.from?.value[0]?.address === address),
    ),
    `${SANDBOX_MAIL} got the mail from ${address}`,
  );
  check(
    await waitFor(() =>
      inbox.some((el) => el.getChild("received", "urn:xmpp:receipts")?.attrs.id === "qs-mail-1"),
    ),
    "a delivery receipt came back (the relay took the mail)",
  );
  const sent = sandbox.mails.find((m) => m.mail.text?.trim() === "Dinner on Friday?")!.mail;
  const answer = await sandbox.send(SANDBOX_MAIL, "Yes, at 8!");
  const reply = () => inbox.find((el) => el.getChildText("body") === "Yes, at 8!");
  check(await waitFor(() => reply() !== undefined), "the answer arrived");
  check(reply()?.attrs.from === contact, `in the same chat (from ${contact})`);
  check(reply()?.getChildText("subject") === "Re: Dinner on Friday?", "with the subject of the conversation");
  await say("qs-mail-2", "Great, see you.");
  check(
    await waitFor(() => sandbox.mails.some((m) => m.mail.text?.trim() === "Great, see you.")),
    `${SANDBOX_MAIL} got alice's next line`,
  );
  const next = sandbox.mails.find((m) => m.mail.text?.trim() === "Great, see you.")!.mail;
  check(
    next.inReplyTo === answer.messageId && (next.references ?? []).includes(sent.messageId ?? "-"),
    "as a reply in the same mail thread (In-Reply-To and References)",
  );
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
