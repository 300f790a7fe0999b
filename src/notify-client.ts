/**
 * `xmpp-gateway notify`: sends an alert through a running gateway's alert API (POST /api/v1/alerts on the
 * public listener) with a bearer token from the environment, prints the alert id, and optionally waits until
 * every recipient acknowledged (polling GET /api/v1/alerts/{id}). Scripts need neither Redis nor XMPP.
 */
import { readFile } from "node:fs/promises";
import { CLIENT_TIMEOUT_MS } from "./admin-client.js";

/** The variable holding the alert API token unless --token-env names another. */
export const DEFAULT_NOTIFY_TOKEN_ENV = "XGW_NOTIFY_TOKEN";
/** How long --wait-ack waits for the acknowledgement unless --wait-timeout says otherwise. */
export const DEFAULT_WAIT_ACK_SECONDS = 600;
/** Time between two polls of the alert's state with --wait-ack. */
export const WAIT_ACK_POLL_MS = 2_000;
/** Longest text read from stdin (the server refuses more than its own limit anyway: 413). */
export const MAX_STDIN_BYTES = 1024 * 1024;

export interface NotifyArgs {
  to: string[];
  title: string;
  text: string | undefined;
  severity: string;
  policy: string | undefined;
  dedupKey: string | undefined;
  tokenEnv: string;
  waitAck: boolean;
  waitSeconds: number;
}

/** Where the gateway's public listener is, from the config file (http.publicUrl, else http.host and .port). */
export async function publicUrlFromConfig(file: string, url: string | undefined): Promise<string> {
  if (url) return url.replace(/\/+$/, "");
  let raw: { http?: { publicUrl?: unknown; host?: unknown; port?: unknown } };
  try {
    raw = JSON.parse(await readFile(file, "utf8")) as typeof raw;
  } catch (err) {
    throw new Error(`${file}: ${(err as Error).message} (or give --url)`);
  }
  if (typeof raw.http?.publicUrl === "string") return raw.http.publicUrl.replace(/\/+$/, "");
  const host = typeof raw.http?.host === "string" ? raw.http.host : "127.0.0.1";
  const port = typeof raw.http?.port === "number" ? raw.http.port : 8080;
  const reachable =
    host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host.includes(":") ? `[${host}]` : host;
  return `http://${reachable}:${port}`;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_STDIN_BYTES) throw new Error(`the text on stdin is longer than ${MAX_STDIN_BYTES} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8").replace(/\s+$/, "");
}

interface ApiAnswer {
  status: number;
  body: unknown;
}

async function call(url: string, token: string, json?: unknown): Promise<ApiAnswer> {
  const response = await fetch(url, {
    method: json === undefined ? "GET" : "POST",
    headers: {
      accept: "application/json",
      authorization: `Bearer ${token}`,
      ...(json === undefined ? {} : { "content-type": "application/json" }),
    },
    body: json === undefined ? undefined : JSON.stringify(json),
    signal: AbortSignal.timeout(CLIENT_TIMEOUT_MS),
  });
  const text = await response.text();
  try {
    return { status: response.status, body: JSON.parse(text) };
  } catch {
    return { status: response.status, body: text };
  }
}

/** The server's error answer as one line: its message, the field paths at fault, the recipient refused. */
export function errorText(answer: ApiAnswer): string {
  const body = answer.body as {
    error?: string;
    message?: string;
    issues?: { path: string; message: string }[];
    recipient?: string;
  };
  if (typeof answer.body === "string" || !body?.message)
    return `HTTP ${answer.status}: ${typeof answer.body === "string" ? answer.body.slice(0, 500) : JSON.stringify(answer.body)}`;
  const issues = body.issues?.map((i) => `${i.path}: ${i.message}`).join("; ");
  return `HTTP ${answer.status} ${body.error ?? ""}: ${body.message}${issues ? ` (${issues})` : ""}${body.recipient ? ` [${body.recipient}]` : ""}`;
}

type Out = (line: string) => void;

/** Runs the command; returns the exit code (0 sent/acknowledged, 1 refused/failed/not acknowledged, 2 usage). */
export async function notify(base: string, args: NotifyArgs, out: Out, err: Out): Promise<number> {
  const token = process.env[args.tokenEnv];
  if (!token) {
    err(`Set ${args.tokenEnv} to the alert API token (or name another variable with --token-env).`);
    return 2;
  }
  const text = args.text ?? (process.stdin.isTTY ? "" : await readStdin());
  const request = {
    recipients: args.to,
    title: args.title,
    text,
    severity: args.severity,
    ...(args.policy ? { policy: args.policy } : {}),
    ...(args.dedupKey ? { dedupKey: args.dedupKey } : {}),
  };
  let answer: ApiAnswer;
  try {
    answer = await call(`${base}/api/v1/alerts`, token, request);
  } catch (e) {
    err(`${base}: no answer (${(e as Error).message})`);
    return 1;
  }
  if (answer.status >= 400 || typeof (answer.body as { id?: unknown }).id !== "string") {
    err(errorText(answer));
    return 1;
  }
  const id = (answer.body as { id: string }).id;
  out(id);
  if (!args.waitAck) return 0;

  const end = Date.now() + args.waitSeconds * 1000;
  for (;;) {
    let state: ApiAnswer | undefined;
    try {
      state = await call(`${base}/api/v1/alerts/${encodeURIComponent(id)}`, token);
    } catch (e) {
      err(`${base}: no answer (${(e as Error).message}); still waiting`);
    }
    if (state && state.status >= 400) {
      err(errorText(state));
      return 1;
    }
    const recipients =
      (state?.body as { recipients?: { jid: string; acknowledged: { at: string; via: string } | null }[] })
        ?.recipients ?? [];
    const acked = recipients.find((r) => r.acknowledged);
    if (acked) {
      err(`acknowledged by ${acked.jid} at ${acked.acknowledged?.at} (${acked.acknowledged?.via})`);
      return 0;
    }
    if (Date.now() >= end) {
      err(`not acknowledged within ${args.waitSeconds} s`);
      return 1;
    }
    await new Promise((r) => setTimeout(r, Math.min(WAIT_ACK_POLL_MS, Math.max(0, end - Date.now()))));
  }
}
