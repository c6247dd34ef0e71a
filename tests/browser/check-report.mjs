#!/usr/bin/env node
// check-report.mjs: open the self-contained HTML report that revscale writes
// in a real headless Chromium, check it, and take a full-page screenshot.
//
//   node check-report.mjs REPORT.html SCREENSHOT.png
//
// Install once (from the repo root):  npm ci --prefix tests/browser
// puppeteer-core downloads no browser: it drives the system Chromium from env
// CHROMIUM, else the first of /usr/bin/chromium, /usr/bin/chromium-browser,
// /usr/bin/google-chrome that exists (Debian: `apt-get install chromium`).
//
// CONTRACT with the Rust HTML writer (change both sides together):
//   - <title> is non-empty.
//   - At least one inline <svg> (the chart) is laid out with a non-zero width
//     and height and contains at least one <path> or <polyline>.
//   - That svg has at least 2 distinct <text> month-start axis labels, each
//     exactly "YYYY-MM" (e.g. 2026-01) or "Mon YYYY" (e.g. Jan 2026).
//   - Legend: without env LEVEL_NAMES, an element with id="legend" exists.
//     With LEVEL_NAMES=a,b,c (comma-separated), each name appears in the text
//     of #legend or of the chart svg.
//   - <table id="monthly">, <table id="decisions"> and <table id="added-cost">
//     each have at least one row in a <tbody>; with env TABLES=a,b,c, the
//     tables with those ids instead (the forecast page's).
//   - The report is self-contained: it loads nothing but itself, data: URLs
//     (and in-memory blob:/about: URLs). Any http(s)/ws(s) request, or a
//     file: URL other than the report, is aborted and is a failure.
//     Chromium runs with a dead loopback proxy so nothing reaches a network.
//   - No console.error message, no uncaught page error, no failed request.
//     Console warnings are printed to stderr but do not fail the check.
//
// Output: one JSON line on stdout:
//   {"svg":{"width":..,"height":..},"monthLabels":n,"monthlyRows":n,
//    "decisionRows":n,"addedCostRows":n,"tableRows":{"id":n,..},"consoleErrors":n,
//    "networkRequests":n,"screenshot":"/abs/path.png"}
// Each failure is printed on stderr as "FAIL: ...". Exit 0 when every check
// passes, 1 when any fails (or the 60 s overall deadline passes), 2 on a
// usage error.

import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import puppeteer from 'puppeteer-core';

const OVERALL_TIMEOUT_MS = 60_000;
const MONTH_LABEL = /^\d{4}-\d{2}$|^[A-Z][a-z]{2} \d{4}$/;
const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];

function usage(msg) {
  if (msg) console.error(`error: ${msg}`);
  console.error('usage: node check-report.mjs REPORT.html SCREENSHOT.png');
  process.exit(2);
}

const [reportArg, shotArg] = process.argv.slice(2);
if (!reportArg || !shotArg || process.argv.length > 4) usage();
const reportPath = path.resolve(reportArg);
const shotPath = path.resolve(shotArg);
if (!existsSync(reportPath)) usage(`report not found: ${reportPath}`);
const reportUrl = pathToFileURL(reportPath).href;

const executablePath = process.env.CHROMIUM || CANDIDATES.find((p) => existsSync(p));
if (!executablePath) {
  usage(`no Chromium found: set CHROMIUM or install one of ${CANDIDATES.join(', ')}`);
}
const tableIds = (process.env.TABLES || 'monthly,decisions,added-cost')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
const levelNames = (process.env.LEVEL_NAMES || '')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);

const failures = [];
const fail = (msg) => failures.push(msg);
let consoleErrors = 0;
const networkUrls = [];
const aborted = new Set(); // URLs this script aborted; their failure is already recorded

// Same document URL with any #fragment removed.
const sameDoc = (u) => u.split('#')[0] === reportUrl;

function isAllowed(u) {
  const scheme = u.slice(0, u.indexOf(':') + 1).toLowerCase();
  if (scheme === 'data:' || scheme === 'blob:' || scheme === 'about:') return true;
  if (scheme === 'file:') return sameDoc(u);
  return false;
}

let browser;
let deadlineTimer;

async function run() {
  browser = await puppeteer.launch({
    executablePath,
    headless: true,
    args: [
      '--no-sandbox', // CI runs as root
      '--disable-gpu',
      '--disable-dev-shm-usage',
      // Belt and braces, for what request interception cannot abort
      // (WebSockets) or misses (the browser's own background requests):
      // every network connection goes to a closed loopback port, and no
      // host name resolves. Nothing leaves the machine.
      '--proxy-server=127.0.0.1:9',
      '--host-resolver-rules=MAP * ~NOTFOUND',
    ],
    defaultViewport: { width: 1280, height: 900 },
    protocolTimeout: OVERALL_TIMEOUT_MS,
  });
  const page = await browser.newPage();

  // WebSockets bypass request interception: record them over CDP (the
  // proxy flag above makes their connection fail).
  const cdp = await page.createCDPSession();
  await cdp.send('Network.enable');
  cdp.on('Network.webSocketCreated', ({ url }) => {
    networkUrls.push(url);
    aborted.add(url);
    fail(`the report loaded ${url} from the network (WebSocket)`);
  });

  await page.setRequestInterception(true);
  page.on('request', (req) => {
    if (req.isInterceptResolutionHandled()) return;
    const u = req.url();
    if (isAllowed(u)) {
      req.continue();
      return;
    }
    aborted.add(u);
    if (u.toLowerCase().startsWith('file:')) {
      fail(`the report loaded ${u}, a local file other than itself (not self-contained)`);
    } else {
      networkUrls.push(u);
      fail(`the report loaded ${u} from the network`);
    }
    req.abort('blockedbyclient');
  });

  page.on('console', (msg) => {
    const type = msg.type();
    const where = msg.location()?.url || '';
    if (type === 'error') {
      // Chromium's own "Failed to load resource" for a request we aborted.
      if (aborted.has(where)) return;
      consoleErrors += 1;
      fail(`console.error: ${msg.text()}${where && !sameDoc(where) ? ` (${where})` : ''}`);
    } else if (type === 'warn' || type === 'warning') {
      console.error(`warning: console.warn: ${msg.text()}`);
    }
  });
  page.on('pageerror', (err) => {
    fail(`uncaught page error: ${err?.message ?? err}`);
  });
  page.on('requestfailed', (req) => {
    const u = req.url();
    if (aborted.has(u)) return;
    fail(`request failed: ${u}: ${req.failure()?.errorText ?? 'unknown error'}`);
  });

  const resp = await page.goto(reportUrl, { waitUntil: 'load', timeout: OVERALL_TIMEOUT_MS });
  if (resp && !resp.ok() && resp.status() !== 0) fail(`loading the report gave status ${resp.status()}`);

  const facts = await page.evaluate(
    (labelSrc, names, tableIds) => {
      const label = new RegExp(labelSrc);
      const text = (el) => (el?.textContent ?? '').replace(/\s+/g, ' ').trim();
      const charts = [...document.querySelectorAll('svg')]
        .filter((svg) => !svg.parentElement?.closest('svg')) // outermost only
        .map((svg) => {
          const r = svg.getBoundingClientRect();
          const labels = new Set(
            [...svg.querySelectorAll('text')].map(text).filter((t) => label.test(t)),
          );
          return {
            width: r.width,
            height: r.height,
            hasLine: !!svg.querySelector('path, polyline'),
            monthLabels: labels.size,
            text: text(svg),
          };
        });
      const drawn = charts.filter((c) => c.width > 0 && c.height > 0 && c.hasLine);
      drawn.sort((a, b) => b.monthLabels - a.monthLabels || b.width * b.height - a.width * a.height);
      const chart = drawn[0] ?? null;
      const legend = document.getElementById('legend');
      const rows = (id) => {
        const t = document.querySelector(`table#${id}`);
        if (!t) return null;
        return [...t.tBodies].reduce((n, b) => n + b.rows.length, 0);
      };
      const legendText = `${text(legend)} ${chart ? chart.text : ''}`;
      return {
        title: document.title.trim(),
        svgCount: charts.length,
        chart: chart && { width: chart.width, height: chart.height, monthLabels: chart.monthLabels },
        hasLegend: !!legend,
        missingNames: names.filter((n) => !legendText.includes(n)),
        monthlyRows: rows('monthly'),
        decisionRows: rows('decisions'),
        addedCostRows: rows('added-cost'),
        tableRows: Object.fromEntries(tableIds.map((id) => [id, rows(id)])),
      };
    },
    MONTH_LABEL.source,
    levelNames,
    tableIds,
  );

  if (!facts.title) fail('document.title is empty');
  if (!facts.chart) {
    fail(
      facts.svgCount === 0
        ? 'no inline <svg> chart in the report'
        : `none of the ${facts.svgCount} inline <svg> has a non-zero size and a <path> or <polyline>`,
    );
  } else if (facts.chart.monthLabels < 2) {
    fail(`the chart has ${facts.chart.monthLabels} month-start <text> label(s) matching ${MONTH_LABEL}; need at least 2`);
  }
  if (levelNames.length === 0) {
    if (!facts.hasLegend) fail('no element with id="legend" (and LEVEL_NAMES not set)');
  } else if (facts.missingNames.length) {
    fail(`level name(s) not in #legend or the chart: ${facts.missingNames.join(', ')}`);
  }
  for (const [id, n] of Object.entries(facts.tableRows)) {
    if (n === null) fail(`no <table id="${id}">`);
    else if (n < 1) fail(`<table id="${id}"> has no <tbody> row`);
  }

  mkdirSync(path.dirname(shotPath), { recursive: true });
  await page.screenshot({ path: shotPath, fullPage: true });

  return {
    svg: facts.chart
      ? { width: Math.round(facts.chart.width), height: Math.round(facts.chart.height) }
      : null,
    monthLabels: facts.chart?.monthLabels ?? 0,
    monthlyRows: facts.monthlyRows ?? 0,
    decisionRows: facts.decisionRows ?? 0,
    addedCostRows: facts.addedCostRows ?? 0,
    tableRows: facts.tableRows,
    consoleErrors,
    networkRequests: networkUrls.length,
    screenshot: shotPath,
  };
}

async function closeBrowser() {
  if (!browser) return;
  const b = browser;
  browser = undefined;
  const proc = b.process();
  await Promise.race([b.close().catch(() => {}), new Promise((r) => setTimeout(r, 5_000))]);
  if (proc && proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
}

let summary = null;
try {
  const deadline = new Promise((_, reject) => {
    deadlineTimer = setTimeout(
      () => reject(new Error(`timed out after ${OVERALL_TIMEOUT_MS / 1000} s`)),
      OVERALL_TIMEOUT_MS,
    );
  });
  summary = await Promise.race([run(), deadline]);
} catch (err) {
  fail(`check aborted: ${err?.message ?? err}`);
} finally {
  clearTimeout(deadlineTimer);
  await closeBrowser();
}

if (summary) console.log(JSON.stringify(summary));
for (const f of failures) console.error(`FAIL: ${f}`);
process.exit(failures.length ? 1 : 0);
