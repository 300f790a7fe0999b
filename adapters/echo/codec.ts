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
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(id))
    throw new GatewayError("jid-malformed", "An echo contact name cannot contain control characters.");
  return id;
}

/** Echo contacts are any short name; XEP-0106 escapes what a localpart cannot hold (`a b` → `a\20b`). */
export const echoCodec: IdCodec = {
  decode: (localpart) => check(unescapeLocal(localpart)),
  encode: (id) => escapeLocal(check(id)),
  fromPrompt: (prompt) => check(prompt.trim()),
};
