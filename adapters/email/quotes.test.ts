import { describe, expect, it } from "vitest";
import { stripQuoted } from "./quotes.js";

describe("stripQuoted", () => {
  it.each([
    ["plain text stays", "Hello\nthere", "Hello\nthere", false],
    ["a trailing > quote goes", "Yes.\n\n> Lunch?\n> Tomorrow", "Yes.", true],
    [
      "the attribution line goes with it",
      "Yes.\n\nOn Mon, Jan 1, 2024, Ann <a@x.org> wrote:\n> Lunch?",
      "Yes.",
      true,
    ],
    [
      "a two-line attribution",
      "Sure.\nOn Mon, 1 Jan 2024 at 10:00, Ann\n<a@x.org> wrote:\n> hi",
      "Sure.",
      true,
    ],
    ["a signature goes", "Thanks!\n-- \nJane\nACME Corp", "Thanks!", true],
    ["Outlook's original message", "Ok\n-----Original Message-----\nFrom: x", "Ok", true],
    ["French attribution", "Oui.\nLe lun. 1 janv. 2024, Ann a écrit :\n> Déjeuner ?", "Oui.", true],
    ["interleaved quotes are kept", "> a?\nyes\n> b?\nno", "> a?\nyes\n> b?\nno", false],
    ["all quote: kept whole", "> only a quote", "> only a quote", false],
    ["signature first: kept whole", "-- \nJane", "-- \nJane", false],
  ])("%s", (_name, input, text, stripped) => {
    expect(stripQuoted(input)).toEqual({ text, stripped });
  });
});
