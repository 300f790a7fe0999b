import { defineConfig } from "vitest/config";

/** Unit tests (test/unit and the adapters' pure parts): no servers needed (`npx vitest run --config test/unit/vitest.unit.config.ts`). */
export default defineConfig({ test: { include: ["test/unit/**/*.test.ts", "adapters/**/*.test.ts"] } });
