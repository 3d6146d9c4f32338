// The preference centre as a recipient uses it: headless Debian chromium (driven by Playwright)
// opens the page of a signed preference link made through the running local API, in French (the
// browser's language), checks it is accessible (a language, one heading, every control
// labelled, the choices grouped under legends) and script-free (its Content-Security-Policy
// forbids scripts), changes the choices with the keyboard-reachable controls, submits the form,
// and finds the page again saying so, with the new choices. The API then shows the decision
// recorded with source `preference_centre`.
//
//   HERALD_TOKEN=... node tests/browser/preferences.mjs --api http://127.0.0.1:PORT/v1
//
// HERALD_TOKEN: a tenant admin's bearer token (to make the link and read the result back).
// Exit 0 when every check passed.

import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const CHROMIUM = '/usr/bin/chromium';
const DEADLINE_MS = 120_000;
const ADDRESS = 'browser.check@guests.example';

function options(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i += 2) {
    const [name, value] = [argv[i], argv[i + 1]];
    if (!name?.startsWith('--') || value === undefined) usage(`unexpected ${name ?? 'end'}`);
    out[name.slice(2)] = value;
  }
  if (!out.api) usage('--api is required');
  if (!process.env.HERALD_TOKEN) usage('HERALD_TOKEN (a tenant admin\'s bearer token) is required');
  return out;
}

function usage(problem) {
  console.error(`browser preference-page check: ${problem}`);
  console.error('usage: HERALD_TOKEN=... node preferences.mjs --api URL');
  process.exit(2);
}

function check(condition, what, detail) {
  if (!condition) {
    throw new Error(`${what}${detail ? `: ${detail}` : ''}`);
  }
  console.log(`   ok  ${what}`);
}

async function api(base, method, route, body) {
  const answer = await fetch(base + route, {
    method,
    headers: {
      authorization: `Bearer ${process.env.HERALD_TOKEN}`,
      'content-type': 'application/json',
    },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const json = await answer.json();
  if (!answer.ok) throw new Error(`${method} ${route} answered ${answer.status}: ${JSON.stringify(json)}`);
  return json;
}

async function main() {
  const args = options(process.argv.slice(2));
  const base = args.api.replace(/\/$/, '');
  const link = await api(base, 'POST', '/tenant/recipients/preference-link', {
    channel: 'email',
    address: ADDRESS,
    expires_in_days: 1,
  });
  const token = link.url.split('/preferences/')[1];
  check(token?.startsWith('v1.'), 'a signed preference link was made through the API');
  const pageUrl = `${base}/preferences/${token}`;

  const profile = mkdtempSync(path.join(tmpdir(), 'herald-chromium-'));
  let context;
  try {
    const version = execFileSync(CHROMIUM, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    console.log(`   browser: ${version}, headless, fresh profile, French`);
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      locale: 'fr-FR',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        '--lang=fr-FR',
      ],
    });
    const page = await context.newPage();
    const scripts = [];
    page.on('console', (message) => scripts.push(message.text()));
    const opened = await page.goto(pageUrl, { waitUntil: 'load' });
    check(opened.status() === 200, `GET the link's page answered ${opened.status()}`);
    check(
      (opened.headers()['content-type'] ?? '').startsWith('text/html'),
      'the page is HTML (the browser accepts text/html)',
    );
    const csp = opened.headers()['content-security-policy'] ?? '';
    check(
      csp.includes("default-src 'none'") && !csp.includes('script-src'),
      'its Content-Security-Policy allows no script at all: it works without JavaScript',
      csp,
    );
    check((await page.locator('script').count()) === 0, 'and it has no script element');

    check((await page.locator('html').getAttribute('lang')) === 'fr', 'the page is in French (lang="fr")');
    const headings = await page.getByRole('heading', { level: 1 }).allTextContents();
    check(
      headings.length === 1 && headings[0] === 'Vos préférences de communication',
      `one level-1 heading: "${headings[0]}"`,
    );
    check((await page.getByRole('main').count()) === 1, 'a main landmark');
    const unlabelled = await page.locator('input').evaluateAll((inputs) =>
      inputs.filter((input) => !input.labels || input.labels.length === 0).length);
    check(unlabelled === 0, 'every control has a label');
    const groups = await page.getByRole('group').allTextContents();
    check(groups.length === 2, 'the choices are grouped in two fieldsets with legends');

    const yes = page.getByLabel('Oui, envoyez-moi des invitations et des nouvelles');
    const no = page.getByLabel("Non, ne m'envoyez ni invitations ni nouvelles");
    check(await yes.isChecked(), 'marketing by e-mail starts as wanted');
    const saveTheDate = page.getByLabel('Réservez la date');
    check(await saveTheDate.isChecked(), 'every kind of marketing starts as wanted');

    // Keyboard: the radio and checkbox are reachable and changed from the keyboard.
    await no.focus();
    await page.keyboard.press('Space');
    await saveTheDate.focus();
    await page.keyboard.press('Space');
    await Promise.all([
      page.waitForURL(/\?saved=1$/, { timeout: 30_000 }),
      page.getByRole('button', { name: 'Enregistrer mes préférences' }).click(),
    ]);
    const status = page.getByRole('status');
    check(
      (await status.textContent()) === 'Vos préférences sont enregistrées.',
      'after submitting, the page says (as a status) that the preferences are saved',
    );
    check(await no.isChecked(), 'and shows marketing by e-mail refused');
    check(!(await saveTheDate.isChecked()), 'and "Réservez la date" unticked');
    check(await page.getByLabel('Invitations', { exact: true }).isChecked(), 'and invitations still ticked');
    check(scripts.length === 0, 'nothing was logged to the console', scripts.join(' | '));

    const looked = await api(base, 'POST', '/tenant/recipients/lookup', { channel: 'email', address: ADDRESS });
    const marketing = looked.consents.find((c) => c.channel === 'email' && c.category === 'marketing');
    check(
      marketing?.status === 'withdrawn' && marketing?.source === 'preference_centre',
      'the API shows marketing by email withdrawn, from the preference centre',
      JSON.stringify(looked.consents),
    );
    check(
      looked.preferences?.preferences?.category_opt_outs?.includes('save_the_date'),
      'and save-the-dates among the categories opted out of',
      JSON.stringify(looked.preferences),
    );
  } finally {
    await context?.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

const deadline = setTimeout(() => {
  console.error(`browser preference-page check: no result within ${DEADLINE_MS / 1000} s`);
  process.exit(1);
}, DEADLINE_MS);
deadline.unref();

main().then(
  () => process.exit(0),
  (error) => {
    console.error(`   FAILED  ${error.message}`);
    process.exit(1);
  },
);
