// Start a real voice-bridge server for the tests: `python -m bridge serve --port 0`, with the
// repository on PYTHONPATH. The Python is $VOICE_BRIDGE_PYTHON, else <repo>/.venv/bin/python
// (what `make test` builds). The server logs `listening url=ws://...` on stderr once its
// engines are loaded; /health then answers {"status": "ok"}.

import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../..");

export function bridgePython() {
  return process.env.VOICE_BRIDGE_PYTHON ?? path.join(REPO_ROOT, ".venv", "bin", "python");
}

function withoutConfig(env) {
  const copy = { ...env };
  delete copy.VOICE_BRIDGE_CONFIG;
  return copy;
}

/** @returns {Promise<{url: string, httpUrl: string, stop: () => Promise<void>, log: () => string}>} */
export async function startBridge({ timeoutMs = 90000, env = {} } = {}) {
  const python = bridgePython();
  if (!existsSync(python)) {
    throw new Error(`no Python at ${python}: run \`make install-dev\` or set VOICE_BRIDGE_PYTHON`);
  }
  const child = spawn(python, ["-m", "bridge", "serve", "--host", "127.0.0.1", "--port", "0"], {
    // Hermetic: no voice-bridge.toml from the working directory, no config file from the caller.
    cwd: os.tmpdir(),
    env: {
      ...withoutConfig(process.env),
      PYTHONPATH: [REPO_ROOT, process.env.PYTHONPATH].filter(Boolean).join(path.delimiter),
      VOICE_BRIDGE_LOG_LEVEL: "INFO",
      VOICE_BRIDGE_LOG_JSON: "false",
      ...env,
    },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let log = "";
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`bridge did not start within ${timeoutMs} ms:\n${log}`)), timeoutMs);
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (text) => {
      log += text;
      const match = /listening url=(ws:\/\/\S+)/.exec(log);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`bridge exited (${code ?? signal}) before listening:\n${log}`));
    });
  });
  const httpUrl = url.replace(/^ws:/, "http:").replace(/\/ws\/stream$/, "");
  for (let i = 0; ; i++) {
    try {
      const body = await (await fetch(`${httpUrl}/health`)).json();
      if (body.status === "ok") break;
    } catch {
      // not answering yet
    }
    if (i > 200) throw new Error(`bridge /health never became ok:\n${log}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    url,
    httpUrl,
    log: () => log,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10000);
      await exited;
      clearTimeout(timer);
    },
  };
}
