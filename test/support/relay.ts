/**
 * An SMTP relay for tests: a real smtp-server on loopback that keeps every mail it takes, counts the
 * connections opened to it, and can be told to answer "451 try later" to everything for a while (a relay
 * that is busy or rate-limiting us) or to take only so many mails per connection. A connection that breaks
 * in the middle of a mail (a gateway killed while sending) is recorded and the relay goes on, as a real one
 * does: smtp-server reports it as an 'error' event, which would otherwise end the test process.
 */
import { SMTPServer, type SMTPServerOptions } from "smtp-server";

export interface TestRelay {
  port: number;
  /** Raw mails taken, in order. */
  readonly mails: Buffer[];
  /** While true, every RCPT gets 451. */
  busy: boolean;
  /** Connections opened to it so far. */
  readonly connections: number;
  /** Set: a connection that took this many mails answers the next MAIL FROM with 421 and closes (as Exim does). */
  mailsPerConnection?: number;
  /** Connections that broke in the middle of a mail (ECONNRESET…), in order. */
  readonly errors: Error[];
  stop(): Promise<void>;
}

/**
 * An smtp-server for tests, benches and the sandbox that outlives a sender killed in the middle of a mail:
 * smtp-server reports the reset as an 'error' event, thrown (ending the process) when nobody listens.
 * `onBroken` hears it (default: ignored, as a real relay only logs it).
 */
export function smtpServer(
  options: SMTPServerOptions,
  onBroken: (err: Error) => void = () => undefined,
): SMTPServer {
  const server = new SMTPServer(options);
  server.on("error", onBroken);
  return server;
}

/** Largest mail the test relay keeps (it is a test: small is plenty). */
const MAX_TEST_MAIL_BYTES = 1024 * 1024;

/** `host`: the loopback address it listens on (`::1` for a relay reached over IPv6). */
export async function startRelay(host = "127.0.0.1"): Promise<TestRelay> {
  let connections = 0;
  /** Mails each connection took (smtp-server keeps one session object per connection). */
  const taken = new WeakMap<object, number>();
  const relay: TestRelay = {
    port: 0,
    mails: [],
    busy: false,
    errors: [],
    get connections() {
      return connections;
    },
    stop: () => Promise.resolve(),
  };
  const server = smtpServer(
    {
      authOptional: true,
      disabledCommands: ["AUTH", "STARTTLS"],
      logger: false,
      size: MAX_TEST_MAIL_BYTES,
      onConnect(_session, callback) {
        connections++;
        callback();
      },
      onMailFrom(_address, session, callback) {
        const limit = relay.mailsPerConnection;
        if (limit !== undefined && (taken.get(session) ?? 0) >= limit)
          return callback(
            Object.assign(new Error("4.7.0 Too many messages on this connection"), { responseCode: 421 }),
          );
        callback();
      },
      onRcptTo(_address, _session, callback) {
        if (relay.busy)
          return callback(Object.assign(new Error("4.3.2 Busy, try later"), { responseCode: 451 }));
        callback();
      },
      onData(stream, session, callback) {
        const chunks: Buffer[] = [];
        stream.on("data", (chunk: Buffer) => chunks.push(chunk));
        stream.on("end", () => {
          taken.set(session, (taken.get(session) ?? 0) + 1);
          relay.mails.push(Buffer.concat(chunks));
          callback();
        });
      },
    },
    (err) => relay.errors.push(err),
  );
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  relay.port = (server.server.address() as { port: number }).port;
  relay.stop = () => new Promise((resolve) => server.close(() => resolve()));
  return relay;
}
