/**
 * Writes docs/configuration.md, the configuration reference, from the one zod schema (src/config/schema.ts
 * with every adapter's own sub-schema from src/compose.ts), so the reference cannot drift from what the
 * gateway accepts.
 *
 *   npx tsx scripts/config-reference.ts          write docs/configuration.md
 *   npx tsx scripts/config-reference.ts --check  exit 1 when docs/configuration.md is out of date
 *
 * The field texts come from the schema's `.describe()`. Fields the schema does not describe yet take their
 * text from NOTES below; NOTES also adds operational detail after a schema description. A note for a path the
 * schema does not have is an error, so a renamed field cannot leave a stale note behind.
 */
import { readFile, writeFile } from "node:fs/promises";
import { fileURLToPath, pathToFileURL } from "node:url";
import { format, resolveConfig } from "prettier";
import { z } from "zod";
import { adapterSchemas } from "../src/compose.js";
import { buildConfigSchema } from "../src/config/schema.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
export const REFERENCE_FILE = fileURLToPath(new URL("../docs/configuration.md", import.meta.url));
const EXAMPLE_FILE = fileURLToPath(new URL("../gateway.config.json", import.meta.url));

/** A string no pattern in the schema accepts: parsing it yields the pattern's human-readable message. */
const PATTERN_PROBE = "\u0000";

/**
 * Texts for fields, by path; `adapters.*` stands for every adapter. Shown after the schema's own
 * `.describe()` text, or alone when the schema has none. Behaviour described here is the code's: keep the
 * two in step (src/xmpp/link.ts, src/delivery/*, src/core/access.ts, src/config/load.ts).
 */
const NOTES: Readonly<Record<string, string>> = {
  xmpp: "How the gateway reaches the XMPP server.",
  "xmpp.service":
    "The XMPP server's component listener. Every enabled adapter opens its own XEP-0114 stream to this " +
    "address. XEP-0114 has no encryption: keep the listener on loopback or a private network.",
  "xmpp.serverDomains":
    "Their users may use every adapter unless `adapters.<name>.access.allow` says otherwise. The gateway " +
    "pings the first domain (XEP-0199) to keep each stream alive and, after each batch of inbound messages, " +
    "to learn that the server has taken the batch; that server must answer pings.",
  "xmpp.keepaliveSeconds":
    "Seconds between keepalive pings on each component stream. A ping that fails (no answer within 10 " +
    "seconds, or an error) closes the stream, and the gateway reconnects.",
  "xmpp.reconnectMaxSeconds":
    "Longest wait, in seconds, between two connection attempts. After a lost stream the gateway waits about " +
    "1 s, then twice as long after each failure (a random time between half and all of 1 s, 2 s, 4 s…), up " +
    "to this bound. It also waits this long before trying again when the server rejects the secret " +
    "(`not-authorized`) or does not know the domain (`host-unknown`).",
  "xmpp.conflictRetrySeconds":
    "A server that accepts one connection per component domain (Prosody) answers a second instance with " +
    "`conflict`; that instance retries at this interval and takes over when the first one goes away.",
  redis: "The Redis server that holds registrations, queues and dedupe keys.",
  "redis.url":
    "`redis://HOST:PORT[/DB]`, or `rediss://` for TLS; `redis://127.0.0.1:6379` when left out. Keep the password out of this file: use " +
    "`redis.passwordEnv`.",
  "redis.passwordEnv":
    "Name of the environment variable holding the Redis password. When this field is set and the variable " +
    "is not, the gateway refuses to start (exit code 2).",
  "redis.keyPrefix":
    "Prefix of every Redis key the gateway writes. Instances of one gateway share a prefix; separate " +
    "gateways sharing one Redis database need different prefixes. No `{` or `}`: the gateway puts hash " +
    "tags in key names so that a Redis Cluster keeps the keys it uses together on one node.",
  "redis.cluster":
    "Seed nodes of a Redis Cluster, as `HOST:PORT` strings; the gateway asks them for the cluster's slot map " +
    "and follows slot migrations and failovers by itself. All nodes take the password of " +
    '`redis.passwordEnv`. Leave out `url` and `sentinels`. See docs/deployment.md, "Redis Cluster".',
  admins:
    "Bare JIDs of the gateway's administrators. They may use every adapter whatever `access.allow` says, " +
    "see and run the administrators' ad-hoc commands (XEP-0050), and receive the gateway's notices.",
  instanceId:
    "It names this instance's reader of the inbound queues: entries it took and did not deliver are taken " +
    "over by another instance within 60 to 70 seconds, or sent again at once when an instance with the " +
    "same name starts.",
  log: "Logs are JSON lines (pino) on standard output.",
  "log.level": "The least severe level written. Message bodies appear only at `debug` and `trace`.",
  limits: "Limits applied to every adapter.",
  "limits.maxBodyChars": "A longer message is refused with a `not-acceptable` error that states the limit.",
  "limits.idempotencyHours":
    "How long the gateway remembers the sender's full JID and the stanza id of each outbound message, so " +
    "that a client's resend after a reconnect, or after a gateway restart, is not passed to the network twice.",
  adapters:
    "One entry per adapter to run, keyed by adapter name. Each enabled adapter is its own component: its " +
    "own domain, its own secret, its own stream. An adapter not listed does not run; at least one must be " +
    "enabled.",
  "adapters.*.enabled": "`false` keeps the section but does not run the adapter.",
  "adapters.*.domain":
    "The component domain this adapter serves, e.g. `sms.example.org`, configured on the XMPP server with " +
    "the same secret. Each adapter needs a domain of its own.",
  "adapters.*.secretEnv":
    "When the adapter is enabled and the variable is not set, the gateway refuses to start (exit code 2). " +
    "Give every adapter its own secret.",
  "adapters.*.access": "Who may use this adapter.",
  "adapters.*.access.allow":
    "An entry with `@` is a bare JID; any other entry is a domain and allows all of its users. " +
    "Administrators are always allowed. Anybody else gets a `forbidden` error that says whom to ask.",
  "adapters.echo":
    "A stand-in network whose contacts answer every message with the same text, prefixed with the " +
    "nickname the user registered. The test suite and the quickstart use it.",
  "adapters.echo.requireRegistration": "When `false`, users can message echo contacts without registering.",
};

/** The parts of a JSON Schema node this generator reads (zod's output for the config schema). */
interface JsonNode {
  type?: string | string[];
  description?: string;
  default?: unknown;
  enum?: unknown[];
  pattern?: string;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  items?: JsonNode;
  properties?: Record<string, JsonNode>;
  required?: string[];
  /** Added by this script: the zod message for a pattern, e.g. "expected a bare JID such as …". */
  "x-pattern-message"?: string;
}

interface Field {
  path: string;
  node: JsonNode;
  /** Required within its parent object. */
  required: boolean;
  /** The nearest optional ancestor object, when the field is required only inside it. */
  within: string | undefined;
  depth: number;
}

function noteFor(path: string): string | undefined {
  return NOTES[path] ?? NOTES[path.replace(/^adapters\.[^.]+/, "adapters.*")];
}

function jsonSchema(): JsonNode {
  const schema = buildConfigSchema(adapterSchemas);
  return z.toJSONSchema(schema, {
    io: "input",
    override: ({ zodSchema, jsonSchema }) => {
      if (typeof jsonSchema.pattern !== "string") return;
      const result = z.safeParse(zodSchema, PATTERN_PROBE);
      const issue = result.error?.issues.find((i) => i.code === "invalid_format");
      if (issue) jsonSchema["x-pattern-message"] = issue.message;
    },
  }) as JsonNode;
}

function collect(node: JsonNode, prefix: string, depth: number, within: string | undefined, out: Field[]) {
  const required = new Set(node.required ?? []);
  for (const [key, child] of Object.entries(node.properties ?? {})) {
    const path = prefix ? `${prefix}.${key}` : key;
    const isRequired = required.has(key);
    out.push({ path, node: child, required: isRequired, within, depth });
    // Fields of an optional object are only required once that object is given.
    const childWithin = isRequired ? within : path;
    if (child.properties) collect(child, path, depth + 1, childWithin, out);
  }
}

const code = (value: string) => `\`${value}\``;
const json = (value: unknown) => code(JSON.stringify(value));
const cell = (value: string) => value.replace(/\|/g, "\\|");

/** GitHub's heading anchor: lowercase, punctuation other than `-` and `_` dropped, spaces to `-`. */
function anchor(heading: string): string {
  return heading
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, "")
    .replace(/ /g, "-");
}

function typeName(node: JsonNode): string {
  const t = Array.isArray(node.type) ? node.type.join(" or ") : (node.type ?? "any");
  if (t === "array") return `array of ${node.items ? `${typeName(node.items)}s` : "values"}`;
  return t;
}

/** "from 1 to 64 characters", "at least 1 item"… (`unit` is singular). */
function range(min: number | undefined, max: number | undefined, unit = ""): string | undefined {
  const units = (n: number) => (unit === "" ? "" : ` ${unit}${n === 1 ? "" : "s"}`);
  if (min !== undefined && max !== undefined) return `from ${min} to ${max}${units(max)}`;
  if (min !== undefined) return `at least ${min}${units(min)}`;
  if (max !== undefined) return `at most ${max}${units(max)}`;
  return undefined;
}

/** What values are allowed, in words, for one node (a field or the items of an array). */
function constraints(node: JsonNode): string[] {
  const out: string[] = [];
  if (node.enum) out.push(`one of ${node.enum.map((v) => json(v)).join(", ")}`);
  const numbers = range(node.minimum, node.maximum);
  if (numbers) out.push(numbers);
  const chars = range(node.minLength, node.maxLength, "character");
  if (chars) out.push(chars);
  const items = range(node.minItems, node.maxItems, "item");
  if (items) out.push(items);
  return out;
}

/** The format a pattern enforces: zod's message for it ("expected …"), then the pattern itself. */
function patternText(node: JsonNode): string | undefined {
  if (node.pattern === undefined) return undefined;
  const message = node["x-pattern-message"]?.replace(/^expected /, "");
  return message ? `${message}; pattern ${code(node.pattern)}` : `pattern ${code(node.pattern)}`;
}

function requiredText(field: Field): string {
  if (!field.required) return "no";
  return field.within ? `yes, when ${code(field.within)} is given` : "yes";
}

function defaultText(field: Field): string {
  if (field.node.default !== undefined) return json(field.node.default);
  return field.required ? "—" : "not set";
}

function describe(field: Field): string {
  return [field.node.description, noteFor(field.path)]
    .filter((t): t is string => t !== undefined && t !== "")
    .map((t) => (/[.!?]$/.test(t) ? t : `${t}.`))
    .map((t) => t.charAt(0).toUpperCase() + t.slice(1))
    .join(" ");
}

function fieldSection(field: Field): string {
  const { node } = field;
  const lines = [`${field.depth === 0 ? "###" : "####"} ${code(field.path)}`, ""];
  const text = describe(field);
  if (text) lines.push(text, "");
  lines.push(`- Type: ${typeName(node)}`);
  lines.push(`- Required: ${requiredText(field)}`);
  if (!field.required && (!node.properties || node.default !== undefined))
    lines.push(`- Default: ${defaultText(field)}`);
  const allowed = constraints(node);
  if (allowed.length) lines.push(`- Allowed: ${allowed.join("; ")}`);
  const shape = patternText(node);
  if (shape) lines.push(`- Format: ${shape}`);
  if (node.items) {
    const each = [...constraints(node.items), patternText(node.items)].filter((t) => t !== undefined);
    if (each.length) lines.push(`- Each item: ${each.join("; ")}`);
  }
  return lines.join("\n");
}

function overview(fields: Field[]): string {
  const rows = fields.map((f) => {
    const link = `[${code(f.path)}](#${anchor(code(f.path))})`;
    return `| ${link} | ${cell(typeName(f.node))} | ${cell(requiredText(f))} | ${cell(defaultText(f))} |`;
  });
  return ["| Field | Type | Required | Default |", "| --- | --- | --- | --- |", ...rows].join("\n");
}

interface EnvRow {
  name: string;
  namedBy: string;
  holds: string;
}

/** Every environment variable the gateway reads, with the example config's names filled in. */
function environment(fields: Field[], example: Record<string, unknown>): EnvRow[] {
  const rows: EnvRow[] = [];
  const exampleAdapters = (example.adapters ?? {}) as Record<string, { secretEnv?: string; domain?: string }>;
  for (const field of fields) {
    const match = /^adapters\.([^.]+)\.secretEnv$/.exec(field.path);
    if (!match?.[1]) continue;
    const key = match[1];
    const given = exampleAdapters[key];
    rows.push({
      name: given?.secretEnv ? code(given.secretEnv) : `the name given in ${code(field.path)}`,
      namedBy: code(field.path),
      holds:
        `The XEP-0114 secret of the ${key} component` +
        (given?.domain ? ` (${code(given.domain)} in the example)` : "") +
        ", the same secret the XMPP server has for that domain.",
    });
  }
  if (fields.some((f) => f.path === "redis.passwordEnv"))
    rows.push({
      name: "the name given in `redis.passwordEnv`",
      namedBy: "`redis.passwordEnv`",
      holds: "The Redis password. Read only when `redis.passwordEnv` is set.",
    });
  rows.push({
    name: "`LOG_LEVEL`",
    namedBy: "(fixed name)",
    holds:
      "Overrides `log.level` for one run (`debug` while investigating; message bodies are logged only at " +
      "`debug`).",
  });
  return rows;
}

/** The whole reference, formatted as the repository's Prettier config would. */
export async function renderConfigReference(): Promise<string> {
  const root = jsonSchema();
  const fields: Field[] = [];
  collect(root, "", 0, undefined, fields);

  const paths = new Set(fields.map((f) => f.path));
  const unknown = Object.keys(NOTES).filter(
    (p) => !paths.has(p) && ![...paths].some((q) => q.replace(/^adapters\.[^.]+/, "adapters.*") === p),
  );
  if (unknown.length)
    throw new Error(
      `scripts/config-reference.ts has notes for fields the schema lacks: ${unknown.join(", ")}`,
    );

  const exampleText = await readFile(EXAMPLE_FILE, "utf8");
  const example = JSON.parse(exampleText) as Record<string, unknown>;
  const parsed = buildConfigSchema(adapterSchemas).safeParse(example);
  if (!parsed.success)
    throw new Error(
      `gateway.config.json does not match the schema: ${parsed.error.issues[0]?.message ?? ""}`,
    );

  const adapterKeys = Object.keys(adapterSchemas);
  const env = environment(fields, example);
  const topLevel = fields.filter((f) => f.depth === 0).map((f) => f.path);

  const md = [
    "# Configuration reference",
    "",
    "<!-- Generated by scripts/config-reference.ts from src/config/schema.ts and the adapters' schemas. " +
      "Do not edit by hand: run `npx tsx scripts/config-reference.ts`. -->",
    "",
    "The gateway reads one JSON file: `gateway.config.json` in the working directory, or the file given with " +
      "`--config PATH`. It checks the whole file against one schema before it connects to anything; a file that " +
      "does not match makes it print every problem with the field's path and exit with code 2. " +
      "`--check-config` runs the same checks, including the environment variables named in the file, and exits " +
      "without starting.",
    "",
    "Unknown keys are errors, at every level. Secrets are never written in the file: a field ending in `Env` " +
      "holds the name of the environment variable that holds the secret.",
    "",
    `Top-level keys: ${topLevel.map(code).join(", ")}. Adapters in this version: ${adapterKeys.map(code).join(", ")}.`,
    "",
    "## Example",
    "",
    "The repository's `gateway.config.json`, which runs every adapter (echo, SMS, email, IRC) against a server " +
      "and Redis on the same machine (the quickstart's setup):",
    "",
    "```json",
    exampleText.trimEnd(),
    "```",
    "",
    "Run it with the secret in the environment, the same one the XMPP server has for `echo.localhost`:",
    "",
    "```sh",
    "GATEWAY_ECHO_SECRET='…' node dist/src/main.js --config gateway.config.json --check-config",
    "```",
    "",
    "## Environment variables",
    "",
    "| Variable | Named by | Holds |",
    "| --- | --- | --- |",
    ...env.map((r) => `| ${r.name} | ${r.namedBy} | ${cell(r.holds)} |`),
    "",
    "## Fields",
    "",
    overview(fields),
    "",
    ...fields.flatMap((f) => [fieldSection(f), ""]),
  ].join("\n");

  const options = (await resolveConfig(REFERENCE_FILE)) ?? {};
  return format(md, { ...options, filepath: REFERENCE_FILE });
}

async function main(argv: string[]): Promise<number> {
  const check = argv.includes("--check");
  const rendered = await renderConfigReference();
  const relative = REFERENCE_FILE.slice(ROOT.length);
  if (!check) {
    await writeFile(REFERENCE_FILE, rendered);
    console.log(`wrote ${relative}`);
    return 0;
  }
  const current = await readFile(REFERENCE_FILE, "utf8").catch(() => null);
  if (current === rendered) return 0;
  console.error(
    `${relative} is ${current === null ? "missing" : "out of date with the config schema"}; ` +
      "run `npx tsx scripts/config-reference.ts` and commit the result.",
  );
  return 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(err instanceof Error ? err.message : err);
      process.exit(1);
    },
  );
}
