import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { REFERENCE_FILE, renderConfigReference } from "../../scripts/config-reference.js";
import { adapterSchemas } from "../../src/compose.js";
import { buildConfigSchema } from "../../src/config/schema.js";

describe("docs/configuration.md", () => {
  it("is what scripts/config-reference.ts renders from the current schema", async () => {
    const committed = await readFile(REFERENCE_FILE, "utf8");
    // On failure: run `npx tsx scripts/config-reference.ts` and commit docs/configuration.md.
    expect(await renderConfigReference()).toBe(committed);
  });

  it("has a section for every top-level key and every adapter's fields", async () => {
    const reference = await renderConfigReference();
    const schema = buildConfigSchema(adapterSchemas);
    for (const key of Object.keys(schema.shape)) expect(reference).toContain(`### \`${key}\``);
    for (const adapter of Object.keys(adapterSchemas)) {
      for (const field of ["domain", "secretEnv", "access.allow"])
        expect(reference).toContain(`#### \`adapters.${adapter}.${field}\``);
    }
  });

  it("lists each adapter's secret variable from the example config", async () => {
    const reference = await renderConfigReference();
    const example = JSON.parse(
      await readFile(new URL("../../gateway.config.json", import.meta.url), "utf8"),
    ) as {
      adapters: Record<string, { secretEnv: string }>;
    };
    for (const { secretEnv } of Object.values(example.adapters))
      expect(reference).toMatch(new RegExp(`^\\| \`${secretEnv}\` +\\|`, "m"));
  });
});
