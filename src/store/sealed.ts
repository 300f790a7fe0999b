/**
 * Secrets at rest (e.g. IRC SASL and NickServ passwords in a user's settings): AES-256-GCM with a key from
 * the environment. The variable holds one or more keys, comma-separated, each 32 bytes in base64 or hex;
 * the first seals, every listed key opens. A sealed value names its format version and its key (an id
 * derived from the key), so keys can be rotated: put the new key first, keep the old ones after it until
 * every value was sealed again (values are resealed with the first key when read), then drop them.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";

/** Stored form: `sealed:<version>:<key id>:<iv>:<tag>:<ciphertext>`, base64url parts. */
export const SEALED_PREFIX = "sealed:";
/** Version of the stored form; a later one must still open this one. */
export const SEALED_VERSION = 1;
/** AES-256: 32-byte keys. */
export const SEAL_KEY_BYTES = 32;
/** GCM's recommended 96-bit nonce, random per value. */
const IV_BYTES = 12;
/** Hex characters of a key's SHA-256 used as its id (names the key, reveals nothing of it). */
const KEY_ID_CHARS = 12;

/** A value that could not be opened (unknown key, tampered, or not a sealed value). */
export class SealError extends Error {}

interface SealKey {
  id: string;
  key: Buffer;
}

function parseKey(text: string, envName: string, position: number): SealKey {
  const t = text.trim();
  const key = /^[0-9a-fA-F]{64}$/.test(t) ? Buffer.from(t, "hex") : Buffer.from(t, "base64");
  if (key.length !== SEAL_KEY_BYTES || (!/^[0-9a-fA-F]{64}$/.test(t) && key.toString("base64") !== t))
    throw new SealError(
      `${envName}: key ${position} is not ${SEAL_KEY_BYTES} bytes in base64 or hex (make one with: openssl rand -base64 32)`,
    );
  return { id: createHash("sha256").update(key).digest("hex").slice(0, KEY_ID_CHARS), key };
}

export class SecretBox {
  private readonly keys: SealKey[];

  /** `keys`: the variable's value (comma-separated keys, the first seals); throws SealError naming `envName`. */
  constructor(keys: string, envName: string) {
    this.keys = keys
      .split(",")
      .filter((k) => k.trim() !== "")
      .map((k, i) => parseKey(k, envName, i + 1));
    if (this.keys.length === 0) throw new SealError(`${envName}: no key`);
  }

  static isSealed(value: string): boolean {
    return value.startsWith(SEALED_PREFIX);
  }

  /** Seals `plain`, bound to `context` (e.g. the user and field): a value copied elsewhere does not open. */
  seal(plain: string, context: string): string {
    const { id, key } = this.keys[0]!;
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv("aes-256-gcm", key, iv);
    cipher.setAAD(Buffer.from(context, "utf8"));
    const data = Buffer.concat([cipher.update(plain, "utf8"), cipher.final()]);
    const parts = [iv, cipher.getAuthTag(), data].map((b) => b.toString("base64url"));
    return `${SEALED_PREFIX}${SEALED_VERSION}:${id}:${parts.join(":")}`;
  }

  /** Opens a sealed value; throws SealError when its key is not listed or it was altered. */
  open(stored: string, context: string): string {
    const [prefix, version, id, iv, tag, data] = stored.split(":");
    if (`${prefix}:` !== SEALED_PREFIX || Number(version) !== SEALED_VERSION || data === undefined)
      throw new SealError("not a sealed value of a known version");
    const found = this.keys.find((k) => k.id === id);
    if (!found) throw new SealError(`sealed with key ${id}, which is not among the configured keys`);
    try {
      const decipher = createDecipheriv("aes-256-gcm", found.key, Buffer.from(iv!, "base64url"));
      decipher.setAAD(Buffer.from(context, "utf8"));
      decipher.setAuthTag(Buffer.from(tag!, "base64url"));
      return Buffer.concat([decipher.update(Buffer.from(data, "base64url")), decipher.final()]).toString(
        "utf8",
      );
    } catch (err) {
      throw new SealError("the sealed value does not open (altered, or sealed for something else)", {
        cause: err,
      });
    }
  }

  /** Whether a stored value should be sealed again: plain text, or sealed with a key that is not the first. */
  stale(stored: string): boolean {
    return !SecretBox.isSealed(stored) || stored.split(":")[2] !== this.keys[0]!.id;
  }
}
