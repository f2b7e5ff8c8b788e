import { defineConfig, devices } from '@playwright/test';
import * as os from 'node:os';
import * as path from 'node:path';

// The server under test: the binary cargo-leptos just built, on its own port,
// with a seeded simulator. Playwright starts it and waits until it answers.
const PORT = Number(process.env.PULSE_E2E_PORT ?? 3100);
const BASE_URL = `http://127.0.0.1:${PORT}`;
// A fresh database file per run: the suite runs with storage on, as in production.
const DB = process.env.PULSE_E2E_DB ?? path.join(os.tmpdir(), `pulse-e2e-${process.pid}-${Date.now()}.db`);
// The server binary (`cargo leptos build` writes it and the site it serves).
const SERVER_BIN = process.env.PULSE_E2E_BIN ?? 'target/debug/pulse';
// The static bundle (`trunk build --release` writes ../dist) is served by a
// plain static server on its own port; the Pulse server admits that origin.
const STATIC_PORT = Number(process.env.PULSE_E2E_STATIC_PORT ?? 3102);
// (PULSE_E2E_BIN and PULSE_E2E_SITE let a run use a copied build, e.g. the release one.)

export default defineConfig({
  testDir: './tests',
  timeout: 60_000,
  expect: { timeout: 10_000 },
  fullyParallel: false,
  workers: 1,
  forbidOnly: !!process.env.CI,
  retries: 0,
  reporter: [['list']],
  outputDir: 'test-results',
  use: {
    baseURL: BASE_URL,
    trace: 'retain-on-failure',
  },
  projects: [
    {
      name: 'chromium',
      use: {
        ...devices['Desktop Chrome'],
        launchOptions: {
          executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
          args: [
            '--no-sandbox',
            '--disable-gpu',
            '--disable-quic',
            '--disable-background-networking',
            '--disable-component-update',
            '--disable-sync',
            '--no-first-run',
          ],
        },
      },
    },
  ],
  webServer: [
    {
      command: SERVER_BIN,
      cwd: '..',
      url: `${BASE_URL}/readyz`,
      timeout: 60_000,
      reuseExistingServer: false,
      stdout: 'pipe',
      stderr: 'pipe',
      env: {
        PULSE_ADDR: `127.0.0.1:${PORT}`,
        LEPTOS_SITE_ROOT: process.env.PULSE_E2E_SITE ?? 'target/site',
        PULSE_SIM_SEED: '7',
        PULSE_SIM_TICK_RATE: '30',
        RUST_LOG: 'warn',
        // Enables POST /api/debug/drop-connections for the reconnect test.
        PULSE_TEST_HOOKS: '1',
        PULSE_DB: DB,
        // The static dashboard's origin (tests/static.spec.ts): CORS, CSRF and /ws.
        PULSE_ALLOWED_ORIGINS: `http://127.0.0.1:${STATIC_PORT}`,
      },
    },
    {
      // Readiness by port: without ../dist only the static tests fail.
      command: `node static-server.mjs ${process.env.PULSE_E2E_DIST ?? '../dist'} ${STATIC_PORT}`,
      port: STATIC_PORT,
      timeout: 10_000,
      reuseExistingServer: false,
      stdout: 'pipe',
      stderr: 'pipe',
    },
  ],
});
