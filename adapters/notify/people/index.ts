/**
 * Alert recipients: the users' contacts (phone, email, quiet hours, channels) with verification codes, and
 * the admins' groups. The notify adapter lists `people.commands` in its own and calls `people.start(ctx,
 * channels)` from its start(); this module is the only writer of the contact and group keys, which the
 * notify engine reads (contacts.ts, groups.ts describe them).
 */
import type { Counter } from "prom-client";
import type { AdapterContext, AdhocCommand } from "../../../src/adapter.js";
import { groupCommands } from "./admin-commands.js";
import { ContactStore } from "./contacts.js";
import { GroupStore } from "./groups.js";
import { DEFAULT_PEOPLE_CONFIG, type PeopleConfig } from "./limits.js";
import { noticeCommands, type AlertSummary, type Notice } from "./notices.js";
import { userCommands } from "./user-commands.js";
import { Verifier, type AddressKind } from "./verification.js";

export { ContactStore } from "./contacts.js";
export { GroupStore } from "./groups.js";
export { peopleConfigSchema, type PeopleConfig } from "./limits.js";

export type { AlertSummary, Notice } from "./notices.js";

/** The notify engine, as the notice composer and the "Recent alerts" report use it. */
export interface NoticeEngine {
  /** Stores the notice as an alert (durably) and returns its id. Throws GatewayError with the reason. */
  submit(notice: Notice): Promise<string>;
  /** The latest alerts, newest first, without their text. */
  recent(limit: number): Promise<AlertSummary[]>;
}

/** How codes leave the gateway: the notify adapter's SMS and email channels. */
export interface CodeChannels {
  /** Whether the channel is set up (adapters.notify.twilio, .email): without it, nothing can be verified. */
  readonly smsEnabled: boolean;
  readonly emailEnabled: boolean;
  sendSms(to: string, body: string): Promise<unknown>;
  sendEmail(to: string, subject: string, text: string): Promise<unknown>;
}

interface Started {
  ctx: AdapterContext;
  contacts: ContactStore;
  groups: GroupStore;
  verifier: Verifier;
  engine: NoticeEngine;
  config: PeopleConfig;
  notices: Counter<string>;
  channels: CodeChannels;
}

export class People {
  readonly commands: AdhocCommand[];
  private state: Started | undefined;

  constructor() {
    this.commands = [
      ...userCommands(() => ({
        ...this.started(),
        domain: this.started().ctx.domain,
        canVerify: (kind) =>
          kind === "phone" ? this.started().channels.smsEnabled : this.started().channels.emailEnabled,
      })),
      ...groupCommands(() => this.started().groups),
      ...noticeCommands(() => {
        const { ctx, groups, engine, config, notices } = this.started();
        return {
          redis: ctx.redis,
          key: ctx.key,
          groups,
          config,
          everyone: () => ctx.registeredAnywhere(),
          submit: (notice) => engine.submit(notice),
          recent: (limit) => engine.recent(limit),
          counted: (outcome) => notices.inc({ outcome }),
        };
      }),
    ];
  }

  private started(): Started {
    if (!this.state) throw new Error("alert recipients not started");
    return this.state;
  }

  get contacts(): ContactStore {
    return this.started().contacts;
  }

  get groups(): GroupStore {
    return this.started().groups;
  }

  start(
    ctx: AdapterContext,
    channels: CodeChannels,
    engine: NoticeEngine,
    config: PeopleConfig = DEFAULT_PEOPLE_CONFIG,
  ): void {
    const codes: Counter<string> = ctx.metrics.counter(
      "verification_codes_total",
      "Verification codes asked for, by channel (sms, email) and outcome (sent; refused_user, " +
        "refused_address, refused_gateway: a limit was reached and nothing was sent; failed: the channel refused it)",
      ["channel", "outcome"],
    );
    const checks: Counter<string> = ctx.metrics.counter(
      "verification_checks_total",
      "Codes entered by users, by outcome (verified, wrong, void: too many wrong codes, none-pending: expired or used)",
      ["outcome"],
    );
    const notices: Counter<string> = ctx.metrics.counter(
      "notices_total",
      "Admins' notices, by outcome (sent; refused_limit: people.noticesPerHour was reached, nothing was sent)",
      ["outcome"],
    );
    const channel = (kind: AddressKind) => (kind === "phone" ? "sms" : "email");
    const contacts = new ContactStore(ctx.redis, ctx.key);
    const minutes = Math.max(1, Math.round(config.codeTtlSeconds / 60));
    const verifier = new Verifier(
      ctx.redis,
      ctx.key,
      contacts,
      config,
      async (kind, address, code) => {
        const text = `Your ${ctx.domain} verification code is ${code}. It expires in ${minutes} minute(s).`;
        if (kind === "phone") await channels.sendSms(address, text);
        else
          await channels.sendEmail(
            address,
            `Your ${ctx.domain} verification code`,
            `${text}\n\nIf you did not ask for it, ignore this message: nothing changes without the code.\n`,
          );
      },
      {
        codeSent: (kind) => codes.inc({ channel: channel(kind), outcome: "sent" }),
        codeRefused: (kind, limit) => codes.inc({ channel: channel(kind), outcome: `refused_${limit}` }),
        codeFailed: (kind) => codes.inc({ channel: channel(kind), outcome: "failed" }),
        checked: (outcome) => checks.inc({ outcome }),
      },
    );
    this.state = {
      channels,
      ctx,
      contacts,
      groups: new GroupStore(ctx.redis, ctx.key),
      verifier,
      engine,
      config,
      notices,
    };
    ctx.log.debug("alert recipients ready");
  }
}
