import { defineConfig } from "vitest/config";

/** Unit tests only: no servers needed (`npx vitest run --config test/unit/vitest.unit.config.ts`). */
export default defineConfig({ test: { include: ["test/unit/**/*.test.ts"] } });
