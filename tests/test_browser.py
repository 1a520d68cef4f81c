"""The apps in a real browser: Voila serves a notebook of tests/browser/ on localhost, and
Debian's Chromium, driven by Playwright for Python with the system browser (no browser
download), clicks through the app and reads what the page shows.

- the inference app: pick a synthetic class, click Run, read the fused prediction; then upload
  a video through the page's FileUpload (it crosses the websocket) and read its prediction;
- an upload over Jupyter's websocket message limit: it never arrives, and Run says why;
- the saliency explorer: click Explain, press play, see the frame slider move (``jslink`` runs
  in the browser) and the kernel redraw the frame it points at.

Skips, saying why, where Chromium or Playwright is missing; with HARTUTOR_REQUIRE_BROWSER=1
(as in .ci/run) a missing browser is a failure instead. HARTUTOR_CHROMIUM overrides the
browser's path; HARTUTOR_SCREENSHOT_DIR keeps the screenshots somewhere other than tmp_path.
Every request that would leave localhost is aborted (Voila's page template asks a CDN for
Font Awesome).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import hartutor  # noqa: F401  (the torchvision shim first)
from hartutor.course import shipped_checkpoint

BROWSER_DIR = Path(__file__).resolve().parent / "browser"
CHROMIUM = os.environ.get("HARTUTOR_CHROMIUM", "/usr/bin/chromium")
REQUIRED = os.environ.get("HARTUTOR_REQUIRE_BROWSER", "") == "1"
ACTION, SEED = "stand_up", 0
UPLOAD_ACTION = "sit_down"
# Voila starts a kernel that imports torch and loads the model: generous bounds on a busy CI box
SERVER_START_S = 120
APP_READY_S = 240
RESULT_S = 180

pytestmark = pytest.mark.slow


def _missing(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"{reason} (HARTUTOR_REQUIRE_BROWSER=1: the browser test must run here)")
    pytest.skip(reason)


def _tail(path: Path, lines: int = 40) -> str:
    text = path.read_text(errors="replace") if path.exists() else "(no log)"
    return "\n".join(text.splitlines()[-lines:])


@pytest.fixture
def playwright_api() -> Any:
    """Playwright's sync API, once Chromium and Playwright are known to be here."""
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        found = shutil.which("chromium")
        _missing(
            f"Chromium not found at {CHROMIUM} ({'but at ' + found if found else 'nor on PATH'}): "
            "install it with 'apt-get install chromium' or set HARTUTOR_CHROMIUM"
        )
    try:
        from playwright import sync_api
    except ImportError:
        _missing("playwright is not installed: pip install -c constraints.txt -e '.[dev]'")
    return sync_api


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("HARTUTOR_SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextmanager
def _voila(notebook: Path, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """Voila serving ``notebook`` on a free localhost port; yields (url, its log file)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    log = tmp_path / f"voila-{notebook.stem}.log"
    home = tmp_path / "jupyter"
    env = {
        **os.environ,
        "HARTUTOR_MODE": "fast",
        "HARTUTOR_CACHE": str(tmp_path / "cache"),
        "MPLBACKEND": "Agg",
        "OMP_NUM_THREADS": "1",
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "PYTHONUNBUFFERED": "1",
    }
    command = [
        sys.executable,
        "-m",
        "voila",
        str(notebook),
        f"--port={port}",
        "--no-browser",
        "--Voila.ip=127.0.0.1",
        "--Voila.token=",
        "--VoilaExecutor.timeout=600",
    ]
    with log.open("w") as out:
        server = subprocess.Popen(
            command, cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if server.poll() is not None:
                pytest.fail(f"voila exited with status {server.returncode}:\n{_tail(log)}")
            try:
                with urllib.request.urlopen(url + "voila/static/", timeout=2):
                    break
            except urllib.error.HTTPError:
                break  # the server answers (404 is fine): it is up
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"voila did not answer on {url} in {SERVER_START_S} s:\n{_tail(log)}"
                    )
                time.sleep(0.5)
        yield url, log
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@contextmanager
def _page(sync_api: Any, url: str) -> Iterator[tuple[Any, list[str]]]:
    """A headless Chromium page on ``url`` (no downloads, nothing beyond localhost)."""
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-background-networking",
                "--disable-dev-shm-usage",
                "--disable-gpu",
                "--no-first-run",
            ],
        )
        try:
            context = browser.new_context(
                accept_downloads=False, viewport={"width": 1400, "height": 1000}
            )
            page = context.new_page()
            blocked: list[str] = []

            def local_only(route: Any) -> None:
                if route.request.url.startswith(("http://127.0.0.1", "ws://127.0.0.1")):
                    route.continue_()
                else:
                    blocked.append(route.request.url)
                    route.abort()

            page.route("**/*", local_only)
            page.goto(url, wait_until="domcontentloaded", timeout=APP_READY_S * 1000)
            yield page, blocked
        finally:
            browser.close()


def _failed(page: Any, screenshot: Path, log: Path, what: str, err: Exception) -> None:
    page.screenshot(path=str(screenshot), full_page=True)
    pytest.fail(f"{what}: {err}\nscreenshot: {screenshot}\nvoila log:\n{_tail(log)}")


def _choose_upload(page: Any, video: Path) -> None:
    """Pick the "upload" clip source and choose ``video`` in the browser's file dialog (the
    FileUpload button opens it; its file input is never attached to the page)."""
    page.locator(".widget-toggle-buttons button").filter(has_text=re.compile(r"^upload$")).click()
    page.locator(".hartutor-upload-note").wait_for(state="visible", timeout=30_000)
    with page.expect_file_chooser(timeout=30_000) as chooser:
        page.locator(".hartutor-upload").click()
    chooser.value.set_files(str(video))


def test_inference_app_in_chromium(playwright_api: Any, shots: Path, tmp_path: Path) -> None:
    from hartutor import widgets as hw
    from hartutor.synth import render_clip
    from hartutor.video import write_video

    screenshot = shots / "inference_app.png"
    # what the library computes for the same clips, in this process
    model = hw.load_model(shipped_checkpoint(hw.DEFAULT_MODEL))
    expected = hw.predict(model, hw.synthetic_clip(ACTION, SEED))
    fused = next(p for p in expected if p.scorer == "fused")
    video = write_video(tmp_path / "my_upload.mp4", render_clip(UPLOAD_ACTION, 3).frames, fps=25)
    upload = {"name": video.name, "content": video.read_bytes()}
    uploaded = next(p for p in hw.predict(model, hw.upload_clip(upload)) if p.scorer == "fused")

    with (
        _voila(BROWSER_DIR / "inference_app.ipynb", tmp_path) as (url, log),
        _page(playwright_api, url) as (page, blocked),
    ):
        try:
            page.locator(".hartutor-run").wait_for(state="visible", timeout=APP_READY_S * 1000)
            page.locator(".hartutor-class select").select_option(ACTION)
            page.locator(".hartutor-run").click()
            page.wait_for_function(
                "() => /fused: /.test(document.querySelector('.hartutor-prediction')"
                "?.textContent ?? '') || (document.querySelector('.hartutor-error')"
                "?.textContent ?? '').length > 0",
                timeout=RESULT_S * 1000,
            )
            page.wait_for_timeout(500)  # let the bars image arrive
        except playwright_api.Error as err:
            _failed(page, screenshot, log, "the app did not show a prediction", err)
        text = page.locator(".hartutor-prediction").inner_text().strip()
        error = page.locator(".hartutor-error").inner_text().strip()
        images = page.locator(".hartutor-inference-app img").count()
        page.screenshot(path=str(screenshot), full_page=True)
        # then a real upload: the file goes through the browser's FileUpload and the websocket
        try:
            # the "upload" clip source shows the FileUpload button and its note
            _choose_upload(page, video)
            page.wait_for_function(  # the widget shows how many files it holds
                "() => /\\(1\\)/.test(document.querySelector('.hartutor-upload')"
                "?.textContent ?? '')",
                timeout=30_000,
            )
            page.locator(".hartutor-run").click()
            page.wait_for_function(
                f"() => /{video.name}/.test(document.querySelector('.hartutor-status')"
                "?.textContent ?? '') || (document.querySelector('.hartutor-error')"
                "?.textContent ?? '').length > 0",
                timeout=RESULT_S * 1000,
            )
        except playwright_api.Error as err:
            _failed(page, screenshot, log, "the uploaded video gave no prediction", err)
        upload_text = page.locator(".hartutor-prediction").inner_text().strip()
        upload_error = page.locator(".hartutor-error").inner_text().strip()
        note = page.locator(".hartutor-upload-note").inner_text().strip()
        page.screenshot(path=str(shots / "inference_app_upload.png"), full_page=True)

    where = f"(screenshot: {screenshot})"
    assert error == "", f"the app showed an error: {error} {where}"
    match = re.match(r"fused: (\w+) \((\d+)%\)", text)
    assert match, f"no fused prediction in {text!r} {where}"
    assert match.group(1) == fused.labels[0], f"{text!r} but the library says {fused} {where}"
    assert abs(int(match.group(2)) - round(100 * fused.probabilities[0])) <= 1, f"{text!r} {where}"
    assert text.endswith(f"true: {ACTION}"), f"{text!r} {where}"
    assert images >= 1, f"the bar chart is not on the page {where}"
    assert upload_error == "", f"the upload showed an error: {upload_error} {where}"
    got = re.match(r"fused: (\w+) \((\d+)%\)", upload_text)
    assert got, f"no fused prediction for the upload in {upload_text!r} {where}"
    assert got.group(1) == uploaded.labels[0], f"{upload_text!r}, library: {uploaded} {where}"
    assert abs(int(got.group(2)) - round(100 * uploaded.probabilities[0])) <= 1, upload_text
    assert "true:" not in upload_text, f"an upload has no known class: {upload_text!r}"
    assert note.startswith("Uploads up to just under 10.5 MB"), f"upload note {note!r} {where}"
    print(f"browser showed: {text}\nscreenshot: {screenshot}\nblocked requests: {blocked}")


def test_an_upload_too_big_for_the_websocket_is_explained_in_chromium(
    playwright_api: Any, shots: Path, tmp_path: Path
) -> None:
    """Over Jupyter's message limit, the bytes never reach the kernel (the page's websocket
    drops and reconnects); Run then says why and what to do instead."""
    from hartutor import widgets as hw
    from hartutor.synth import render_clip
    from hartutor.video import write_video

    screenshot = shots / "inference_app_big_upload.png"
    video = write_video(tmp_path / "clip.mp4", render_clip(UPLOAD_ACTION, 3).frames, fps=25)
    big = tmp_path / "phone_video.mp4"  # a valid video padded past the limit
    big.write_bytes(video.read_bytes().ljust(hw.JUPYTER_MESSAGE_LIMIT_BYTES + 2**20, b"\0"))
    with (
        _voila(BROWSER_DIR / "inference_app.ipynb", tmp_path) as (url, log),
        _page(playwright_api, url) as (page, _blocked),
    ):
        try:
            page.locator(".hartutor-run").wait_for(state="visible", timeout=APP_READY_S * 1000)
            _choose_upload(page, big)
            deadline = time.monotonic() + RESULT_S
            while "Restoring connection" not in log.read_text() and time.monotonic() < deadline:
                page.wait_for_timeout(500)  # the server closes the socket; the page reconnects
            page.locator(".hartutor-run").click()
            page.wait_for_function(
                "() => (document.querySelector('.hartutor-error')?.textContent ?? '').length > 0",
                timeout=RESULT_S * 1000,
            )
        except playwright_api.Error as err:
            _failed(page, screenshot, log, "the app did not answer the oversized upload", err)
        error = page.locator(".hartutor-error").inner_text().strip()
        held = page.locator(".hartutor-upload").inner_text().strip()
        page.screenshot(path=str(screenshot), full_page=True)
    where = f"(screenshot: {screenshot}; voila log: {log})"
    assert "Restoring connection" in log.read_text(), f"the websocket did not drop {where}"
    assert held.endswith("(0)"), f"the upload arrived after all: {held!r} {where}"
    assert "probably over the 10.5 MB one Jupyter message carries" in error, f"{error!r} {where}"
    assert "choose 'video file'" in error, f"{error!r} {where}"


def test_saliency_explorer_plays_in_chromium(
    playwright_api: Any, shots: Path, tmp_path: Path
) -> None:
    screenshot = shots / "saliency_explorer.png"
    with (
        _voila(BROWSER_DIR / "saliency_explorer.ipynb", tmp_path) as (url, log),
        _page(playwright_api, url) as (page, _blocked),
    ):
        readout = page.locator(".hartutor-frame .widget-readout")
        position = page.locator(".hartutor-position")
        try:
            page.locator(".hartutor-explain").wait_for(state="visible", timeout=APP_READY_S * 1000)
            page.locator(".hartutor-explain").click()
            page.wait_for_function(
                "() => /of i3d for sit_down/.test(document.querySelector('.hartutor-status')"
                "?.textContent ?? '') || (document.querySelector('.hartutor-error')"
                "?.textContent ?? '').length > 0",
                timeout=RESULT_S * 1000,
            )
            status = page.locator(".hartutor-status").inner_text().strip()
            error = page.locator(".hartutor-error").inner_text().strip()
            first = position.inner_text().strip()
            page.locator(".hartutor-play button").first.click()  # the Play widget's play button
            page.wait_for_function(
                "() => Number(document.querySelector('.hartutor-frame .widget-readout')"
                "?.textContent ?? 0) >= 3",
                timeout=30_000,
            )
            page.locator(".hartutor-play button").first.click()  # the same button pauses
            frame = int(readout.inner_text().strip())
            page.wait_for_function(
                "(t) => (document.querySelector('.hartutor-position')?.textContent ?? '')"
                ".startsWith(`input frame ${t + 1} of 16`)",
                arg=frame,
                timeout=30_000,
            )
            later = position.inner_text().strip()
        except playwright_api.Error as err:
            _failed(page, screenshot, log, "the explorer did not explain or play", err)
        page.screenshot(path=str(screenshot), full_page=True)

    where = f"(screenshot: {screenshot})"
    assert error == "", f"the explorer showed an error: {error} {where}"
    assert re.search(r"\d+% of the fused score", status), f"{status!r} {where}"
    assert first == "input frame 1 of 16 (clip frame 0)", f"{first!r} {where}"
    assert frame >= 3 and later.startswith(f"input frame {frame + 1} of 16"), f"{later!r} {where}"
    print(f"explorer: {status}; after play: {later}\nscreenshot: {screenshot}")
