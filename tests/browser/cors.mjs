// Herald's API from a real browser, as the wizard frontend calls it: headless Debian chromium
// (driven by Playwright) loads a page from another local origin that asks the running local API
// for a branded template preview with a bearer token. From an origin in the stack's
// CorsAllowedOrigins the preview is rendered in the page after a real CORS preflight; from any
// other origin the browser refuses the answer and the request itself is never sent.
//
//   HERALD_TOKEN=... node tests/browser/cors.mjs --api http://127.0.0.1:PORT/v1 \
//     --allowed-port N --gateway-log .local/run/gateway.log
//
// --allowed-port: the page's origin http://127.0.0.1:N must be one of the API's allowed origins;
// the refused origin is another free port. --gateway-log: the local gateway's JSON log, where the
// preflights and requests it received are counted. Exit 0 when every check passed.

import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';

const CHROMIUM = '/usr/bin/chromium';
const DEADLINE_MS = 120_000;
const PREVIEW_PATH = '/tenant/templates/invitation/email/preview';
const GUEST = 'Grace Hopper';

function options(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i += 2) {
    const [name, value] = [argv[i], argv[i + 1]];
    if (!name?.startsWith('--') || value === undefined) usage(`unexpected ${name ?? 'end'}`);
    out[name.slice(2)] = value;
  }
  for (const name of ['api', 'allowed-port', 'gateway-log']) {
    if (!out[name]) usage(`--${name} is required`);
  }
  if (!process.env.HERALD_TOKEN) usage('HERALD_TOKEN (a bearer token for the API) is required');
  return out;
}

function usage(problem) {
  console.error(`browser CORS check: ${problem}`);
  console.error('usage: HERALD_TOKEN=... node cors.mjs --api URL --allowed-port N --gateway-log FILE');
  process.exit(2);
}

// The wizard's part, reduced to one call: a draft email template previewed with the tenant's
// brand. Config comes in the URL's fragment, which never reaches the page's server.
const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>Herald preview</title></head>
<body>
<p id="state">loading</p>
<h1 id="subject"></h1>
<iframe id="preview" title="preview" sandbox></iframe>
<script type="module">
const config = new URLSearchParams(location.hash.slice(1));
const state = document.getElementById('state');
try {
  const answer = await fetch(config.get('api') + '${PREVIEW_PATH}', {
    method: 'POST',
    credentials: 'include',
    headers: {
      authorization: 'Bearer ' + config.get('token'),
      'content-type': 'application/json',
    },
    body: JSON.stringify({
      content: {
        subject: "You're invited, {{ guest_name }}",
        body: '<h2>{{ brand.display_name }}</h2><p>Dear {{ guest_name }}, see you there.</p>',
        variables: [{ name: 'guest_name', sample: 'Ada Lovelace' }],
      },
      variables: { guest_name: '${GUEST}' },
    }),
  });
  const body = await answer.json();
  if (!answer.ok) {
    state.dataset.result = 'error';
    state.textContent = answer.status + ' ' + (body.error?.code ?? '');
  } else {
    document.getElementById('subject').textContent = body.subject;
    document.getElementById('preview').srcdoc = body.html;
    state.dataset.result = 'rendered';
    state.textContent = 'rendered ' + answer.status + ', template from ' + body.template?.source;
  }
} catch (error) {
  state.dataset.result = 'refused';
  state.textContent = error.name + ': ' + error.message;
}
</script>
</body></html>`;

function servePage(port) {
  const server = http.createServer((request, response) => {
    if (request.method !== 'GET' || request.url !== '/') {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    response.end(PAGE);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

// What the gateway received for the preview route: preflights (OPTIONS) and the calls (POST).
function gatewaySaw(logFile, apiPath) {
  const seen = { OPTIONS: [], POST: [] };
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    let entry;
    try {
      entry = JSON.parse(line);
    } catch {
      continue;
    }
    const fields = entry.fields ?? {};
    if (fields.message === 'request' && fields.path === apiPath && fields.method in seen) {
      seen[fields.method].push(Number(fields.status));
    }
  }
  return seen;
}

async function load(context, origin, config) {
  const page = await context.newPage();
  const console_ = [];
  page.on('console', (message) => console_.push(message.text()));
  await page.goto(`${origin}/#${new URLSearchParams(config)}`);
  const state = page.locator('#state[data-result]');
  await state.waitFor({ timeout: 60_000 });
  return {
    page,
    result: await state.getAttribute('data-result'),
    text: await state.textContent(),
    console: console_,
  };
}

function check(condition, what, detail) {
  if (!condition) {
    throw new Error(`${what}${detail ? `: ${detail}` : ''}`);
  }
  console.log(`   ok  ${what}`);
}

async function main() {
  const args = options(process.argv.slice(2));
  const api = args.api.replace(/\/$/, '');
  const apiPath = new URL(api + PREVIEW_PATH).pathname;
  const config = { api, token: process.env.HERALD_TOKEN };

  const allowed = await servePage(Number(args['allowed-port']));
  const refused = await servePage(0);
  const allowedOrigin = `http://127.0.0.1:${allowed.address().port}`;
  const refusedOrigin = `http://127.0.0.1:${refused.address().port}`;
  const profile = mkdtempSync(path.join(tmpdir(), 'herald-chromium-'));
  let context;
  try {
    const version = execFileSync(CHROMIUM, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    console.log(`   browser: ${version}, headless, fresh profile; API ${api}`);
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    });

    const before = gatewaySaw(args['gateway-log'], apiPath);
    const good = await load(context, allowedOrigin, config);
    check(
      good.result === 'rendered',
      `a page from ${allowedOrigin} (an allowed origin) called POST ${apiPath} with a bearer token`,
      `${good.text}; console: ${good.console.join(' | ')}`,
    );
    const subject = await good.page.locator('#subject').textContent();
    check(subject.includes(GUEST), `the preview's subject is shown in the page: "${subject}"`);
    const rendered = await good.page.frameLocator('#preview').locator('body').textContent();
    const brand = (await good.page.frameLocator('#preview').locator('h2').textContent()).trim();
    check(
      rendered.includes(`Dear ${GUEST}`) && brand.length > 0,
      `the HTML preview is rendered in the page, with the tenant's brand "${brand}"`,
      rendered,
    );

    // The gateway's log is written as it answers; the page has its answer, so the lines exist.
    const afterGood = gatewaySaw(args['gateway-log'], apiPath);
    const preflights = afterGood.OPTIONS.slice(before.OPTIONS.length);
    const calls = afterGood.POST.slice(before.POST.length);
    check(
      preflights.length >= 1 && preflights.every((status) => status === 204),
      'the browser sent a CORS preflight (OPTIONS) first, answered 204',
      `preflights seen: ${JSON.stringify(preflights)}`,
    );
    check(calls.length === 1 && calls[0] === 200, 'then the POST itself, answered 200', `calls seen: ${JSON.stringify(calls)}`);

    const bad = await load(context, refusedOrigin, config);
    check(
      bad.result === 'refused',
      `a page from ${refusedOrigin} (not an allowed origin) is refused by the browser`,
      `the page got: ${bad.text}`,
    );
    check(
      bad.console.some((line) => line.includes('blocked by CORS policy')),
      `refused for CORS ("${bad.text}"; the browser: blocked by CORS policy)`,
      `console: ${bad.console.join(' | ')}`,
    );
    const afterBad = gatewaySaw(args['gateway-log'], apiPath);
    check(
      afterBad.POST.length === afterGood.POST.length && afterBad.OPTIONS.length > afterGood.OPTIONS.length,
      'its preflight got no CORS approval, so the POST was never sent',
      `preflights ${afterBad.OPTIONS.length - afterGood.OPTIONS.length}, calls ${afterBad.POST.length - afterGood.POST.length}`,
    );
  } finally {
    await context?.close().catch(() => {});
    allowed.close();
    refused.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

const deadline = setTimeout(() => {
  console.error(`browser CORS check: FAILED: no result within ${DEADLINE_MS / 1000} s`);
  process.exit(1);
}, DEADLINE_MS);

main().then(
  () => {
    clearTimeout(deadline);
    console.log('   browser CORS check: passed');
  },
  (error) => {
    clearTimeout(deadline);
    console.error(`browser CORS check: FAILED: ${error.message}`);
    process.exitCode = 1;
  },
);
