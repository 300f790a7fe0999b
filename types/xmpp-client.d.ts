// Local types for the parts of @xmpp/client 0.14 (ESM, untyped) that the tests use as the XMPP user.
declare module "@xmpp/client" {
  import type { EventEmitter } from "node:events";
  import type { Element, XmlFactory, JID } from "@xmpp/component";

  export type { Element };
  export const xml: XmlFactory;

  export interface Client extends EventEmitter {
    jid: JID | null;
    status: string;
    start(): Promise<JID>;
    stop(): Promise<void>;
    send(element: Element): Promise<void>;
  }

  export function client(options: {
    service: string;
    domain: string;
    username?: string;
    password?: string;
    resource?: string;
  }): Client;
}
