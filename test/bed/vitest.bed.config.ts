import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// Runs the test bed's own test alone, without the project's global setup:
//   npx vitest run test/bed/bed.test.ts --config test/bed/vitest.bed.config.ts
export default defineConfig({
  test: {
    root: fileURLToPath(new URL("../..", import.meta.url)),
    include: ["test/bed/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 180_000,
    pool: "forks",
  },
});
