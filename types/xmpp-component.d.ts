// Local types for the parts of @xmpp/component 0.13 (CommonJS, untyped) that the gateway uses.
declare module "@xmpp/component" {
  import type { EventEmitter } from "node:events";
  import type { Socket } from "node:net";

  export interface Element {
    name: string;
    attrs: Record<string, string | undefined>;
    children: (Element | string)[];
    parent: Element | null;
    is(name: string, xmlns?: string): boolean;
    getChild(name: string, xmlns?: string): Element | undefined;
    getChildren(name: string, xmlns?: string): Element[];
    getChildElements(): Element[];
    getChildText(name: string, xmlns?: string): string | null;
    getText(): string;
    text(): string;
    append(...children: (Element | string)[]): Element;
    c(name: string, attrs?: Record<string, string>): Element;
    toString(): string;
  }

  export type XmlChild = Element | string | null | undefined | false | XmlChild[];
  export interface XmlFactory {
    (name: string, attrs?: Record<string, string | undefined> | null, ...children: XmlChild[]): Element;
    Element: new (name: string, attrs?: Record<string, string>) => Element;
  }
  export const xml: XmlFactory;

  export interface JID {
    local: string;
    domain: string;
    resource: string;
    bare(): JID;
    toString(): string;
    getLocal(unescape?: boolean): string;
    equals(other: JID): boolean;
  }

  export interface IncomingContext {
    stanza: Element;
    element?: Element;
    name: string;
    id: string;
    type: string;
    from: JID | null;
    to: JID | null;
  }

  export type Next = () => Promise<unknown>;
  export type Middleware = (ctx: IncomingContext, next: Next) => unknown;
  export type IqHandler = (ctx: IncomingContext & { element: Element }) => unknown;

  export interface Component extends EventEmitter {
    status: string;
    socket: Socket | null;
    jid: JID | null;
    timeout: number;
    options: { service: string; domain: string };
    start(): Promise<JID>;
    stop(): Promise<void>;
    connect(service: string): Promise<void>;
    open(options: { domain: string; lang?: string }): Promise<Element>;
    disconnect(timeout?: number): Promise<void>;
    send(element: Element): Promise<void>;
    reconnect: { delay: number; stop(): void; start(): void };
    middleware: { use(fn: Middleware): void; filter(fn: Middleware): void };
    iqCaller: {
      request(stanza: Element, timeout?: number): Promise<Element>;
      get(element: Element, to?: string, timeout?: number): Promise<Element | undefined>;
      set(element: Element, to?: string, timeout?: number): Promise<Element | undefined>;
    };
    iqCallee: {
      get(ns: string, name: string, handler: IqHandler): void;
      set(ns: string, name: string, handler: IqHandler): void;
    };
  }

  export function component(options: {
    service: string;
    domain: string;
    password: string | ((auth: (password: string) => Promise<void>) => Promise<void>);
  }): Component;
}
