/**
 * Alert sources as JIDs: an alert comes from `<source>@<alerts domain>`, so a user can mute or block one
 * source in their client. The source (a token name, an Alertmanager receiver) is folded into a valid
 * localpart: lowercase letters, digits, '.', '_' and '-'; anything else becomes '-'.
 */
import type { IdCodec } from "../../src/adapter.js";
import { GatewayError } from "../../src/xmpp/errors.js";

/** Longest source localpart. */
export const MAX_SOURCE_CHARS = 64;
/** The source of an alert whose name folds to nothing. */
export const FALLBACK_SOURCE = "alerts";

/** A source name → the localpart it is sent from. */
export function sourceLocalpart(name: string): string {
  const folded = name
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, "-")
    .replace(/^[-.]+|[-.]+$/g, "")
    .slice(0, MAX_SOURCE_CHARS);
  return folded || FALLBACK_SOURCE;
}

export const notifyCodec: IdCodec = {
  decode(localpart) {
    if (!/^[a-z0-9._-]{1,64}$/i.test(localpart))
      throw new GatewayError("item-not-found", `There is no alert source "${localpart}".`);
    return localpart.toLowerCase();
  },
  encode: sourceLocalpart,
  fromPrompt: sourceLocalpart,
};
