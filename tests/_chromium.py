"""Headless Chromium driven over the DevTools protocol (one websocket, flat sessions), for the visual test.

Small on purpose: open a page at a given width, measure it with a script, take a full-page screenshot.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from websockets.asyncio.client import connect

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--mute-audio", "--remote-debugging-port=0"]

# Runs in the page: load every image now (lazy ones too), wait for them and the fonts, then measure.
MEASURE = """
(async () => {
  const images = [...document.images];
  images.forEach(img => { img.loading = 'eager'; });
  const settle = img => img.complete ? null : new Promise(done => {
    img.addEventListener('load', done); img.addEventListener('error', done); setTimeout(done, 10000); });
  await Promise.all(images.map(settle));
  await document.fonts.ready;
  const width = window.innerWidth;
  const describe = el => el.tagName.toLowerCase() + (el.className && typeof el.className === 'string'
      ? '.' + el.className.trim().split(/\\s+/).join('.') : '') + ' "' + (el.textContent || '').trim().slice(0, 30) + '"';
  const overflowing = [...document.body.querySelectorAll('*')]
      .filter(el => { const r = el.getBoundingClientRect(); return r.width > 0 && r.right > width + 1; })
      .slice(0, 8).map(el => describe(el) + ' right=' + Math.round(el.getBoundingClientRect().right));
  return JSON.stringify({
    innerWidth: width,
    scrollWidth: document.documentElement.scrollWidth,
    height: Math.max(document.documentElement.scrollHeight, document.body.scrollHeight),
    images: images.length,
    broken: images.filter(img => img.complete && img.naturalWidth === 0).map(img => img.currentSrc || img.src),
    pending: images.filter(img => !img.complete).map(img => img.currentSrc || img.src),
    noAlt: images.filter(img => !img.hasAttribute('alt')).map(img => img.src),
    overflowing,
  });
})()
"""


class Chromium:
    """One headless browser for a test module; ``render()`` is synchronous for the tests' sake."""

    def __init__(self):
        self.profile = Path(tempfile.mkdtemp(prefix="dangol-chromium-"))
        self.proc = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        active = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (active.is_file() and len(active.read_text().splitlines()) >= 2):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"chromium did not start (exit {self.proc.poll()})")
            time.sleep(0.05)
        port, path = active.read_text().splitlines()[:2]
        self.endpoint = f"ws://127.0.0.1:{port}{path}"

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)

    def render(self, url: str, width: int, screenshot: Path) -> dict:
        """Open ``url`` at ``width`` CSS px, measure it, save a full-page PNG; returns the measurements."""
        return asyncio.run(asyncio.wait_for(self._render(url, width, screenshot), timeout=60))

    async def _render(self, url: str, width: int, screenshot: Path) -> dict:
        async with connect(self.endpoint, max_size=None) as ws:
            cdp = _Session(ws)
            target = (await cdp.send("Target.createTarget", {"url": "about:blank"}))["targetId"]
            session = (await cdp.send("Target.attachToTarget", {"targetId": target, "flatten": True}))["sessionId"]
            try:
                # mobile=False keeps the layout viewport at exactly `width`: with mobile emulation Chromium
                # zooms out to fit a too-wide page, and the overflow would hide instead of showing up.
                metrics = {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False}
                await cdp.send("Emulation.setDeviceMetricsOverride", metrics, session)
                await cdp.send("Page.enable", {}, session)
                await cdp.send("Page.navigate", {"url": url}, session)
                await cdp.event("Page.loadEventFired", session)
                result = await cdp.send("Runtime.evaluate", {"expression": MEASURE, "awaitPromise": True,
                                                             "returnByValue": True}, session)
                if "exceptionDetails" in result:
                    raise RuntimeError(f"measuring {url}: {result['exceptionDetails']}")
                measured = json.loads(result["result"]["value"])
                height = min(int(measured["height"]), 16000)
                await cdp.send("Emulation.setDeviceMetricsOverride", {**metrics, "height": height}, session)
                shot = await cdp.send("Page.captureScreenshot", {
                    "format": "png", "captureBeyondViewport": True,
                    "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}}, session)
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                screenshot.write_bytes(base64.b64decode(shot["data"]))
                return measured
            finally:
                await cdp.send("Target.closeTarget", {"targetId": target})


class _Session:
    """Commands with ids; events kept until someone waits for them."""

    def __init__(self, ws):
        self.ws = ws
        self.ids = itertools.count(1)
        self.events: list[dict] = []

    async def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        msg_id = next(self.ids)
        message = {"id": msg_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        await self.ws.send(json.dumps(message))
        while True:
            data = json.loads(await self.ws.recv())
            if data.get("id") == msg_id:
                if "error" in data:
                    raise RuntimeError(f"{method}: {data['error']}")
                return data.get("result", {})
            if "method" in data:
                self.events.append(data)

    async def event(self, method: str, session: str) -> dict:
        while True:
            for i, data in enumerate(self.events):
                if data["method"] == method and data.get("sessionId") == session:
                    return self.events.pop(i)
            data = json.loads(await self.ws.recv())
            if "method" in data:
                self.events.append(data)
