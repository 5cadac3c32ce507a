// Drives the gateway dashboard in Debian's headless Chromium with playwright-core: opens
// /ui, enters the master key, checks that the page shows the ledger's spend and tokens per
// key (LLMKIT_UI_EXPECT), clicks Revoke on one key (LLMKIT_UI_REVOKE), and prints what it
// saw as one JSON line. With LLMKIT_UI_SCREENSHOT=PATH it also saves a screenshot there.
// Run by crates/llmkit-cli/tests/it/gateway_ui.rs; exits non-zero on any mismatch.
'use strict';

const path = require('path');
const { chromium } = require(path.join(process.env.LLMKIT_UI_MODULES, 'playwright-core'));

const base = process.env.LLMKIT_UI_URL;
const master = process.env.LLMKIT_UI_MASTER;
const expect = JSON.parse(process.env.LLMKIT_UI_EXPECT);
const revokeId = process.env.LLMKIT_UI_REVOKE;
const shot = process.env.LLMKIT_UI_SCREENSHOT;

function fail(msg) {
  throw new Error(msg);
}

async function main() {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  const seen = { requests: [], foreign: [], console: [], dialogs: 0 };
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1100 } });
    const origin = new URL(base).origin;
    page.on('request', (r) => {
      seen.requests.push(r.url());
      if (new URL(r.url()).origin !== origin) seen.foreign.push(r.url());
    });
    page.on('console', (m) => {
      if (m.type() === 'error') seen.console.push(m.text());
    });
    page.on('pageerror', (e) => seen.console.push(String(e)));
    page.on('dialog', (d) => {
      seen.dialogs += 1;
      d.accept();
    });

    await page.goto(base + '/ui');
    await page.waitForSelector('#login-form', { state: 'visible' });
    // A wrong key is refused, and the page asks again.
    await page.fill('#master-key', master + '-wrong');
    await page.click('#login-button');
    await page.waitForFunction(() => document.getElementById('login-error').textContent.length > 0);
    // The refused key's 401s are the only console errors allowed.
    seen.console.length = 0;
    await page.fill('#master-key', master);
    await page.click('#login-button');
    await page.waitForSelector('#dashboard:not([hidden])');
    await page.waitForSelector('#spend-keys tbody tr[data-key]');

    const rows = await page.$$eval('#spend-keys tbody tr[data-key]', (trs) => trs.map((tr) => ({
      key: tr.dataset.key,
      requests: Number(tr.dataset.requests),
      tokens: Number(tr.dataset.tokens),
      cost: Number(tr.dataset.cost),
      tokensText: tr.querySelector('td.tokens').textContent,
      costText: tr.querySelector('td.cost').textContent,
    })));
    for (const [key, want] of Object.entries(expect)) {
      const got = rows.find((r) => r.key === key);
      if (!got) fail('no spend row for key ' + key);
      if (got.requests !== want.requests) fail(key + ': requests ' + got.requests + ' != ' + want.requests);
      if (got.tokens !== want.tokens) fail(key + ': tokens ' + got.tokens + ' != ' + want.tokens);
      if (Math.abs(got.cost - want.cost) > 1e-12) fail(key + ': cost ' + got.cost + ' != ' + want.cost);
      if (got.costText !== '$' + want.cost.toFixed(6)) fail(key + ': shown cost ' + got.costText);
      if (got.tokensText.replace(/,/g, '') !== String(want.tokens)) fail(key + ': shown tokens ' + got.tokensText);
    }
    // Each chart has one bar per key.
    const bars = await page.$$eval('#chart-key-cost rect', (r) => r.length);
    if (bars !== Object.keys(expect).length) fail('the cost chart has ' + bars + ' bars');
    // The upstream chart names the upstream that served the traffic (no routes: `default`).
    const upstreams = await page.$$eval('#chart-upstream-cost text.axis', (t) => t.map((x) => x.textContent));
    if (!upstreams.includes('default')) fail('the upstream chart shows ' + JSON.stringify(upstreams));
    const errorRows = await page.$$eval('#errors tbody tr[data-status]', (r) => r.map((x) => x.dataset.status));

    // The key lives in sessionStorage only.
    const storage = await page.evaluate(() => ({
      session: sessionStorage.getItem('llmkit-master-key'),
      local: localStorage.length,
      cookies: document.cookie,
    }));
    if (storage.session !== master) fail('the master key is not in sessionStorage');
    if (storage.local !== 0 || storage.cookies !== '') fail('the page wrote localStorage or cookies');

    const button = '#keys button.revoke[data-key="' + revokeId + '"]';
    await page.click(button);
    await page.waitForSelector('#keys tbody tr.revoked[data-key="' + revokeId + '"]');
    const status = await page.textContent('#keys tbody tr[data-key="' + revokeId + '"] td.status');
    if (status !== 'revoked') fail('the key shows as ' + status);
    if (!(await page.isDisabled(button))) fail('the revoked key can be revoked again');
    if (seen.dialogs !== 1) fail('revoking asked ' + seen.dialogs + ' times');
    if (seen.foreign.length > 0) fail('the page reached other origins: ' + seen.foreign.join(' '));
    if (seen.console.length > 0) fail('console errors: ' + seen.console.join(' | '));
    if (shot) await page.screenshot({ path: shot, fullPage: true });
    console.log(JSON.stringify({ ok: true, rows, errorRows, requests: seen.requests.length }));
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(String(e && e.stack || e));
  process.exit(1);
});
