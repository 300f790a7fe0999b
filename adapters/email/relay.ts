/** Sending through the configured SMTP relay (nodemailer, pooled), and what its refusals mean to a user. */
import nodemailer, { type Transporter } from "nodemailer";
import type Mail from "nodemailer/lib/mailer/index.js";
import { GatewayError } from "../../src/xmpp/errors.js";
import type { EmailConfig } from "./config.js";

/** Longest piece of the relay's reply quoted to the user. */
export const MAX_REPLY_QUOTE_CHARS = 300;

/** What nodemailer puts on its errors (SMTP reply code and text, its own error code). */
interface SmtpFailure {
  responseCode?: number;
  response?: string;
  code?: string;
  message?: string;
}

function quote(text: string): string {
  // eslint-disable-next-line no-control-regex
  const flat = text.replace(/[\u0000-\u001f\u007f]+/g, " ").trim();
  return flat.length > MAX_REPLY_QUOTE_CHARS ? `${flat.slice(0, MAX_REPLY_QUOTE_CHARS)}…` : flat;
}

/**
 * A relay failure as the user should see it (RFC 5321 §4.2.1): 5yz is permanent, with the relay's reply in
 * the text; a refused recipient is item-not-found (XEP-0100 §4.8); 4yz, timeouts and connection failures
 * are remote-server-timeout: try again later.
 */
export function relayFailure(err: unknown): GatewayError {
  const e = (typeof err === "object" && err !== null ? err : {}) as SmtpFailure;
  const reply = quote(e.response ?? e.message ?? String(err));
  const code = e.responseCode;
  if (code !== undefined && code >= 500 && code < 600) {
    if (e.code === "EENVELOPE")
      return new GatewayError("item-not-found", `The mail server refused the address: ${reply}`, {
        cause: err,
      });
    return new GatewayError("not-acceptable", `The mail server refused the message: ${reply}`, {
      type: "cancel",
      cause: err,
    });
  }
  return new GatewayError(
    "remote-server-timeout",
    `The mail relay could not take the message now (${reply}); it was not sent, try again later.`,
    { cause: err },
  );
}

export class Relay {
  private readonly transport: Transporter;

  constructor(config: EmailConfig["relay"], auth: { user: string; pass: string } | undefined) {
    const timeout = config.timeoutSeconds * 1000;
    this.transport = nodemailer.createTransport({
      pool: true,
      host: config.host,
      port: config.port,
      secure: config.secure,
      // RFC 3207: with starttls the session must be encrypted before anything is sent; without it (a relay
      // on loopback), STARTTLS is not even tried.
      requireTLS: !config.secure && config.starttls,
      ignoreTLS: !config.secure && !config.starttls,
      maxConnections: config.maxConnections,
      connectionTimeout: timeout,
      greetingTimeout: timeout,
      socketTimeout: timeout,
      ...(auth ? { auth } : {}),
    });
  }

  /** Sends one mail; resolves once the relay answered 250 to DATA, else throws relayFailure(). */
  async send(message: Mail.Options): Promise<void> {
    try {
      await this.transport.sendMail(message);
    } catch (err) {
      throw relayFailure(err);
    }
  }

  close(): void {
    this.transport.close();
  }
}
