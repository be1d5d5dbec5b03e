// What the browser tests share: a natter server they can restart, headless
// Chromium, and small helpers that act like a person at the keyboard.

import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { after, afterEach, before } from 'node:test';

import { chromium } from 'playwright-core';

import { Natter } from '../../sdk/natter.js';

export const ROOT = resolve(import.meta.dirname, '../../..');
export const SCREENSHOTS = join(ROOT, 'test-artifacts', 'screenshots');

function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
    server.on('error', reject);
  });
}

/** natter on a free port with its own data folder; `restart()` keeps both. */
export class Server {
  /**
   * `config` is the text of a natter.toml (host sites, admin keys);
   * `rateLimits: false` is for files whose set-up makes data faster than
   * a person could (dozens of rooms or messages in a second); `args`
   * are more command-line flags (`['--big-room-members', '3']`).
   */
  static async start({ config, rateLimits = true, args = [] } = {}) {
    const server = new Server();
    server.rateLimits = rateLimits;
    server.args = args;
    server.port = await freePort();
    server.data = mkdtempSync(join(tmpdir(), 'natter-browser-'));
    server.base = `http://127.0.0.1:${server.port}`;
    if (config) {
      server.config = join(server.data, 'natter.toml');
      writeFileSync(server.config, config);
    }
    await server.launch();
    return server;
  }

  async launch() {
    const binary = process.env.NATTER_BIN || join(ROOT, 'target', 'debug', 'natter');
    const args = ['--listen', `127.0.0.1:${this.port}`, '--data-dir', this.data, '--presence-grace-secs', '2'];
    if (this.config) args.push('--config', this.config);
    if (!this.rateLimits) args.push('--rate-limits', 'off');
    args.push(...this.args);
    this.child = spawn(binary, args, {
      stdio: ['ignore', 'ignore', 'inherit'],
      env: { ...process.env, NATTER_LOG: 'warn' },
    });
    const deadline = Date.now() + 20000;
    while (Date.now() < deadline) {
      try {
        const response = await fetch(`${this.base}/healthz`);
        if (response.ok) return;
      } catch { /* not up yet */ }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('natter did not start');
  }

  async stop() {
    if (!this.child || this.child.exitCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGTERM');
    await exited;
  }

  async restart(pauseMs = 0) {
    await this.stop();
    await new Promise((r) => setTimeout(r, pauseMs));
    await this.launch();
  }

  /**
   * A signed-in SDK client for a host site's user, from a token the site
   * signed: the way a site's own staff (a teacher) reach its users, whose
   * community (docs/security.md) local accounts are not part of.
   */
  async siteUser(token, site) {
    const client = new Natter({ baseUrl: this.base });
    const { user } = await client.ssoLogin(token, site);
    client.user = user;
    return client;
  }

  /** A logged-in SDK client for a new user (made through the API, not the UI). */
  async user(name, displayName) {
    const client = new Natter({ baseUrl: this.base });
    await client.register(name, 'password-1', displayName);
    const { user } = await client.login(name, 'password-1');
    client.user = user;
    return client;
  }
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run',
      '--disable-component-update', '--disable-sync', '--disable-quic'],
  });
}

/** What the pages of the current test did that a failure report needs. */
const trail = [];
const TRAIL_LINES = 300;
let contextCount = 0;
/** Contexts still open, with the label their trail lines carry. */
const openContexts = new Map();

function note(label, text) {
  trail.push(`${new Date().toISOString().slice(11, 23)} ${label} ${text}`);
  if (trail.length > TRAIL_LINES) trail.shift();
}

/**
 * A fresh browser profile, in English and the light theme unless told
 * otherwise (`colorScheme: 'dark'`). Its console
 * errors, page errors and failed or refused requests are kept, and printed
 * with the state of its pages if the test fails: a flake in CI must leave
 * enough behind to find its cause.
 */
export async function newContext(browser, { locale = 'en-US', viewport = { width: 1280, height: 800 }, colorScheme } = {}) {
  const context = await browser.newContext({ locale, viewport, colorScheme });
  const label = `[context ${++contextCount}]`;
  context.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning') note(label, `console.${message.type()}: ${message.text()}`);
  });
  context.on('weberror', (error) => note(label, `page error: ${error.error()}`));
  context.on('requestfailed', (request) => note(label, `failed: ${request.method()} ${request.url()} ${request.failure()?.errorText}`));
  context.on('response', (response) => {
    if (response.status() >= 400) note(label, `${response.status()}: ${response.request().method()} ${response.url()}`);
  });
  openContexts.set(context, label);
  context.on('close', () => openContexts.delete(context));
  return context;
}

afterEach(async (t) => {
  if (t.passed) {
    trail.length = 0;
    openContexts.clear();
    return;
  }
  const lines = [`--- what the browser saw before "${t.name}" failed`, ...trail];
  for (const [context, label] of openContexts) {
    for (const page of context.pages()) {
      // A page that hangs must not hang the report too.
      const hung = new Promise((resolve) => setTimeout(() => resolve({ unreadable: 'no answer in 2 s' }), 2000));
      const seen = await Promise.race([hung, page.evaluate(() => ({
        title: document.title,
        connection: document.getElementById('connection')?.textContent,
        sidebar: document.getElementById('sidebar')?.innerText,
        header: document.querySelector('.room-header h2')?.textContent,
      })).catch((e) => ({ unreadable: String(e) }))]);
      lines.push(`${label} ${page.url()} ${JSON.stringify(seen)}`);
    }
  }
  // Contexts still open belong to this test; later failures report their own.
  openContexts.clear();
  trail.length = 0;
  console.log(lines.join('\n'));
});

/** Registers through the sign-in screen and waits for the main screen. */
export async function registerInUi(page, base, username, password = 'password-1') {
  await page.goto(base + '/');
  await page.getByRole('button', { name: /create an account|注册/i }).click();
  await page.fill('#username', username);
  await page.fill('#password', password);
  await page.getByRole('button', { name: /^(create account|注册)$/i }).click();
  await page.locator('.topbar').waitFor();
}

/** Logs in through the sign-in screen. */
export async function loginInUi(page, base, username, password = 'password-1') {
  await page.goto(base + '/');
  await page.fill('#username', username);
  await page.fill('#password', password);
  await page.getByRole('button', { name: /^(log in|登录)$/i }).click();
  await page.locator('.topbar').waitFor();
}

/** Logs in and waits for the page's first load of its room list, so a
 *  route set up afterwards sees only the loads that come later. */
export async function loginAndLoadRooms(page, base, username) {
  const firstLoad = page.waitForResponse('**/api/v1/rooms');
  await loginInUi(page, base, username);
  await firstLoad;
}

/** Makes the page's next `count` GETs matching `glob` fail as a dropped
 *  connection would; `failed` in the returned object counts them. */
export async function failNextGets(page, glob, count) {
  const drops = { failed: 0 };
  await page.route(glob, (route) => {
    if (route.request().method() !== 'GET' || drops.failed >= count) return route.fallback();
    drops.failed += 1;
    return route.abort('connectionreset');
  });
  return drops;
}

/** Opens a conversation from the sidebar by its title. */
export async function openRoomInUi(page, title) {
  await page.locator('.room', { hasText: title }).first().click();
  await page.locator('#composer').waitFor();
}

/** Types into the composer and presses Enter. */
export async function sendInUi(page, text) {
  await page.fill('#composer', text);
  await page.press('#composer', 'Enter');
}

export async function screenshot(page, name) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`) });
}

/** What the accessibility checks hold every screen to: WCAG 2.1, levels A and AA. */
export const WCAG_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];
let axeSource = null;

/**
 * Runs axe-core on a page or frame (the tests' copy, web/node_modules;
 * evaluated through the DevTools protocol, which the page's CSP does not
 * govern) and fails on any WCAG 2.1 A/AA violation, listing each rule,
 * its impact and help, and the selector of every element it found with
 * what is wrong there. `include` limits the check to one part of the
 * page (a host site's widget, whose page is not ours).
 */
export async function expectAccessible(target, label, { include } = {}) {
  try {
    axeSource ??= readFileSync(join(ROOT, 'web', 'node_modules', 'axe-core', 'axe.min.js'), 'utf8');
  } catch (e) {
    throw new Error(`axe-core is missing: run \`npm ci\` in web/ (${e.message})`);
  }
  if (!(await target.evaluate(() => typeof window.axe?.run === 'function'))) await target.evaluate(axeSource);
  const results = await target.evaluate(async ({ tags, include }) => {
    const found = await window.axe.run(include ? { include: [include] } : document, {
      runOnly: { type: 'tag', values: tags },
      resultTypes: ['violations'],
      // Each frame is checked on its own: a cross-origin frame would have
      // axe wait for an answer that never comes.
      iframes: false,
    });
    return {
      passes: found.passes.length,
      violations: found.violations.map((v) => ({
        id: v.id,
        impact: v.impact,
        help: v.help,
        helpUrl: v.helpUrl,
        nodes: v.nodes.map((n) => ({
          target: n.target.map((t) => (Array.isArray(t) ? t.join(' >> ') : t)).join(' >>> '),
          summary: n.failureSummary,
        })),
      })),
    };
  }, { tags: WCAG_TAGS, include });
  if (results.passes === 0) throw new Error(`${label}: axe ran no checks, so it proved nothing`);
  if (results.violations.length === 0) return results;
  const lines = [`${label}: ${results.violations.length} WCAG 2.1 A/AA violation(s)`];
  for (const v of results.violations) {
    lines.push(`  ${v.id} [${v.impact}] ${v.help} (${v.helpUrl})`);
    for (const node of v.nodes) {
      lines.push(`    ${node.target}`);
      for (const line of (node.summary || '').split('\n')) if (line.trim()) lines.push(`      ${line.trim()}`);
    }
  }
  throw new Error(lines.join('\n'));
}

export { freePort };

/** An HS256 JWT, as a host site's backend would sign one. */
export function signHs256(claims, secret) {
  const part = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const body = `${part({ alg: 'HS256', typ: 'JWT' })}.${part(claims)}`;
  return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`;
}

/** A tiny web server standing in for a host site: `pages` maps paths to
 *  HTML (or functions making it); `port` when its origin must be known first. */
export async function hostSite(pages, port) {
  port ??= await freePort();
  const server = createHttpServer((request, response) => {
    const page = pages[new URL(request.url, 'http://x').pathname];
    response.writeHead(page ? 200 : 404, { 'content-type': 'text/html; charset=utf-8' });
    response.end(typeof page === 'function' ? page() : page || 'not found');
  });
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { origin: `http://127.0.0.1:${port}`, close: () => new Promise((r) => server.close(r)) };
}

/** A natter and a Chromium for one test file, stopped after it. */
export function serverAndBrowser(options) {
  const env = {};
  before(async () => {
    env.server = await Server.start(options);
    env.browser = await launchBrowser();
  });
  after(async () => {
    await env.browser?.close();
    await env.server?.stop();
  });
  return env;
}

/** A short random suffix for names that must not collide between tests. */
export const unique = () => Math.random().toString(36).slice(2, 8);

/** natter.toml for one HS256 host site whose pages live at `origin`. */
export function siteConfig({ issuer, secret, origin, sessionTtlSecs }) {
  return `[[sites]]
id = "school"
issuer = "${issuer}"
algorithm = "HS256"
secret = "${secret}"
origins = ["${origin}"]
${sessionTtlSecs ? `session_ttl_secs = ${sessionTtlSecs}\n` : ''}`;
}

/** Two users (SDK clients) of `env`'s server in a new public room. */
export async function twoInRoom(env, names = ['Han Meimei', 'Li Lei']) {
  const a = await env.server.user(`alice${unique()}`, names[0]);
  const b = await env.server.user(`bob${unique()}`, names[1]);
  const title = `Class ${unique()}`;
  const room = await a.createRoom(title, { visibility: 'public' });
  await b.joinRoom(room.id);
  return { a, b, room, title };
}

/**
 * A signed-in, connected page of `client`'s user in `env`'s browser;
 * `init` runs in it before its scripts.
 */
export async function pageOf(env, client, { init, ...options } = {}) {
  const context = await newContext(env.browser, options);
  if (init) await context.addInitScript(init);
  const page = await context.newPage();
  await loginInUi(page, env.server.base, client.user.username);
  await page.locator('#connection[data-state="connected"]').waitFor();
  return { context, page };
}
