"""HTML pages, loaded in headless Chromium through Playwright, as a visitor would see them.

The project's files are served from a made-up origin (http://artifacts.test/) by Playwright's
request routing, so relative URLs and root-relative ones resolve as they would on a web server,
and nothing reaches the network: a request to any other host is refused (and named, not failed:
it cannot be checked offline). A page passes when it has no console error or uncaught
exception, every local link, stylesheet, script and image it names exists, it has a title and
a language, and every image has alt text. A screenshot of the first screen is kept.
"""

from __future__ import annotations

import asyncio
import mimetypes
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from playwright.async_api import ViewportSize, async_playwright

from orchestrator.checks.base import Limits, Outcome, unchecked

ORIGIN = "http://artifacts.test"
VIEWPORT = ViewportSize(width=1024, height=768)
PARALLEL = 4
SETTLE_MS = 150
# What the page says of itself once loaded: its title, language, images without alt text,
# and the links a visitor could follow (hyperlinks are not loaded by the browser).
INSPECT = """() => ({
  title: document.title.trim(),
  lang: (document.documentElement.getAttribute('lang') || '').trim(),
  noAlt: [...document.images].filter(i => !i.hasAttribute('alt'))
           .map(i => i.getAttribute('src') || '(no src)'),
  links: [...document.querySelectorAll('a[href], area[href]')].map(a => a.href),
})"""


@dataclass(frozen=True)
class Page:
    outcome: Outcome
    seconds: float
    screenshot: bytes | None = None


@dataclass
class Seen:
    """What one page did while it loaded."""

    missing: list[str] = field(default_factory=list)
    external: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)
    served: int = 0


def browser_path(limits: Limits) -> str | None:
    """The Chromium to use: the setting, then Debian's, then Playwright's own (None)."""
    return limits.chromium or shutil.which("chromium") or shutil.which("chromium-browser")


def local_path(root: Path, url: str) -> str | None:
    """The project-relative path a URL of the artifacts origin names (None: another origin)."""
    parts = urlsplit(url)
    if f"{parts.scheme}://{parts.netloc}" != ORIGIN:
        return None
    return unquote(parts.path).lstrip("/") or "index.html"


def _file(root: Path, relative: str) -> Path | None:
    found = (root / relative).resolve()
    if not found.is_relative_to(root.resolve()):
        return None
    if found.is_dir():
        found = found / "index.html"
    return found if found.is_file() else None


def verdict(path: str, seen: Seen, page: dict[str, Any], root: Path) -> Outcome:
    dead = [p for url in page["links"] if (p := local_path(root, url)) is not None
            and _file(root, p) is None]
    problems = []
    if seen.missing:
        problems.append("missing files: " + ", ".join(dict.fromkeys(seen.missing)))
    if dead:
        problems.append("dead links: " + ", ".join(dict.fromkeys(dead)))
    if seen.errors:
        problems.append("errors: " + " | ".join(dict.fromkeys(seen.errors)))
    if not page["title"]:
        problems.append("no <title>")
    if not page["lang"]:
        problems.append("no lang on <html>")
    if page["noAlt"]:
        problems.append("images without alt text: " + ", ".join(page["noAlt"][:5]))
    outside = (f"; not checked offline: {', '.join(sorted(seen.external))}"
               if seen.external else "")
    if problems:
        return False, "; ".join(problems) + outside
    return True, (f"loads: title {page['title']!r}, lang {page['lang']}, "
                  f"{seen.served} local files, {len(page['links'])} links{outside}")


async def _page(context: Any, root: Path, path: str, limits: Limits) -> Page:
    started = time.monotonic()
    seen = Seen()
    page = await context.new_page()

    async def serve(route: Any) -> None:
        relative = local_path(root, route.request.url)
        if relative is None:
            seen.external.add(urlsplit(route.request.url).netloc or route.request.url[:40])
            await route.abort()
            return
        found = _file(root, relative)
        if found is None:
            seen.missing.append(relative)
            await route.fulfill(status=404, body="not found")
            return
        seen.served += 1
        kind = mimetypes.guess_type(found.name)[0] or "application/octet-stream"
        await route.fulfill(status=200, body=found.read_bytes(), content_type=kind)

    def console(message: Any) -> None:
        # A failed load is reported once, by name, as a missing or external file.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            seen.errors.append(message.text[:300])

    def uncaught(error: Any) -> None:
        name = getattr(error, "name", "") or "Error"
        seen.errors.append(f"{name}: {getattr(error, 'message', str(error))}"[:300])

    await page.route("**/*", serve)  # (the context's route catches popups' requests)
    page.on("console", console)
    page.on("pageerror", uncaught)
    try:
        await page.goto(f"{ORIGIN}/{quote(path)}", wait_until="load",
                        timeout=limits.seconds * 1000)
        await page.wait_for_timeout(SETTLE_MS)
        facts = await page.evaluate(INSPECT)
        shot = await page.screenshot(type="png", timeout=limits.seconds * 1000)
    except Exception as error:  # (Playwright's timeouts and crashes alike)
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        return Page((False, f"did not load: {first}"), time.monotonic() - started)
    finally:
        await page.close()
    return Page(verdict(path, seen, facts, root), time.monotonic() - started, shot)


async def _pages(root: Path, paths: list[str], limits: Limits) -> dict[str, Page]:
    gate = asyncio.Semaphore(PARALLEL)

    async def one(context: Any, path: str) -> Page:
        async with gate:
            try:  # a script that never yields blocks evaluate and screenshot: give up on it
                return await asyncio.wait_for(_page(context, root, path, limits),
                                              limits.seconds + 10)
            except TimeoutError:
                return Page((False, f"did not finish loading in {limits.seconds + 10:.0f}s "
                                    "(a script that never yields?)"), limits.seconds + 10)

    async def refuse(route: Any) -> None:  # whatever a page opens (popups) stays offline
        await route.abort()

    async def no_sockets(socket: Any) -> None:
        await socket.close()

    async with async_playwright() as playwright:
        # Nothing the routes miss reaches the network either: a proxy that is not there, and
        # no WebRTC outside it.
        browser = await playwright.chromium.launch(
            executable_path=browser_path(limits), headless=True,
            proxy={"server": "http://127.0.0.1:9"},
            args=["--force-webrtc-ip-handling-policy=disable_non_proxied_udp"])
        try:
            context = await browser.new_context(viewport=VIEWPORT, service_workers="block")
            await context.route("**/*", refuse)
            await context.route_web_socket("**/*", no_sockets)
            found = await asyncio.gather(*(one(context, p) for p in paths))
        finally:
            await browser.close()
    return dict(zip(paths, found, strict=True))


def check_pages(root: Path, paths: list[str], limits: Limits) -> dict[str, Page]:
    """Load every page in one browser; a browser that cannot start leaves them unchecked."""
    try:
        return asyncio.run(_pages(root, paths, limits))
    except Exception as error:  # (no browser, or it would not start)
        first = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        return {p: Page(unchecked(f"no browser to load it in: {first[:200]}"), 0.0)
                for p in paths}
