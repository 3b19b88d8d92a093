// What the browser checks share: Debian's Chromium through playwright-core, started with the
// flags this machine's closed network needs, and the way a check reports: what it saw as JSON
// on stdout, or its error on stderr and a failing exit.
'use strict';

const { chromium } = require('playwright-core');

const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync'];

/// Runs `check(browser)`, prints the object it returns as JSON, and closes the browser whatever happens.
function report(check) {
  (async () => {
    const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ARGS });
    try {
      process.stdout.write(JSON.stringify(await check(browser)));
    } finally {
      await browser.close();
    }
  })().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}

module.exports = { report, ARGS };
