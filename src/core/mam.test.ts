import { xml } from "@xmpp/component";
import { describe, expect, it } from "vitest";
import { GatewayError } from "../xmpp/errors.js";
import { MAM_DEFAULT_PAGE, MAM_MAX_PAGE, parseMamQuery } from "./mam.js";

const MAM = "urn:xmpp:mam:2";
const ROOM = "#chat%irc.example.net@irc.example.org";

function query(fields: Record<string, string>, set: ReturnType<typeof xml>[] = []) {
  return xml(
    "query",
    { xmlns: MAM },
    xml(
      "x",
      { xmlns: "jabber:x:data", type: "submit" },
      ...Object.entries(fields).map(([k, v]) => xml("field", { var: k }, xml("value", {}, v))),
    ),
    set.length ? xml("set", { xmlns: "http://jabber.org/protocol/rsm" }, ...set) : null,
  );
}

const refused = (q: ReturnType<typeof xml>) => {
  try {
    parseMamQuery(q, "u@x", ROOM);
  } catch (err) {
    return err instanceof GatewayError ? err.condition : "other";
  }
  return "accepted";
};

describe("XEP-0313 query parsing", () => {
  it("reads the form and the RSM set", () => {
    const q = parseMamQuery(
      query(
        {
          FORM_TYPE: MAM,
          start: "2024-01-31T12:00:00Z",
          end: "2024-02-01T00:00:00.5+01:00",
          with: `${ROOM}/bob`,
        },
        [xml("max", {}, "10"), xml("after", {}, "1-0")],
      ),
      "u@x",
      ROOM,
    );
    expect(q).toEqual({
      user: "u@x",
      room: ROOM,
      start: new Date("2024-01-31T12:00:00Z"),
      end: new Date("2024-01-31T23:00:00.500Z"),
      withNick: "bob",
      max: 10,
      after: "1-0",
    });
  });

  it("takes an empty <before/> as the last page, a default page size, and caps <max/>", () => {
    expect(parseMamQuery(query({}, [xml("before")]), "u@x", ROOM)).toMatchObject({
      before: "",
      max: MAM_DEFAULT_PAGE,
    });
    expect(parseMamQuery(query({}, [xml("max", {}, "100000")]), "u@x", ROOM).max).toBe(MAM_MAX_PAGE);
    expect(parseMamQuery(xml("query", { xmlns: MAM }), "u@x", ROOM).max).toBe(MAM_DEFAULT_PAGE);
  });

  it.each([
    ["a date that is not XEP-0082", query({ start: "yesterday" })],
    ["a date without its zone", query({ start: "2024-01-31T12:00:00" })],
    ["with: another room", query({ with: "#other%irc.example.net@irc.example.org/bob" })],
    ["an unknown field", query({ "{urn:example}colour": "red" })],
    ["another FORM_TYPE", query({ FORM_TYPE: "urn:xmpp:mam:1" })],
    ["max that is not a number", query({}, [xml("max", {}, "ten")])],
    ["after and before", query({}, [xml("after", {}, "1-0"), xml("before", {}, "2-0")])],
    ["an empty after", query({}, [xml("after")])],
  ])("refuses %s with bad-request", (_name, q) => {
    expect(refused(q)).toBe("bad-request");
  });
});
