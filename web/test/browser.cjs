// Browser test of the web page, run by ci step `web` (xtask/src/web.rs), which serves
// web/dist and passes: BASE_URL SCREENSHOT_PATH. Needs playwright-core (NODE_PATH) and
// Debian's chromium. Prints one line `RESULT {json}` with the measurements.
//
// The page is one WebGL canvas with no DOM widgets, so the test acts like a user (real key
// presses on the focused canvas) and reads what the app shows through the read-only hook
// window.greenletViz.state().
'use strict';

const { chromium } = require('playwright-core');

const [baseUrl, screenshotPath] = process.argv.slice(2);
if (!baseUrl || !screenshotPath) {
  console.error('usage: node browser.cjs BASE_URL SCREENSHOT_PATH');
  process.exit(2);
}

function check(condition, message) {
  if (!condition) {
    throw new Error(message);
  }
}

// The hook's state once `ready(state)` holds (each key press is drawn on the next frame).
async function waitForState(page, ready, what) {
  const deadline = Date.now() + 20000;
  let last = null;
  while (Date.now() < deadline) {
    last = await page.evaluate(() => (window.greenletViz ? window.greenletViz.state() : null));
    if (last && ready(last)) {
      return last;
    }
    await page.waitForTimeout(25);
  }
  throw new Error(`timed out waiting for ${what}; last state: ${JSON.stringify(last)}`);
}

async function main() {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    // What headless Chromium needs here as root; the canvas renders with WebGL2 on SwiftShader.
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
      '--disable-sync',
    ],
  });
  try {
    const context = await browser.newContext({
      viewport: { width: 1280, height: 720 },
      deviceScaleFactor: 1,
      colorScheme: 'dark',
    });
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(`console error: ${m.text()}`);
    });

    // 1. A lesson, stepped with the arrow keys.
    await page.goto(`${baseUrl}/?lesson=pingpong`);
    const first = await waitForState(page, (s) => s.frames > 0 && s.lesson === 'pingpong', 'the first frame of lesson pingpong');
    check(first.error === null, `lesson pingpong shows an error: ${first.error}`);
    check(first.event_count > 10, `lesson pingpong has only ${first.event_count} events`);
    check(first.step === 0, `a lesson starts at step 0, not ${first.step}`);
    await page.locator('canvas#viz').focus();
    const steps = [first];
    for (let i = 1; i <= 8; i++) {
      await page.keyboard.press('ArrowRight');
      steps.push(await waitForState(page, (s) => s.step === i, `step ${i} after ${i} presses of the right arrow`));
    }
    const last = steps[steps.length - 1];
    const running = new Set(steps.map((s) => s.running));
    const lines = new Set(steps.map((s) => s.source_line));
    check(running.size > 1, `the running greenlet never changed over 8 steps: ${[...running]}`);
    check(lines.size > 1, `the source line never changed over 8 steps: ${[...lines]}`);
    check(last.source_file && last.source_file.endsWith('pingpong.rs'), `source file is ${last.source_file}`);
    await page.keyboard.press('ArrowLeft');
    await waitForState(page, (s) => s.step === 7, 'step 7 after the left arrow');
    await page.keyboard.press('End');
    const end = await waitForState(page, (s) => s.step === first.event_count - 1, 'the last step after End');
    await page.keyboard.press('Home');
    await waitForState(page, (s) => s.step === 0, 'step 0 after Home');
    // Back where the screenshot is taken: a busy moment.
    for (let i = 1; i <= 8; i++) {
      await page.keyboard.press('ArrowRight');
    }
    await waitForState(page, (s) => s.step === 8, 'step 8 again');
    // Let animations (tree slides, 0.3 s) settle before the picture.
    await page.waitForTimeout(600);
    await page.screenshot({ path: screenshotPath });

    // 2. A trace by URL (?trace=): the seed lesson's recording, opened as a file.
    const other = await browser.newPage({ viewport: { width: 1280, height: 720 } });
    await other.goto(`${baseUrl}/?trace=lessons/seed.json`);
    const opened = await waitForState(other, (s) => s.frames > 0 && s.event_count > 0, 'the trace from ?trace=');
    check(opened.lesson === null && opened.program === 'seed', `?trace= opened ${JSON.stringify(opened)}`);
    check(opened.error === null, `?trace= shows an error: ${opened.error}`);

    // 3. A file dropped on the canvas: the browser reads it, the app opens it.
    const dropped = await page.evaluate(async () => {
      const text = await (await fetch('lessons/generator.json')).text();
      const data = new DataTransfer();
      data.items.add(new File([text], 'dropped.json', { type: 'application/json' }));
      const canvas = document.querySelector('canvas#viz');
      for (const type of ['dragenter', 'dragover', 'drop']) {
        canvas.dispatchEvent(new DragEvent(type, { dataTransfer: data, bubbles: true, cancelable: true }));
      }
    });
    void dropped;
    const afterDrop = await waitForState(page, (s) => s.program === 'generator' && s.lesson === null, 'the dropped trace');
    check(afterDrop.step === 0, `a dropped trace starts at step 0, not ${afterDrop.step}`);

    check(errors.length === 0, `the page reported errors:\n${errors.join('\n')}`);
    console.log(`RESULT ${JSON.stringify({
      first_frame_ms: first.first_frame_ms,
      event_count: first.event_count,
      last_step: end.step,
      running: [...running],
      source_lines: [...lines],
    })}`);
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(`browser test failed: ${e.stack || e}`);
  process.exit(1);
});
