/**
 * Config key → adapter factory. The only list of adapters; src/compose.ts hands it to the core.
 */
import type { AdapterFactory } from "../src/adapter.js";
import { echoAdapter } from "./echo/index.js";
import { emailAdapter } from "./email/index.js";
import { ircAdapter } from "./irc/index.js";
import { smsAdapter } from "./sms/index.js";

export const adapterFactories: Readonly<Record<string, AdapterFactory>> = {
  echo: echoAdapter,
  email: emailAdapter,
  irc: ircAdapter,
  sms: smsAdapter,
};
