/**
 * The notify adapter: alerts from monitoring to people. Alerts arrive over HTTP (the alert API and an
 * Alertmanager receiver), are stored durably in Redis, and go out from `<source>@<domain>` over XMPP with
 * a receipt request, then escalate per named policy to SMS and email until the person acknowledges.
 */
import {
  defineAdapter,
  type Adapter,
  type AdapterContext,
  type OutboundMessage,
  type SendOutcome,
} from "../../src/adapter.js";
import type { AdapterBaseConfig } from "../../src/config/schema.js";
import { GatewayError } from "../../src/xmpp/errors.js";
import { createChannels, type Channels } from "./channels.js";
import { notifyCodec } from "./codec.js";
import { notifyConfigSchema, type NotifyConfig } from "./config.js";
import { Directory } from "./directory.js";
import { People } from "./people/index.js";

export class NotifyAdapter implements Adapter {
  readonly gatewayType = "xmpp";
  readonly name = "Alerts";
  readonly requiresRegistration = false;
  readonly codec = notifyCodec;
  readonly prompt = {
    desc: "Alerts come from their source's contact here; reply ack to acknowledge.",
    prompt: "Alert source",
    example: "monitoring",
  };
  /** SMS and email sending, shared with the recipients' verification commands. */
  readonly channels: Channels;
  private ctx: AdapterContext | undefined;
  /** Recipients' contacts and admins' groups: their ad-hoc commands (adapters/notify/people). */
  readonly people: People;
  readonly commands;
  private directoryOf: Directory | undefined;

  constructor(
    readonly config: AdapterBaseConfig & NotifyConfig,
    readonly secret: (envName: string) => string,
  ) {
    if (!(config.defaultPolicy in config.policies))
      throw new Error(`adapters.notify.defaultPolicy: no policy named "${config.defaultPolicy}"`);
    this.people = new People(config.people);
    this.commands = [...this.people.commands];
    this.channels = createChannels(config, secret, {
      redis: () => this.context().redis,
      key: () => this.context().key,
    });
  }

  context(): AdapterContext {
    if (!this.ctx) throw new Error("notify adapter not started");
    return this.ctx;
  }

  get directory(): Directory {
    this.directoryOf ??= new Directory(this.context().redis, this.context().key);
    return this.directoryOf;
  }

  // eslint-disable-next-line @typescript-eslint/require-await -- the contract is async
  async start(ctx: AdapterContext): Promise<void> {
    this.ctx = ctx;
    this.people.start(ctx, this.channels, {
      submit: () => Promise.reject(new GatewayError("feature-not-implemented", "Alerts cannot be sent yet.")),
      recent: () => Promise.resolve([]),
    });
  }

  // eslint-disable-next-line @typescript-eslint/require-await -- the contract is async
  async stop(): Promise<void> {
    this.channels.close();
  }

  // eslint-disable-next-line @typescript-eslint/require-await -- the contract is async
  async send(_message: OutboundMessage): Promise<SendOutcome> {
    throw new GatewayError("feature-not-implemented", "Replies to alerts are not handled yet.");
  }
}

export const notifyAdapter = defineAdapter({
  configSchema: notifyConfigSchema,
  create: (config, secret) => new NotifyAdapter(config, secret),
});
