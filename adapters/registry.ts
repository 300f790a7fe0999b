/**
 * Config key → the adapter's config schema and a loader of its factory. The only list of adapters;
 * src/compose.ts hands it to the core. The schemas are light (zod only) and always loaded, to check a
 * config; a factory, with the network libraries behind it (twilio, nodemailer, mailparser, mailauth,
 * smtp-server), is imported only when its adapter is enabled.
 */
import type { AdapterFactory } from "../src/adapter.js";
import type { ListenersOf } from "../src/config/listeners.js";
import type { AdapterOptionsSchema } from "../src/config/schema.js";
import { echoConfigSchema } from "./echo/index.js";
import { emailConfigSchema, emailListeners } from "./email/config.js";
import { ircConfigSchema } from "./irc/config.js";
import { notifyConfigSchema } from "./notify/config.js";
import { smsConfigSchema } from "./sms/config.js";

export interface AdapterEntry {
  readonly configSchema: AdapterOptionsSchema;
  /** The TCP listeners a parsed config of this adapter opens; the config check refuses two on one address. */
  readonly listeners?: ListenersOf;
  load(): Promise<AdapterFactory>;
}

export const adapterRegistry: Readonly<Record<string, AdapterEntry>> = {
  echo: { configSchema: echoConfigSchema, load: async () => (await import("./echo/index.js")).echoAdapter },
  email: {
    configSchema: emailConfigSchema,
    listeners: emailListeners,
    load: async () => (await import("./email/index.js")).emailAdapter,
  },
  irc: { configSchema: ircConfigSchema, load: async () => (await import("./irc/index.js")).ircAdapter },
  notify: {
    configSchema: notifyConfigSchema,
    load: async () => (await import("./notify/index.js")).notifyAdapter,
  },
  sms: { configSchema: smsConfigSchema, load: async () => (await import("./sms/index.js")).smsAdapter },
};
