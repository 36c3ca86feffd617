// Opens a page written by `termtrail export --format html` in headless
// Chromium (Debian's, driven by playwright-core), with every request that is
// not file:, data: or blob: refused, starts the player by clicking it, and
// waits until the player's terminal shows EXPECTED_TEXT. Prints one JSON
// object: console errors, page errors, refused requests, the terminal's
// text, the verdict shown on the page, and the info section's text.
//
//   node html_page.cjs PAGE.html EXPECTED_TEXT
//
// Environment: TERMTRAIL_NODE_MODULES (where playwright-core is installed),
// TERMTRAIL_CHROMIUM (default /usr/bin/chromium).
'use strict';
const path = require('path');
const { chromium } = require(path.join(process.env.TERMTRAIL_NODE_MODULES, 'playwright-core'));

async function main() {
  const [pagePath, expectText] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: process.env.TERMTRAIL_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  const result = { consoleErrors: [], pageErrors: [], refused: [] };
  try {
    const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
    await context.route('**/*', (route) => {
      const url = route.request().url();
      if (/^(file|data|blob):/.test(url)) return route.continue();
      result.refused.push(url);
      return route.abort();
    });
    const page = await context.newPage();
    page.on('console', (m) => { if (m.type() === 'error') result.consoleErrors.push(m.text()); });
    page.on('pageerror', (e) => result.pageErrors.push(String(e)));
    await page.goto('file://' + path.resolve(pagePath));
    await page.waitForSelector('.ap-player', { timeout: 20000 });
    result.textBeforePlay = await page.$eval('.ap-term', (e) => e.innerText).catch(() => '');
    // Start it the way a person does: click the player.
    await page.click('.ap-player');
    await page.waitForFunction(
      (t) => { const el = document.querySelector('.ap-term'); return el && el.innerText.includes(t); },
      expectText, { timeout: 30000 },
    ).catch((e) => { result.waitError = String(e); });
    result.termText = await page.$eval('.ap-term', (e) => e.innerText);
    result.duration = await page.evaluate(() => window.player.getDuration());
    result.verdict = await page.$eval('#verdict', (e) => e.dataset.verdict);
    result.info = await page.$eval('#info', (e) => e.innerText);
    result.title = await page.title();
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(result));
}

main().catch((e) => { console.log(JSON.stringify({ fatal: String(e && e.stack || e) })); process.exit(1); });
