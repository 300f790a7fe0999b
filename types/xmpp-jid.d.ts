// Local types for the parts of @xmpp/jid 0.14 (ESM, untyped) the gateway uses: XEP-0106 escaping.
declare module "@xmpp/jid" {
  /** XEP-0106: escapes the characters a localpart cannot hold (`@` → `\40`, space → `\20`…). */
  export function escapeLocal(local: string): string;
  /** XEP-0106: reverses escapeLocal. */
  export function unescapeLocal(local: string): string;
  /** True when the string has characters that escapeLocal would escape. */
  export function detectEscape(local: string): boolean;
}
