// Drives the demo page in headless Chromium (playwright-core from clients/node's dev
// dependencies, the system's `chromium`) and prints what the page showed as one JSON object.
// Used by tests/e2e/test_demo_page.py:  node tests/support/demo_page_driver.mjs BASE_URL CHROMIUM [SCREENSHOT_DIR]

import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, "..", "..", "clients", "node", "package.json"));
const { chromium } = require("playwright-core");

const [baseUrl, executablePath, screenshotDir] = process.argv.slice(2);
const SHORT = "Sure! Your table for two is booked at 7:45 tonight. Dr. Patel will meet you at the door.";
const LONG = [
  "Here is the plan for your trip.",
  "On Monday you fly to Lisbon, and the flight leaves at 8:15 in the morning.",
  "On Tuesday you take the train to Porto, which takes about three hours.",
  "On Wednesday there is a guided tour of the old town and the river.",
  "On Thursday you are free to explore the wine cellars on your own.",
].join(" ");

const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: [
    "--autoplay-policy=no-user-gesture-required", // AudioContext may start without a click
    "--no-sandbox", // CI containers run as root
    "--disable-gpu",
    "--disable-dev-shm-usage",
  ],
  timeout: 60000,
});
const result = { consoleErrors: [], pageErrors: [] };
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  page.on("console", (message) => {
    if (message.type() === "error") result.consoleErrors.push(message.text());
  });
  page.on("pageerror", (error) => result.pageErrors.push(String(error)));
  page.on("response", (response) => {
    if (response.status() >= 400) result.consoleErrors.push(`${response.status()} ${response.url()}`);
  });
  // Every AudioContext the page makes, with the rate it asked for. The page hands the bridge's
  // 48 kHz samples to its worklet as they are, so a context at another rate (Chromium's
  // default is the output device's: 44.1 kHz headless) would play them at the wrong speed and
  // pitch. Wrapping the constructor reads the page's own context without changing the page.
  await page.addInitScript(() => {
    const Native = window.AudioContext;
    window.__audioContexts = [];
    window.AudioContext = class extends Native {
      constructor(options) {
        super(options);
        window.__audioContexts.push({ context: this, requested: options?.sampleRate ?? null });
      }
    };
  });
  const audioContexts = () =>
    page.evaluate(() =>
      window.__audioContexts.map(({ context, requested }) => ({ requested, sampleRate: context.sampleRate, state: context.state })),
    );

  await page.goto(`${baseUrl}/`);
  result.url = page.url();
  await page.waitForSelector('#status[data-state="ready"]', { timeout: 30000 });
  result.readyStatus = await page.textContent("#status");

  const read = () =>
    page.evaluate(() => {
      const $ = (id) => document.getElementById(id);
      const num = (value) => (value === undefined ? null : Number(value));
      return {
        status: $("status").textContent,
        state: $("status").dataset.state,
        fttsMs: num($("ftts").dataset.ms),
        fttsText: $("ftts").textContent,
        firstSoundMs: num($("first-sound").dataset.ms),
        tokensSent: Number($("tokens-sent").textContent),
        tokenChips: document.querySelectorAll("#tokens .token").length,
        streamedText: $("tokens").textContent,
        audioSeconds: num($("audio-received").dataset.seconds),
        bufferedSamples: num($("buffered").dataset.samples),
        playedSamples: num($("buffered").dataset.played),
        underruns: num($("underruns").dataset.count),
        segments: [...document.querySelectorAll("#segments .seg-text")].map((e) => e.textContent),
        speakDisabled: $("speak").disabled,
        stopDisabled: $("stop").disabled,
        log: $("log").textContent,
        playback: document.body.dataset.playback ?? null,
      };
    });

  // 1. A reply streamed at a chosen rate, spoken to the end.
  await page.fill("#text", SHORT);
  await page.$eval("#rate", (input) => {
    input.value = "50";
    input.dispatchEvent(new Event("input"));
  });
  result.rateLabel = await page.textContent("#rate-value");
  // Record the highlighted word at every animation frame while the reply plays: the word, its
  // times, the page's playback position and the worklet's samples played at that moment.
  await page.evaluate(() => {
    window.__highlights = [];
    const sample = () => {
      const now = document.querySelector("#segments .word-now");
      if (now && document.body.dataset.playback === "playing") {
        window.__highlights.push({
          text: now.textContent,
          index: [...document.querySelectorAll("#segments .word")].indexOf(now),
          start: Number(now.dataset.start),
          end: Number(now.dataset.end),
          position: Number(document.body.dataset.position),
        });
      }
      if (document.body.dataset.playback !== "drained" || !window.__highlights.length) requestAnimationFrame(sample);
    };
    requestAnimationFrame(sample);
  });
  const started = Date.now();
  await page.click("#speak");
  await page.waitForFunction(() => document.getElementById("status").textContent.startsWith("done"), null, { timeout: 60000 });
  result.speakWallMs = Date.now() - started;
  await page.waitForFunction(() => document.getElementById("first-sound").dataset.ms !== undefined, null, { timeout: 10000 }).catch(() => {});
  result.first = await read();
  // Let the jitter buffer play out (the worklet reports "drained").
  await page.waitForSelector('body[data-playback="drained"]', { timeout: 30000 }).catch(() => {});
  result.firstPlayedOut = await read();
  result.highlights = await page.evaluate(() => window.__highlights);
  result.words = await page.evaluate(() =>
    [...document.querySelectorAll("#segments .word")].map((w) => ({
      text: w.textContent,
      start: Number(w.dataset.start),
      end: Number(w.dataset.end),
      said: w.classList.contains("word-said"),
    })),
  );
  result.audioContexts = await audioContexts();
  if (screenshotDir) await page.screenshot({ path: path.join(screenshotDir, "demo-done.png"), fullPage: true });

  // 2. Stop in the middle of a long reply: cancel, and the worklet's buffer is cleared.
  await page.fill("#text", LONG);
  await page.$eval("#rate", (input) => {
    input.value = "200";
    input.dispatchEvent(new Event("input"));
  });
  await page.click("#speak");
  await page.waitForFunction(() => document.getElementById("ftts").dataset.ms !== undefined, null, { timeout: 60000 });
  await page.waitForFunction(() => Number(document.getElementById("buffered").dataset.samples) > 0, null, { timeout: 10000 }).catch(() => {});
  result.beforeStop = await read();
  if (screenshotDir) await page.screenshot({ path: path.join(screenshotDir, "demo-speaking.png"), fullPage: true });
  await page.click("#stop");
  await page.waitForFunction(() => document.getElementById("buffered").dataset.samples === "0", null, { timeout: 5000 }).catch(() => {});
  result.afterStop = await read();
  await page.waitForTimeout(1500);
  result.afterStopLater = await read();

  // 3. The session goes on.
  await page.fill("#text", "New topic.");
  await page.click("#speak");
  await page.waitForFunction(() => document.getElementById("status").textContent.startsWith("done"), null, { timeout: 60000 });
  result.next = await read();
  result.audioContextsAtEnd = await audioContexts();

  // 4. The README's embedding snippet, run as written in a page of the bridge's origin.
  const readme = await readFile(path.join(here, "..", "..", "bridge", "static", "README.md"), "utf8");
  const snippet = /```js\n([\s\S]*?)```/.exec(readme)[1];
  const wsBase = baseUrl.replace(/^http/, "ws");
  const embed = await browser.newPage();
  const logged = [];
  embed.on("console", (message) => logged.push(message.text()));
  embed.on("pageerror", (error) => result.pageErrors.push(`snippet: ${error}`));
  await embed.goto(`${baseUrl}/health`);
  await embed.evaluate(`(async () => {\n${snippet.replaceAll("ws://127.0.0.1:8765", wsBase)}\n})()`);
  const deadline = Date.now() + 60000;
  while (!logged.includes("played it all") && Date.now() < deadline) await embed.waitForTimeout(100);
  result.snippetLog = logged;
} catch (error) {
  result.error = String(error?.stack ?? error);
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(result, null, 2));
