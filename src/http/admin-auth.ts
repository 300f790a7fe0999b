/**
 * Who may use the admin page and its API: whoever knows the admin token (config http.admin.tokenEnv).
 * The token is compared in constant time (both sides hashed, then crypto.timingSafeEqual). A browser logs in
 * once and gets a session cookie (HttpOnly, SameSite=Strict, Path=/admin) and a CSRF token that every form
 * post must carry; scripts send the token itself as `Authorization: Bearer …`. Failed logins are limited
 * per client address.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

/** How long a session lasts after login. */
export const SESSION_TTL_MS = 8 * 3600_000;
/** Most sessions kept at once; a new login beyond it ends the oldest session. */
export const MAX_SESSIONS = 64;
/** Failed logins (or bearer tokens) allowed per client address in one window… */
export const LOGIN_FAILURES_ALLOWED = 10;
/** …of this length; further attempts get 429 until the window ends. */
export const LOGIN_WINDOW_MS = 15 * 60_000;
/** Most client addresses whose failures are remembered; the oldest is forgotten first. */
export const MAX_TRACKED_ADDRESSES = 10_000;
/** Name of the session cookie. */
export const SESSION_COOKIE = "xgw_admin";

function digest(value: string): Buffer {
  return createHash("sha256").update(value, "utf8").digest();
}

/** Constant-time equality of two strings of any length. */
export function safeEqual(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}

export interface Session {
  csrf: string;
  expires: number;
}

export class AdminAuth {
  private readonly tokenDigest: Buffer;
  /** Session id digest (hex) → session; Map keeps insertion order, so the first entry is the oldest. */
  private readonly sessions = new Map<string, Session>();
  private readonly failures = new Map<string, { count: number; until: number }>();

  constructor(
    token: string,
    private readonly now: () => number = Date.now,
  ) {
    this.tokenDigest = digest(token);
  }

  /** Whether `given` is the admin token (constant time). */
  checkToken(given: string): boolean {
    return timingSafeEqual(digest(given), this.tokenDigest);
  }

  /** True when the address has used up its failed attempts for now. */
  isBlocked(address: string): boolean {
    const entry = this.failures.get(address);
    if (!entry) return false;
    if (entry.until <= this.now()) {
      this.failures.delete(address);
      return false;
    }
    return entry.count >= LOGIN_FAILURES_ALLOWED;
  }

  recordFailure(address: string): void {
    const now = this.now();
    const entry = this.failures.get(address);
    if (entry && entry.until > now) entry.count++;
    else {
      this.failures.delete(address);
      this.failures.set(address, { count: 1, until: now + LOGIN_WINDOW_MS });
    }
    while (this.failures.size > MAX_TRACKED_ADDRESSES) {
      const oldest = this.failures.keys().next().value;
      if (oldest === undefined) break;
      this.failures.delete(oldest);
    }
  }

  /** A new session; returns the cookie value (only its digest is kept). */
  createSession(): { id: string; session: Session } {
    const id = randomBytes(32).toString("base64url");
    const session = { csrf: randomBytes(32).toString("base64url"), expires: this.now() + SESSION_TTL_MS };
    this.sessions.set(digest(id).toString("hex"), session);
    while (this.sessions.size > MAX_SESSIONS) {
      const oldest = this.sessions.keys().next().value;
      if (oldest === undefined) break;
      this.sessions.delete(oldest);
    }
    return { id, session };
  }

  session(id: string | undefined): Session | undefined {
    if (!id) return undefined;
    const key = digest(id).toString("hex");
    const session = this.sessions.get(key);
    if (session && session.expires <= this.now()) {
      this.sessions.delete(key);
      return undefined;
    }
    return session;
  }

  endSession(id: string | undefined): void {
    if (id) this.sessions.delete(digest(id).toString("hex"));
  }
}

/** Reads one cookie from a Cookie header. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
