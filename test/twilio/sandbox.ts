/**
 * SMS sandbox for the quickstart: a Twilio-compatible server on loopback that prints every SMS the gateway
 * sends, and turns lines typed on stdin into incoming SMS posted to the gateway's webhook.
 *
 *   npx tsx test/twilio/sandbox.ts
 *   +12025550123> hello            an SMS from +12025550123 to the sandbox's first number
 *   +12025550123>+15550000002> hi  the same, to another of its numbers
 *
 * Environment: TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, SANDBOX_NUMBERS (comma-separated E.164),
 * SANDBOX_WEBHOOK_URL (the gateway's incoming-SMS URL), SANDBOX_PORT (0 or unset: a free port).
 */
import { createInterface } from "node:readline";
import type { Readable, Writable } from "node:stream";
import { pathToFileURL } from "node:url";
import { startTwilioFake, type TwilioFake } from "./server.js";

export const SANDBOX_DEFAULTS = {
  accountSid: "AC" + "0".repeat(32),
  authToken: "sandbox-auth-token",
  numbers: ["+15550000001"],
  // The gateway's default HTTP address, with the SMS adapter's route under /sms/.
  webhookUrl: "http://127.0.0.1:8080/sms/twilio/sms",
};

/** A typed line: `FROM> text` or `FROM>TO> text`, numbers in E.164. */
const LINE = /^(\+[1-9]\d{1,14})>(?:(\+[1-9]\d{1,14})>)?\s?(.*)$/;

export interface SandboxOptions {
  accountSid?: string;
  authToken?: string;
  numbers?: string[];
  webhookUrl?: string;
  port?: number;
  input?: Readable;
  output?: Writable;
}

/** Texts of the <Message> replies in a TwiML answer (what Twilio would send back to the phone). */
export function twimlReplies(twiml: string): string[] {
  const replies: string[] = [];
  for (const [, inner = ""] of twiml.matchAll(/<Message(?:\s[^>]*)?>([\s\S]*?)<\/Message>/g)) {
    const text = /<Body>([\s\S]*?)<\/Body>/.exec(inner)?.[1] ?? inner.replace(/<[^>]*>/g, "");
    replies.push(
      text
        .replace(/&lt;/g, "<")
        .replace(/&gt;/g, ">")
        .replace(/&quot;/g, '"')
        .replace(/&amp;/g, "&"),
    );
  }
  return replies;
}

export async function startSandbox(
  opts: SandboxOptions = {},
): Promise<{ fake: TwilioFake; stop: () => Promise<void> }> {
  const numbers = opts.numbers ?? SANDBOX_DEFAULTS.numbers;
  const webhookUrl = opts.webhookUrl ?? SANDBOX_DEFAULTS.webhookUrl;
  const out = opts.output ?? process.stdout;
  const say = (line: string): void => void out.write(line + "\n");
  const fake = await startTwilioFake({
    accountSid: opts.accountSid ?? SANDBOX_DEFAULTS.accountSid,
    authToken: opts.authToken ?? SANDBOX_DEFAULTS.authToken,
    numbers,
    port: opts.port ?? 0,
  });
  fake.onSent((m) => {
    const media = m.mediaUrls.map((url) => ` [${url}]`).join("");
    say(`to ${m.to} from ${m.from ?? m.messagingServiceSid ?? "?"}: ${m.body}${media}`);
  });
  say(`SMS sandbox: Twilio API at ${fake.url}, numbers ${numbers.join(", ")}, webhook ${webhookUrl}`);
  say(`type "+12025550123> text" to send an SMS`);

  const lines = createInterface({ input: opts.input ?? process.stdin });
  lines.on("line", (line) => {
    if (line.trim() === "") return;
    const match = LINE.exec(line.trim());
    if (!match) return say(`? expected "+12025550123> text" (E.164 sender), got: ${line}`);
    const [, from = "", to = numbers[0] ?? "", body = ""] = match;
    fake.sendInbound({ from, to, body, webhookUrl }).then(
      (answer) => {
        if (answer.status >= 300) say(`! the gateway answered HTTP ${answer.status}`);
        for (const reply of twimlReplies(answer.body)) say(`to ${from} from ${to}: ${reply}`);
      },
      (err: unknown) => say(`! ${err instanceof Error ? err.message : String(err)}`),
    );
  });
  return {
    fake,
    stop: async () => {
      lines.close();
      await fake.stop();
    },
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const env = process.env;
  const sandbox = await startSandbox({
    accountSid: env.TWILIO_ACCOUNT_SID,
    authToken: env.TWILIO_AUTH_TOKEN,
    numbers: env.SANDBOX_NUMBERS?.split(",").map((n) => n.trim()),
    webhookUrl: env.SANDBOX_WEBHOOK_URL,
    port: env.SANDBOX_PORT === undefined ? undefined : Number(env.SANDBOX_PORT),
  });
  const stop = (): void => void sandbox.stop().then(() => process.exit(0));
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}
