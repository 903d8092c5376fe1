// Drives sluice's chat page (GET /) in headless Chromium, as a person would: paste a key, pick a
// model, type, send, watch, stop. Usage: node chat_page.mjs '<json>' where json is
//   {"url": "http://127.0.0.1:PORT/", "key": "sk-...", "model_type": "auto",
//    "steps": [{"do": "send", "message": "hi"}, {"do": "send", "message": "long", "wait": false},
//              {"do": "wait_text", "min_chars": 10}, {"do": "stop"}, {"do": "reload"},
//              {"do": "screenshot", "path": "/tmp/x.png"}]}
// Prints one JSON line: {"turns": [{"kind", "text", "meta", "error", "updates"}], "session", "stored_key"}.
// "updates" counts the distinct texts an answer showed while it streamed (1 = arrived in one piece).
import { chromium } from 'playwright-core';

const config = JSON.parse(process.argv[2]);
const timeout = config.timeout_ms ?? 30000;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const console_lines = [];
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 760 } });
  page.setDefaultTimeout(timeout);
  page.on('console', (msg) => console_lines.push(`${msg.type()}: ${msg.text()}`));
  page.on('pageerror', (err) => console_lines.push(`pageerror: ${err.message}`));

  // Records every text an assistant answer shows, to tell streaming from a reply that lands whole.
  const watch = () => page.evaluate(() => {
    if (window.__watching) return;
    window.__watching = true;
    window.__updates = new Map();
    new MutationObserver(() => {
      document.querySelectorAll('.turn.assistant').forEach((turn, index) => {
        const seen = window.__updates.get(index) ?? [];
        const text = turn.querySelector('.text').textContent;
        if (seen[seen.length - 1] !== text) seen.push(text);
        window.__updates.set(index, seen);
      });
    }).observe(document.getElementById('log'), { childList: true, subtree: true, characterData: true });
  });

  await page.goto(config.url);
  await page.fill('#key', config.key ?? '');
  if (config.model_type) await page.selectOption('#model-type', config.model_type);
  await watch();

  for (const step of config.steps) {
    switch (step.do) {
      case 'send': {
        const before = await page.locator('.turn.assistant').count();
        await page.fill('#message', step.message);
        await page.press('#message', 'Enter');
        await page.locator('.turn.assistant').nth(before).waitFor();
        if (step.wait !== false) await page.waitForSelector('body:not([data-busy="1"])');
        break;
      }
      case 'wait_text':
        await page.waitForFunction((n) => {
          const turns = document.querySelectorAll('.turn.assistant .text');
          return turns.length && turns[turns.length - 1].textContent.length >= n;
        }, step.min_chars);
        break;
      case 'stop':
        await page.click('#stop');
        await page.waitForSelector('body:not([data-busy="1"])');
        break;
      case 'reload':
        await page.reload();
        await watch();
        break;
      case 'screenshot':
        await page.screenshot({ path: step.path, fullPage: true });
        break;
      default:
        throw new Error(`unknown step ${step.do}`);
    }
  }

  const result = await page.evaluate(() => ({
    turns: [...document.querySelectorAll('.turn')].map((turn) => ({
      kind: turn.classList.contains('user') ? 'user' : 'assistant',
      text: turn.querySelector('.text').textContent,
      meta: [...turn.querySelectorAll('.meta')].map((e) => e.textContent).join('\n'),
      error: [...turn.querySelectorAll('.error')].map((e) => e.textContent).join('\n'),
    })),
    updates: [...(window.__updates ?? new Map()).entries()].map(([, seen]) => seen.length),
    session: document.getElementById('session').textContent,
    stored_key: localStorage.getItem('sluice.key'),
    model_type: document.getElementById('model-type').value,
  }));
  let index = 0;
  for (const turn of result.turns) if (turn.kind === 'assistant') turn.updates = result.updates[index++] ?? 0;
  delete result.updates;
  result.console = console_lines;
  console.log(JSON.stringify(result));
} catch (err) {
  console.error(`chat_page.mjs: ${err.stack ?? err}`);
  console.error(console_lines.join('\n'));
  process.exitCode = 1;
} finally {
  await browser.close();
}
