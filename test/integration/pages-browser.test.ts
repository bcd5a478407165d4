// The operator pages in a real browser: Debian's Chromium, headless, driven by playwright-core against a
// real `atlas-email serve`. Screenshots land in test-artifacts/ (kept by CI as artifacts).
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { root } from '../helpers/env.ts';
import { reapOnExit } from '../helpers/reap.ts';

const CHROMIUM = '/usr/bin/chromium';
const unavailable = existsSync(CHROMIUM) ? null : `${CHROMIUM} is missing (run .ci/system-deps as root: Debian package chromium)`;
if (unavailable && process.env.CI === 'true') throw new Error(`browser tests cannot run in CI: ${unavailable}`);

const PORT = 13560;
const base = `http://127.0.0.1:${PORT}`;
const artifacts = path.join(root, 'test-artifacts');
const dir = mkdtempSync(path.join(os.tmpdir(), 'atlas-pages-'));
let server: ChildProcess;
let browser: Browser;
let log = '';

const fixture = (name: string) => readFileSync(path.join(root, 'test/fixtures', name));
const post = (raw: Buffer) => fetch(`${base}/v1/check`, { method: 'POST', body: raw }).then((r) => r.json());

describe.skipIf(unavailable !== null)(unavailable ? `pages in Chromium (skipped: ${unavailable})` : 'pages in Chromium', () => {
  beforeAll(async () => {
    mkdirSync(artifacts, { recursive: true });
    server = spawn(process.execPath, [path.join(root, 'dist/cli/index.js'), 'serve', '--http', `127.0.0.1:${PORT}`, '--db', path.join(dir, 'atlas.db')], {
      env: { ...process.env, ATLAS_WORKER_COUNT: '1' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    reapOnExit(server);
    server.stderr?.on('data', (d) => (log += d));
    for (let i = 0; !log.includes('http listening on'); i++) {
      if (server.exitCode !== null || i > 600) throw new Error(`serve did not start:\n${log}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    if (server && server.exitCode === null) {
      const gone = new Promise((r) => server.once('exit', r));
      server.kill('SIGTERM');
      await gone;
    }
  });

  it('the dashboard shows the messages just sent, on a laptop and a phone', async () => {
    const ham = fixture('ham-plain.eml');
    for (let i = 0; i < 12; i++) await post(Buffer.concat([ham, Buffer.from(`\r\n-- ${i}\r\n`)]));
    for (let i = 0; i < 8; i++) await post(fixture('rules/SCAM_SEXTORTION.eml'));
    const page = await browser.newPage({ viewport: { width: 1366, height: 900 } });
    const t0 = Date.now();
    await page.goto(`${base}/performance`);
    await page.waitForFunction(() => Number(document.body.dataset.total ?? 0) >= 20, null, { timeout: 20_000 });
    const loadMs = Date.now() - t0;
    expect(await page.locator('#total').textContent()).toBe('20');
    // Seven charts drawn by uPlot (each a canvas), with the spam share from 8 rejects of 20.
    await expect.poll(() => page.locator('.uplot canvas').count(), { timeout: 10_000 }).toBe(7);
    expect(await page.locator('#spamshare').textContent()).toBe('40.0%');
    expect(await page.locator('#status').textContent()).toMatch(/^updated /);
    await page.screenshot({ path: path.join(artifacts, 'performance-laptop.png'), fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForTimeout(300);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    await page.screenshot({ path: path.join(artifacts, 'performance-phone.png'), fullPage: true });
    await page.close();
    expect(loadMs).toBeGreaterThan(0);
  }, 60_000);

  it('history filters by action and opens the symbols of a verdict', async () => {
    const page = await browser.newPage({ viewport: { width: 1366, height: 900 } });
    await page.goto(`${base}/history`);
    await expect.poll(() => page.locator('tr.row').count(), { timeout: 10_000 }).toBeGreaterThanOrEqual(20);
    await page.selectOption('select[name=action]', 'reject');
    await page.click('button[type=submit]');
    await expect.poll(() => page.locator('tr.row').count(), { timeout: 10_000 }).toBe(8);
    const badges = await page.locator('tr.row .badge').allTextContents();
    expect(new Set(badges)).toEqual(new Set(['reject']));
    await page.locator('tr.row').first().click();
    const detail = page.locator('tr.detail');
    await expect.poll(() => detail.textContent(), { timeout: 5_000 }).toContain('SCAM_SEXTORTION');
    // Not quarantined: the page says the message is not available to learn from.
    await detail.locator('button', { hasText: 'Spam' }).click();
    await expect.poll(() => detail.locator('button').first().textContent(), { timeout: 5_000 }).toBe('spam: not available');
    await page.screenshot({ path: path.join(artifacts, 'history.png'), fullPage: true });
    // Min score filter on the page.
    await page.selectOption('select[name=action]', '');
    await page.fill('input[name=minScore]', '10');
    await page.click('button[type=submit]');
    await expect.poll(() => page.locator('tr.row').count(), { timeout: 10_000 }).toBe(8);
    await page.close();
  }, 60_000);
});
