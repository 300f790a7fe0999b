/**
 * Runs every benchmark, one after the other (each starts its own servers), then writes bench/RESULTS.md from
 * bench/results/*.json with the machine, the load, the server versions and the date.
 * `npx tsx bench/run.ts`                  everything (about 15 minutes on 2 cores)
 * `npx tsx bench/run.ts --only irc,sms`   some benchmarks, then the report from every result on disk
 * `npx tsx bench/run.ts --report`         only rewrite RESULTS.md from the results on disk
 */
import { execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { loadavg } from "node:os";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { machine } from "./lib.js";

/** In order; email.ts is run when it exists (the email adapter's own benchmark). */
const BENCHMARKS = ["startup", "sms", "email", "irc", "failover", "alerts-fanout"] as const;
const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));

type Json = Record<string, unknown>;

function versions(): Record<string, string> {
  const out: Record<string, string> = { node: process.version };
  for (const pkg of ["prosody", "ejabberd", "ngircd", "redis-server", "biboumi"]) {
    try {
      out[pkg] = execFileSync("dpkg-query", ["-W", "-f", "${Version}", pkg], { encoding: "utf8" }).trim();
    } catch {
      out[pkg] = "not installed";
    }
  }
  return out;
}

async function runOne(name: string): Promise<{ name: string; ok: boolean; seconds: number; load: number[] }> {
  const file = here(`${name}.ts`);
  const started = Date.now();
  const before = loadavg()[0] ?? 0;
  console.error(`\n=== bench/${name}.ts`);
  const child = spawn(process.execPath, ["--import", "tsx", file], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  const [code] = (await once(child, "exit")) as [number | null];
  return {
    name,
    ok: code === 0,
    seconds: Math.round((Date.now() - started) / 1000),
    load: [+before.toFixed(2), +(loadavg()[0] ?? 0).toFixed(2)],
  };
}

async function readResult(name: string): Promise<Json | undefined> {
  try {
    return JSON.parse(await readFile(here(`results/${name}.json`), "utf8")) as Json;
  } catch {
    return undefined;
  }
}

const n = (v: unknown, digits = 0): string =>
  typeof v === "number" ? v.toLocaleString("en-US", { maximumFractionDigits: digits }) : "–";
const get = (o: unknown, ...keys: string[]): unknown =>
  keys.reduce<unknown>((v, k) => (v && typeof v === "object" ? (v as Json)[k] : undefined), o);
const table = (head: string[], rows: string[][]): string =>
  [
    `| ${head.join(" | ")} |`,
    `| ${head.map(() => "---").join(" | ")} |`,
    ...rows.map((r) => `| ${r.join(" | ")} |`),
  ].join("\n");
const when = (r: Json) =>
  `Run ${String(r.date).slice(0, 16)}Z, load average ${n(get(r, "machine", "loadAverage1m"), 1)} at the end`;

function smsSection(r: Json): string {
  return `## SMS (\`bench/sms.ts\`, \`bench/results/sms.json\`)

${when(r)} · ${n(r.n)} messages per measurement, ${n(r.window)} in flight · the Twilio-compatible server from
\`test/twilio/\`.

${table(
  ["measurement", "result"],
  [
    ["Prosody raw echo (client → component → client), same run", `${n(r.prosodyRawEchoPerSecond)} msg/s`],
    ["XMPP → gateway → Twilio-compatible API", `${n(r.xmppToTwilioPerSecond)} msg/s`],
    [
      "XMPP → Twilio API latency, p50 / p99",
      `${n(get(r, "xmppToTwilioLatencyMs", "p50"))} / ${n(get(r, "xmppToTwilioLatencyMs", "p99"))} ms`,
    ],
    ["Twilio webhook → gateway → XMPP client (signed, dedup)", `${n(r.webhookToXmppPerSecond)} msg/s`],
  ],
)}

Every outbound message costs the gateway one Twilio API request and two signed status callbacks (sent,
delivered); every inbound one is persisted to a Redis stream before the webhook is answered.
`;
}

function emailSection(r: Json): string {
  return `## Email (\`bench/email.ts\`, \`bench/results/email.json\`)

${when(r)} · ${n(r.n)} mails per measurement, ${n(r.window)} in flight, ${n(r.senderConnections)} outside SMTP
connections · the relay is an smtp-server on loopback; inbound mail is checked for SPF, DKIM and DMARC against
a loopback DNS server.

${table(
  ["measurement", "result"],
  [
    ["Prosody raw echo (client → component → client), same run", `${n(r.prosodyRawEchoPerSecond)} msg/s`],
    ["XMPP → gateway → SMTP relay (250)", `${n(r.xmppToRelayPerSecond)} mails/s`],
    [
      "XMPP → relay latency, p50 / p99",
      `${n(get(r, "xmppToRelayLatencyMs", "p50"))} / ${n(get(r, "xmppToRelayLatencyMs", "p99"))} ms`,
    ],
    ["SMTP in → gateway (stored before 250) → XMPP client", `${n(r.smtpToXmppPerSecond)} mails/s`],
  ],
)}
`;
}

function ircSection(r: Json): string {
  const rows: string[][] = [];
  const gw = (r.gateway ?? []) as Json[];
  const bb = (r.biboumi ?? []) as Json[];
  for (const g of gw) {
    const b = bb.find((x) => x.n === g.n) ?? {};
    const pair = (...keys: string[]) => [get(g, ...keys), get(b, ...keys)];
    const cell = (vals: unknown[], unit: string, digits = 0) =>
      vals.map((v, i) => (get(i === 0 ? g : b, "error") ? "failed" : `${n(v, digits)}${unit}`));
    rows.push([
      `N = ${n(g.n)}: RSS per bridged IRC connection`,
      ...cell(pair("rssPerConnectionKiB"), " KiB"),
    ]);
    rows.push([
      `N = ${n(g.n)}: RSS with N connections (idle before)`,
      ...[g, b].map((x) => (x.error ? "failed" : `${n(x.joinedRssMiB, 1)} MiB (${n(x.baseRssMiB, 1)})`)),
    ]);
    rows.push([
      `N = ${n(g.n)}: N users joined${Number(g.channels) > 1 ? ` (${n(g.channels)} channels)` : ""} in`,
      ...cell(pair("joinSeconds"), " s", 1),
    ]);
    if (g.xmppToIrc === undefined && b.xmppToIrc === undefined) continue;
    rows.push([
      `N = ${n(g.n)}: CPU per XMPP → IRC message`,
      ...cell(pair("xmppToIrc", "cpuMsPerMessage"), " ms", 2),
    ]);
    rows.push([
      `N = ${n(g.n)}: XMPP → IRC rate / latency p50`,
      ...[g, b].map((x) =>
        x.error
          ? "failed"
          : `${n(get(x, "xmppToIrc", "perSecond"))} msg/s / ${n(get(x, "xmppToIrc", "latencyMs", "p50"))} ms`,
      ),
    ]);
    rows.push([
      `N = ${n(g.n)}: CPU per IRC → XMPP stanza`,
      ...cell(pair("ircToXmpp", "cpuMsPerStanza"), " ms", 3),
    ]);
    rows.push([
      `N = ${n(g.n)}: IRC → XMPP fan-out rate / line to all N, p50`,
      ...[g, b].map((x) =>
        x.error
          ? `failed: ${typeof x.error === "string" ? x.error.slice(0, 60) : "error"}`
          : `${n(get(x, "ircToXmpp", "stanzasPerSecond"))} stanzas/s / ${n(get(x, "ircToXmpp", "lineToAllMembersMs", "p50"))} ms`,
      ),
    ]);
  }
  return `## IRC (\`bench/irc.ts\`, \`bench/results/irc.json\`), next to biboumi

${when(r)} · N XMPP users (each its own IRC connection) in one channel of the bench's own ngircd on
127.0.0.1:6667, through the gateway and through biboumi, one after the other, each as a fresh process, on the
same Prosody and ngircd. Prosody raw echo in the same run: ${n(r.prosodyRawEchoPerSecond)} msg/s (round trip
p50 ${n(get(r, "prosodyRawEchoRoundTripMs", "p50"))} ms).

- RSS: resident memory of the process after N joins minus before, divided by N. Node's heap grows in steps
  and is not collected before the reading, so the figures at N = 10 are mostly noise; N = 1,000 is the one to
  quote.
- CPU per XMPP → IRC message: one user alone in a channel with a plain IRC client sends
  ${n(get(r, "settings", "outMessages", "gateway"))} (gateway) / ${n(get(r, "settings", "outMessages", "biboumi"))} (biboumi)
  messages, ${n(get(r, "settings", "outWindow"))} in flight; user + system time of the process (from /proc) over the count.
  biboumi paces each IRC connection to about one line a second (its default flood control), so its rate and
  latency there measure that pacing; the gateway ran with \`lineDelayMs: 0\`.
- IRC → XMPP: a plain IRC client sends lines to the channel of N users; every line becomes N stanzas.
- Above N = 100 only memory is measured, the users spread over channels of 50 (in one channel each join is
  announced to every member: N²/2 presences).
- In results recorded before the gateway ran compiled, it ran under tsx (TypeScript compiled at start),
  which accounts for part of its idle memory.

${table(["measurement", "xmpp-gateway", "biboumi"], rows)}
`;
}

/** The targets for the compiled gateway (benchmarks, not timed tests). */
const STARTUP_TARGETS = { statusMs: "≤ 300 ms", checkConfigMs: "–", idleRssMiB: "≤ 70 MiB" };

function startupSection(r: Json): string {
  const results = (r.results as Json[] | undefined) ?? [];
  const baseline = results.find((x) => x.label === "baseline");
  const compiled = results.find((x) => x.label === "compiled");
  const rows: [string, keyof typeof STARTUP_TARGETS, string][] = [
    ["CLI `status` wall time (median; against the running gateway)", "statusMs", " ms"],
    ["`--check-config` wall time (median; the example config, 4 adapters)", "checkConfigMs", " ms"],
    [`idle RSS, every adapter on, ${n(r.idleSeconds)} s after ready`, "idleRssMiB", " MiB"],
  ];
  const head = ["measurement", ...(baseline ? ["before (compiled, eager imports)"] : []), "now", "target"];
  return `## Start-up and footprint (\`bench/startup.ts\`, \`bench/results/startup.json\`)

${when(r)} · the compiled gateway (\`node dist/src/main.js\`) on Node ${String(get(r, "machine", "node"))}; each
command run ${n(r.runs)} times after a warm-up, the median quoted. "before" is the release before lazy adapter
imports (${typeof baseline?.main === "string" ? baseline.main : "–"}), measured in the same run. The gateway runs against the bench's own
Prosody, Redis and ngircd, with echo, SMS, email and IRC on and no user.${typeof r.note === "string" ? `\n\n${r.note}` : ""}

${table(
  head,
  rows.map(([label, key, unit]) => [
    label,
    ...(baseline ? [`${n(baseline[key], 1)}${unit}`] : []),
    `${n(compiled?.[key], 1)}${unit}`,
    STARTUP_TARGETS[key],
  ]),
)}
`;
}

/**
 * The footprint figures beside their targets: RSS and V8 heap (after a forced GC) with 1,000 and
 * 10,000 bridged IRC connections (bench/irc.ts, memory only, results/irc-footprint.json) and the peak under a
 * burst before and after the backpressure (results/irc-burst-before.json, irc-burst.json).
 */
function footprintSection(
  startup: Json | undefined,
  conns: Json | undefined,
  burst: Json | undefined,
  burstBefore: Json | undefined,
  burstSemi: Json | undefined,
): string {
  const compiled = ((startup?.results as Json[] | undefined) ?? []).find((x) => x.label === "compiled");
  const at = (size: number) => ((conns?.gateway as Json[] | undefined) ?? []).find((x) => x.n === size);
  const c1 = at(1000);
  const c10 = at(10000);
  const b = (burst?.gateway as Json[] | undefined)?.[0];
  const bb = (burstBefore?.gateway as Json[] | undefined)?.[0];
  const bs = (burstSemi?.gateway as Json[] | undefined)?.[0];
  const mib = (v: unknown) => `${n(v, 1)} MiB`;
  const conn = (c: Json | undefined) =>
    c
      ? `${mib(c.joinedRssMiB)} RSS (${n(c.rssPerConnectionKiB)} KiB per connection over the ${mib(c.baseRssMiB)} before); heap ${mib(get(c, "afterGc", "joinedHeapMiB"))} (${n(get(c, "afterGc", "heapPerConnectionKiB"))} KiB per connection)`
      : "–";
  return `## Footprint: heap, IRC connections, burst peak (\`bench/startup.ts\`, \`bench/irc.ts\`)

Compiled, Node ${String(get(startup, "machine", "node"))}. Heap = V8 heap used after a forced full GC (the gateway started with
\`--expose-gc\`: SIGUSR2 collects and logs \`process.memoryUsage()\`). IRC connections: ${conns ? when(conns) : "–"}; the IRC adapter
alone, users spread over channels of 50, against the bench's ngircd (no connection limits). Burst: ${burst ? when(burst) : "–"}; 100 users in one
channel, an IRC client says 1,000 lines at once (100,000 stanzas), RSS sampled every 100 ms.${typeof conns?.note === "string" ? `\n\n${conns.note}` : ""}

${table(
  ["measurement", "result", "target"],
  [
    [
      "idle, every adapter on: RSS / heap after GC",
      compiled ? `${mib(compiled.idleRssMiB)} / ${mib(compiled.idleHeapAfterGcMiB)}` : "–",
      "≤ 70 MiB RSS",
    ],
    ["1,000 bridged IRC connections", conn(c1), "≤ 100 MiB RSS"],
    ["10,000 bridged IRC connections", conn(c10), "no errors"],
    [
      "burst peak RSS, before backpressure",
      bb
        ? `${mib(bb.peakRssMiB)} (from ${mib(bb.beforeRssMiB)}; ${n(bb.seconds, 1)} s, ${n(bb.stanzasPerSecond)} stanzas/s)`
        : "–",
      "bounded",
    ],
    [
      "burst peak RSS, with backpressure",
      b
        ? `${mib(b.peakRssMiB)} (from ${mib(b.beforeRssMiB)}; ${n(b.seconds, 1)} s, ${n(b.stanzasPerSecond)} stanzas/s)`
        : "–",
      "bounded",
    ],
    [
      "burst peak RSS, with backpressure and `--max-semi-space-size=2` (as the installed command runs)",
      bs
        ? `${mib(bs.peakRssMiB)} (from ${mib(bs.beforeRssMiB)}; ${n(bs.seconds, 1)} s, ${n(bs.stanzasPerSecond)} stanzas/s)`
        : "–",
      "bounded",
    ],
  ],
)}
`;
}

function failoverSection(r: Json): string {
  const rows = ["conflictRetry5s", "conflictRetry1s"].map((key) => {
    const x = r[key] as Json | undefined;
    return [
      `\`xmpp.conflictRetrySeconds\` = ${key.replace(/\D/g, "")}${key === "conflictRetry5s" ? " (default)" : ""}`,
      `${n(get(x, "standbyOnlineMs", "median"))} (${n(get(x, "standbyOnlineMs", "min"))}–${n(get(x, "standbyOnlineMs", "max"))}) ms`,
      `${n(get(x, "firstAnswerAfterKillMs", "median"))} (${n(get(x, "firstAnswerAfterKillMs", "min"))}–${n(get(x, "firstAnswerAfterKillMs", "max"))}) ms`,
    ];
  });
  return `## Several instances (\`bench/failover.ts\`, \`bench/results/failover.json\`)

${when(r)} · Prosody, two gateway processes for one domain; the active one is killed (SIGKILL) while a user
messages the echo contact every ${n(r.pingEveryMs)} ms; ${n(get(r, "conflictRetry5s", "rounds"))} rounds per setting, median
(min–max), counted from the kill.

${table(["setting", "standby's stream online", "user gets answers again"], rows)}

Prosody refuses the standby while the active instance holds the domain (\`conflict\`), so the takeover waits
for the standby's next retry: at most \`conflictRetrySeconds\`, half of it on average. Inbound events the dead
instance had already read from the shared Redis inbox but not confirmed wait until they have been idle for
60 s (\`CLAIM_IDLE_MS\`) and are then claimed by the survivor, which looks every 10 s: they arrive within
about 70 seconds, not lost (\`test/e2e/standby.test.ts\`). Events it persisted but had not read are
delivered as soon as the survivor's stream is up. With ejabberd and \`domain_balancing\` there is no standby:
see docs/deployment.md, "Several instances".
`;
}

function fanoutSection(r: Json): string {
  const rss = r.rssMiB as Json | undefined;
  return `## Alert fan-out (\`bench/alerts-fanout.ts\`, \`bench/results/alerts-fanout.json\`)

${when(r)} · Prosody, Redis; one alert through the alert API to a group of ${n(r.recipients)} generated
recipients with contacts in Redis (policy: XMPP only). The recipients are JIDs of a counting component, so
the time is until Prosody handed the last message on; the gateway runs as its own process.

${table(
  ["measurement", "result"],
  [
    ["202 answer of the API", `${n(r.acceptedMs)} ms`],
    ["first XMPP message arrived", `${n(r.firstMessageMs)} ms`],
    [
      `all ${n(r.recipients)} XMPP messages arrived`,
      r.allMessagesMs === null ? `no: ${n(r.delivered)} arrived` : `${n(r.allMessagesMs)} ms`,
    ],
    ["rate", `${n(r.messagesPerSecond)} messages/s (rates.xmppPerSecond: ${n(r.xmppPerSecond)})`],
    ["gateway RSS before / peak / after", `${n(rss?.before)} / ${n(rss?.peak)} / ${n(rss?.after)} MiB`],
    ["gateway CPU time during the fan-out", `${n(r.gatewayCpuMs)} ms`],
  ],
)}

Before the named rates (same machine, 2026-12-02T06:43Z, load average 14.5): the 202 answer took 979 ms,
all 10,000 XMPP messages arrived after 102,280 ms (98 messages/s, a pace set only by the escalator's claim
batch of 100 steps per \`timers.pollMs\`), the gateway's RSS went 116 / 434 / 372 MiB (before / peak / after)
and it used 19,910 ms of CPU. Each step then read the whole alert, its 10,000-JID recipient list included
(about 250 KB of JSON per step, 2.5 GB for the alert), and checked membership in that list.

Now XMPP and email go out at a named rate per channel (\`rates.xmppPerSecond\`, default 100;
\`rates.emailPerSecond\`, default 10; SMS \`twilio.messagesPerSecond\` per sender number), counted in a Redis
window shared by every instance: a step due while the rate is spent goes back among the due steps at its
first due time, so the fan-out takes at least recipients / rate seconds. A step reads only the alert's own
fields (HMGET) and that recipient's state; membership is a Redis set (SISMEMBER). The alert is created
in chunks of 1,000 recipients (\`CREATE_CHUNK_RECIPIENTS\`) behind a pending record no reader sees, then
committed by one small script that makes the steps due: no single script holds Redis for the whole alert
(measured on an idle Redis, single samples: a PING sent during the creation waited 117 ms at 10,000 recipients with the one
script, 43 ms with chunks; at 100,000 the one script failed, the chunks took 2.1 s with PINGs waiting at
most 80 ms). A recent-alerts index (a capped sorted set written at the commit) replaces the scan of every
alert key behind "Recent alerts".
`;
}

/** Any other benchmark's result (e.g. email): its numbers, flattened. */
function genericSection(name: string, r: Json): string {
  const rows: string[][] = [];
  const walk = (o: unknown, prefix: string) => {
    if (typeof o === "number") rows.push([prefix, n(o, 2)]);
    else if (o && typeof o === "object" && !Array.isArray(o))
      for (const [k, v] of Object.entries(o as Json))
        if (k !== "machine") walk(v, prefix ? `${prefix}.${k}` : k);
  };
  walk(r, "");
  return `## ${name} (\`bench/${name}.ts\`, \`bench/results/${name}.json\`)

${when(r)}.

${table(["measurement", "result"], rows)}
`;
}

async function report(runs: Awaited<ReturnType<typeof runOne>>[]): Promise<void> {
  const m = machine();
  const v = versions();
  const sections: string[] = [];
  for (const name of BENCHMARKS) {
    const r = await readResult(name);
    if (!r) continue;
    sections.push(
      name === "startup"
        ? startupSection(r)
        : name === "sms"
          ? smsSection(r)
          : name === "email"
            ? emailSection(r)
            : name === "irc"
              ? ircSection(r)
              : name === "failover"
                ? failoverSection(r)
                : name === "alerts-fanout"
                  ? fanoutSection(r)
                  : genericSection(name, r),
    );
  }
  const startupIndex = sections.findIndex((x) => x.startsWith("## Start-up"));
  const footprint = footprintSection(
    await readResult("startup-footprint"),
    await readResult("irc-footprint"),
    await readResult("irc-burst"),
    await readResult("irc-burst-before"),
    await readResult("irc-burst-semi2"),
  );
  sections.splice(startupIndex + 1, 0, footprint);
  const loadNote = runs.length
    ? runs
        .map(
          (x) => `${x.name} ${x.ok ? "ok" : "FAILED"} in ${x.seconds} s (load ${x.load[0]} → ${x.load[1]})`,
        )
        .join("; ")
    : "none (the report was rewritten from the results on disk; each section gives its own date and load)";
  const busy = runs.some((x) => x.load.some((l) => l > m.cpus));
  const text = `# Benchmark results

Written by \`npx tsx bench/run.ts\` (which runs every benchmark, then writes this file from
\`bench/results/*.json\`; \`--only irc,sms\` runs some, \`--report\` only rewrites this file). Each benchmark
starts its own servers on loopback and measures Prosody's raw echo rate (client → component → client, no
gateway) in the same run, on the same servers, as the yardstick. Single runs vary by about ±30 %.

Machine: ${m.cpus} × ${m.cpu}, ${m.memoryGiB} GiB · Node ${v.node} · Prosody ${v.prosody} · ejabberd
${v.ejabberd} · ngircd ${v.ngircd} · Redis ${v["redis-server"]} · biboumi ${v.biboumi} (Debian packages).
This run: ${loadNote}.${
    runs.length > 0 && runs.length < sections.length
      ? " Other sections come from earlier runs: each gives its own date and load."
      : ""
  }${
    busy
      ? `\n\n**The machine was busy:** other work was running during the run (load average above the ${m.cpus} cores);
absolute rates are lower than on an idle machine, the comparisons within one run still hold.`
      : ""
  }

${sections.join("\n")}`;
  await writeFile(here("RESULTS.md"), text);
  console.error(`wrote ${here("RESULTS.md")}`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { only: { type: "string" }, report: { type: "boolean", default: false } },
  });
  const wanted = values.only ? values.only.split(",") : [...BENCHMARKS];
  const runs: Awaited<ReturnType<typeof runOne>>[] = [];
  if (!values.report)
    for (const name of BENCHMARKS)
      if (wanted.includes(name) && existsSync(here(`${name}.ts`))) runs.push(await runOne(name));
  await report(runs);
  if (runs.some((r) => !r.ok)) process.exit(1);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
