import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", "adapters/**/*.test.ts", "src/**/*.test.ts"],
    globalSetup: ["test/global-setup.ts"],
    testTimeout: 30_000,
    hookTimeout: 120_000,
    pool: "forks",
    // The files spend most of their time waiting on servers and gateway processes, not on the CPU: three at a
    // time on two cores (Vitest's default there is one). Each file takes its own component slot (test/slots.ts).
    maxWorkers: 3,
  },
});
