import { escapeLocal, unescapeLocal } from "@xmpp/jid";
import type { IdCodec } from "../../src/adapter.js";
import { GatewayError } from "../../src/xmpp/errors.js";

/** Longest echo "address" (a JID localpart holds at most 1023 bytes; keep it short). */
export const MAX_ECHO_ID_CHARS = 64;

function check(id: string): string {
  if (id === "")
    throw new GatewayError("jid-malformed", "An echo contact needs a name, e.g. bot@echo.example.org.");
  if ([...id].length > MAX_ECHO_ID_CHARS)
    throw new GatewayError(
      "jid-malformed",
      `An echo contact name is at most ${MAX_ECHO_ID_CHARS} characters.`,
    );
  // Controls, line separators and any blank but the plain space (which XEP-0106 escapes): PRECIS
  // (RFC 8264 §9.2) keeps them out of JID localparts.
  if (/[\p{Cc}\p{Cn}\p{Cs}\p{Zl}\p{Zp}]|[^\S ]/u.test(id))
    throw new GatewayError(
      "jid-malformed",
      "An echo contact name cannot contain control characters, line breaks, special spaces or unassigned characters.",
    );
  // XEP-0106 §5: a localpart cannot begin or end with an (escaped) space.
  if (id.trim() !== id)
    throw new GatewayError("jid-malformed", "An echo contact name cannot begin or end with a space.");
  return id;
}

/** Echo contacts are any short name; XEP-0106 escapes what a localpart cannot hold (`a b` → `a\20b`). */
export const echoCodec: IdCodec = {
  decode: (localpart) => check(unescapeLocal(localpart)),
  encode: (id) => escapeLocal(check(id)),
  fromPrompt: (prompt) => check(prompt.trim()),
};
