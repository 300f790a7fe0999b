/** Sending through the configured SMTP relay (nodemailer, pooled), and what its refusals mean to a user. */
import nodemailer, { type Transporter } from "nodemailer";
import type Mail from "nodemailer/lib/mailer/index.js";
import { MaybeSent, SendRefused } from "../../src/adapter.js";
import type { GatewayError } from "../../src/xmpp/errors.js";
import { relayAddress, type EmailConfig } from "./config.js";

/** Longest piece of the relay's reply quoted to the user. */
export const MAX_REPLY_QUOTE_CHARS = 300;

/**
 * Waits before each new attempt after a failure that proves the relay did not take the mail; their count
 * is the number of retries. Short: the user is waiting for the outcome.
 */
export const RETRY_DELAYS_MS: readonly number[] = [500, 2000];
/** The idle-socket timeout, as a multiple of relay.timeoutSeconds (see the transport options). */
export const SOCKET_TIMEOUT_FACTOR = 2;

/** What nodemailer puts on its errors (SMTP reply code and text, its own codes). */
interface SmtpFailure {
  responseCode?: number;
  response?: string;
  code?: string;
  message?: string;
  /** Which timeout fired (nodemailer 10): CONNECT_TIMEOUT, GREETING_TIMEOUT, UPGRADE_TIMEOUT, SOCKET_TIMEOUT. */
  timeoutType?: string;
}

const failureOf = (err: unknown): SmtpFailure => (typeof err === "object" && err !== null ? err : {});

/**
 * Whether the relay certainly did not take the mail, so sending again cannot deliver it twice: a 4yz
 * reply (RFC 5321 §4.2.1: "the command was not accepted"), or no session at all (refused or timed-out
 * connection, no greeting). A connection lost or silent during the transaction may have delivered it.
 */
export function safeToRetry(err: unknown): boolean {
  const e = failureOf(err);
  if (e.responseCode !== undefined) return e.responseCode >= 400 && e.responseCode < 500;
  if (e.timeoutType === "CONNECT_TIMEOUT" || e.timeoutType === "GREETING_TIMEOUT") return true;
  return /ECONNREFUSED/.test(e.message ?? "");
}

function quote(text: string): string {
  // eslint-disable-next-line no-control-regex
  const flat = text.replace(/[\u0000-\u001f\u007f]+/g, " ").trim();
  return flat.length > MAX_REPLY_QUOTE_CHARS ? `${flat.slice(0, MAX_REPLY_QUOTE_CHARS)}…` : flat;
}

/**
 * A relay failure as the user should see it (RFC 5321 §4.2.1): 5yz is permanent, with the relay's reply in
 * the text; a refused recipient is item-not-found (XEP-0100 §4.8); 4yz, timeouts and connection failures
 * are remote-server-timeout: try again later. SendRefused when the relay certainly did not take the mail,
 * MaybeSent when it may have (a connection lost or silent during the transaction).
 */
export function relayFailure(err: unknown): GatewayError {
  const e = failureOf(err);
  const reply = quote(e.response ?? e.message ?? String(err));
  const code = e.responseCode;
  if (code !== undefined && code >= 500 && code < 600) {
    if (e.code === "EENVELOPE")
      return new SendRefused("item-not-found", `The mail server refused the address: ${reply}`, {
        cause: err,
      });
    return new SendRefused("not-acceptable", `The mail server refused the message: ${reply}`, {
      type: "cancel",
      cause: err,
    });
  }
  if (safeToRetry(err))
    return new SendRefused(
      "remote-server-timeout",
      `The mail relay could not take the message now (${reply}); it was not sent, try again later.`,
      { cause: err },
    );
  return new MaybeSent(
    "remote-server-timeout",
    `The mail relay stopped answering (${reply}); the mail may have been sent, so it is not sent again.`,
    { cause: err },
  );
}

export class Relay {
  private readonly transport: Transporter;
  private readonly onRetry: () => void;

  constructor(
    config: EmailConfig["relay"],
    auth: { user: string; pass: string } | undefined,
    options: {
      /** DKIM signature (RFC 6376) nodemailer adds to every mail. */
      dkim?: { domainName: string; keySelector: string; privateKey: string };
      /** Called before each retry. */
      onRetry?: () => void;
    } = {},
  ) {
    this.onRetry = options.onRetry ?? (() => undefined);
    const timeout = config.timeoutSeconds * 1000;
    this.transport = nodemailer.createTransport({
      pool: true,
      host: relayAddress(config.host),
      port: config.port,
      secure: config.secure,
      // RFC 3207: with starttls the session must be encrypted before anything is sent; without it (a relay
      // on loopback), STARTTLS is not even tried.
      requireTLS: !config.secure && config.starttls,
      ignoreTLS: !config.secure && !config.starttls,
      maxConnections: config.maxConnections,
      maxMessages: config.messagesPerConnection,
      connectionTimeout: timeout,
      greetingTimeout: timeout,
      // Longer than the greeting timeout: a relay that never greets must be reported as such (safe to
      // retry), not as an idle socket, which may be one that took the mail and went silent (never retried).
      socketTimeout: timeout * SOCKET_TIMEOUT_FACTOR,
      ...(auth ? { auth } : {}),
      ...(options.dkim ? { dkim: options.dkim } : {}),
    });
  }

  /**
   * Sends one mail; resolves once the relay answered 250 to DATA, else throws relayFailure(). Retries
   * (same Message-ID) only after failures where the relay certainly did not take it.
   */
  async send(message: Mail.Options): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.transport.sendMail(message);
        return;
      } catch (err) {
        const delay = RETRY_DELAYS_MS[attempt];
        if (delay === undefined || !safeToRetry(err)) throw relayFailure(err);
        this.onRetry();
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  close(): void {
    this.transport.close();
  }
}
