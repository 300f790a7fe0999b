/**
 * The echo adapter: a stand-in network that answers every message with the same text. The core's own tests
 * use it, and the quickstart shows it until the real adapters are configured. Disabled by default.
 */
import { z } from "zod";
import { defineAdapter, type Adapter, type AdapterContext, type OutboundMessage } from "../../src/adapter.js";
import { GatewayError } from "../../src/xmpp/errors.js";
import { single } from "../../src/xmpp/forms.js";
import { echoCodec } from "./codec.js";

/** Longest nickname accepted in the registration form. */
export const MAX_NICK_CHARS = 32;

export const echoConfigSchema = z.object({
  requireRegistration: z
    .boolean()
    .default(true)
    .describe("users must register before messaging echo contacts"),
});

class EchoAdapter implements Adapter {
  readonly gatewayType = "xmpp";
  readonly name = "Echo";
  readonly codec = echoCodec;
  readonly prompt = {
    desc: "Every echo contact answers with what you write.",
    prompt: "Contact name",
    example: "bot",
  };
  private ctx: AdapterContext | undefined;

  constructor(readonly requiresRegistration: boolean) {}

  readonly registration = {
    form: (_user: string, existing: Record<string, string> | null) => ({
      title: "Echo registration",
      instructions: "Choose the nickname echo contacts will call you.",
      fields: [
        {
          var: "nick",
          type: "text-single" as const,
          label: "Nickname",
          required: true,
          ...(existing?.nick ? { value: existing.nick } : {}),
        },
      ],
    }),
    validate: (_user: string, values: Record<string, string | string[]>) => {
      const nick = single(values, "nick");
      if ([...nick].length > MAX_NICK_CHARS)
        throw new GatewayError("not-acceptable", `The nickname is at most ${MAX_NICK_CHARS} characters.`);
      // eslint-disable-next-line no-control-regex
      if (/[\u0000-\u001f\u007f]/.test(nick))
        throw new GatewayError("not-acceptable", "The nickname cannot contain control characters.");
      return Promise.resolve({ nick });
    },
  };

  readonly commands = [
    {
      node: "echo-stats",
      name: "Echo statistics",
      admin: true,
      run: async () => {
        const users = await this.context().registrations.list();
        return { note: `${users.length} user(s) registered with the echo service.` };
      },
    },
  ];

  private context(): AdapterContext {
    if (!this.ctx) throw new Error("echo adapter not started");
    return this.ctx;
  }

  start(ctx: AdapterContext): Promise<void> {
    this.ctx = ctx;
    return Promise.resolve();
  }

  async send(message: OutboundMessage): Promise<{ status: "delivered" }> {
    const nick = message.registration?.nick;
    // The echo goes through the durable inbox like any network's inbound traffic would. No handOff(): the
    // inbox drops a repeat of the same dedupe id, so a send cut short may safely be sent again.
    await this.context().deliver(
      {
        kind: "message",
        to: message.from,
        from: message.toJid,
        id: `echo-${message.id}`,
        type: message.type === "groupchat" ? "chat" : message.type,
        body: nick ? `${nick}: ${message.body}` : message.body,
        ...(message.subject === undefined ? {} : { subject: message.subject }),
        ...(message.thread === undefined ? {} : { thread: message.thread }),
        attachments: message.attachments,
      },
      { dedupeId: `${message.from}/${message.id}` },
    );
    return { status: "delivered" };
  }
}

export const echoAdapter = defineAdapter({
  configSchema: echoConfigSchema,
  create: (config) => new EchoAdapter(config.requireRegistration),
});
