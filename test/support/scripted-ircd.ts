/**
 * A scripted IRC server on loopback for the IRC adapter's unit tests: it hands each line the gateway writes
 * to a script (ircd() registers like a real server), and lets the test write raw bytes or drop the
 * connection. For whole conversations, the e2e tests use ngircd and InspIRCd.
 */
import { once } from "node:events";
import { createServer, type Server, type Socket } from "node:net";

type Script = (line: string, send: (...lines: string[]) => void) => void;

/** A server that hands each line the gateway writes to `script`, which answers with lines to send back. */
/** `script()` makes the script of each connection (a redial gets a fresh one). */
export async function scripted(script: () => Script) {
  const written: string[] = [];
  let socket: Socket | undefined;
  const server: Server = createServer((s) => {
    socket = s;
    const answer = script();
    let rest = "";
    const send = (...lines: string[]) => s.write(lines.map((l) => `${l}\r\n`).join(""));
    s.on("data", (chunk: Buffer) => {
      const parts = (rest + chunk.toString("utf8")).split("\r\n");
      rest = parts.pop() ?? "";
      for (const line of parts) {
        written.push(line);
        answer(line, send);
      }
    });
    s.on("error", () => undefined);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as { port: number }).port;
  return {
    port,
    written,
    raw: (data: Buffer | string) => socket?.write(data),
    /** Drops the current connection, as a server going away would; the port stays open. */
    drop: () => socket?.destroy(),
    close: () => {
      socket?.destroy();
      server.close();
    },
  };
}

/**
 * Registers like a server would: the nick once CAP END came (CAP LS 302 holds registration), with these
 * capabilities offered, SASL PLAIN taken when the password is right, and the nicks in `taken` in use.
 */
export const ircd =
  (server: string, caps = "", opts: { taken?: string[] } = {}) =>
  (): Script => {
    let nick: string | undefined;
    let capEnded = false;
    return (line, send) => {
      const [command, arg] = line.split(" ");
      if (line === "CAP LS 302") send(`:${server} CAP * LS :${caps}`);
      else if (command === "CAP" && arg === "REQ")
        send(`:${server} CAP * ACK :${line.slice(8).replace(/^:/, "")}`);
      else if (line === "CAP END") capEnded = true;
      else if (line === "AUTHENTICATE PLAIN") send("AUTHENTICATE +");
      else if (command === "AUTHENTICATE")
        send(
          Buffer.from(arg ?? "", "base64").toString() === "alice\0alice\0right"
            ? `:${server} 903 * :SASL authentication successful`
            : `:${server} 904 * :SASL authentication failed`,
        );
      else if (command === "NICK" && arg !== undefined && opts.taken?.includes(arg))
        send(`:${server} 433 * ${arg} :Nickname is already in use`);
      else if (command === "NICK") nick = arg;
      if (nick !== undefined && capEnded) {
        send(
          `:${server} 001 ${nick} :Welcome to the network ${nick}!u@host`,
          `:${server} 005 ${nick} PREFIX=(ov)@+ :are supported`,
        );
        nick = undefined;
      }
    };
  };
