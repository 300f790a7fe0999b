/**
 * The API client's connections: one left idle is closed by the gateway itself, before the server or a proxy
 * drops it under a send. A plain HTTP server on loopback stands in for the API (its keep-alive is long: any
 * close seen here is the client's).
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { IDLE_CONNECTION_MS, TwilioSender } from "./twilio-client.js";

const ACCOUNT = "AC" + "5".repeat(32);

interface Api {
  url: string;
  server: Server;
  /** Connections the client closed (the server saw its end of the stream). */
  closedByClient: number;
  opened: number;
}

async function startApi(): Promise<Api> {
  const state = { closedByClient: 0, opened: 0 };
  const server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      const body = JSON.stringify({ sid: `SM${"0".repeat(32)}`, status: "queued" });
      res.writeHead(201, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
      res.end(body);
    });
  });
  // Longer than any test here: the server never closes an idle connection first.
  server.keepAliveTimeout = 120_000;
  server.on("connection", (socket: Socket) => {
    state.opened++;
    socket.on("end", () => state.closedByClient++);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return Object.assign(state, { url: `http://127.0.0.1:${port}`, server });
}

const request = {
  from: "+12025550100",
  to: "+12025550101",
  body: "hi",
  mediaUrls: [],
  statusCallback: undefined,
};

describe("Twilio API connections", () => {
  let open: Api | undefined;
  afterEach(async () => {
    open?.server.closeAllConnections();
    await new Promise((resolve) => open?.server.close(resolve));
  });

  it("closes a connection left idle by itself, and opens a new one for the next send", async () => {
    const api = await startApi();
    open = api;
    const sender = new TwilioSender({
      accountSid: ACCOUNT,
      authToken: "t",
      apiBaseUrl: api.url,
      timeoutMs: 5000,
    });
    await sender.send(request);
    await sender.send(request);
    expect(api.opened).toBe(1); // kept alive between sends close together
    await expect
      .poll(() => api.closedByClient, { timeout: IDLE_CONNECTION_MS + 20_000, interval: 200 })
      .toBe(1);
    await sender.send(request);
    expect(api.opened).toBe(2);
  });
});
