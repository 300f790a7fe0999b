/**
 * The X-Twilio-Signature Twilio puts on every webhook it sends (inbound messages, status callbacks).
 *
 * https://www.twilio.com/docs/usage/webhooks/webhooks-security: take the full URL exactly as configured
 * (scheme, host, port, path, query string), append every POST parameter sorted by name as name+value with
 * no delimiters, HMAC-SHA1 the result keyed with the account's auth token, and base64 the digest.
 */
import { createHmac } from "node:crypto";

/** Form parameters as Twilio posts them; a name posted several times carries every value. */
export type FormParams = Record<string, string | readonly string[]>;

/**
 * Signature for a form-encoded webhook to `url`.
 * A repeated parameter contributes name+value once per distinct value, values sorted, the way twilio-node's
 * `getExpectedTwilioSignature` (and so `validateRequest`) reads it. Sorting is by UTF-16 code unit, as
 * JavaScript's default sort (what twilio-node uses), not by locale.
 */
export function twilioSignature(authToken: string, url: string, params: FormParams): string {
  let data = url;
  for (const name of Object.keys(params).sort()) {
    const value = params[name];
    const values = typeof value === "string" ? [value] : [...new Set(value)].sort();
    for (const v of values) data += name + v;
  }
  return createHmac("sha1", authToken).update(Buffer.from(data, "utf8")).digest("base64");
}

/** Form parameters from a URL-encoded body, repeated names gathered into arrays (order kept). */
export function formParams(body: string | URLSearchParams): Record<string, string | string[]> {
  const search = typeof body === "string" ? new URLSearchParams(body) : body;
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of search) {
    const seen = out[name];
    if (seen === undefined) out[name] = value;
    else if (typeof seen === "string") out[name] = [seen, value];
    else seen.push(value);
  }
  return out;
}

/** URL-encoded body for params, repeated names sent once per value (twilio-node's `arrayFormat: "repeat"`). */
export function formBody(params: FormParams): string {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    for (const v of typeof value === "string" ? [value] : value) search.append(name, v);
  }
  return search.toString();
}
