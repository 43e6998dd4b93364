"""The studio in a real browser: headless Chromium (Debian's, no browser download) via Playwright."""

from __future__ import annotations

import io
import re
import shutil
import socket
import sys
from pathlib import Path

import pytest
import soundfile as sf
import torch

pytest.importorskip("gradio")
sync_api = pytest.importorskip("playwright.sync_api")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from apps import studio  # noqa: E402
from workbench.models import create_model  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Chromium (apt-get install chromium)"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def studio_url(tmp_path_factory):
    """The studio with a tiny untrained WaveNet (fast to sample), on a free localhost port."""
    checkpoint = tmp_path_factory.mktemp("checkpoints") / "tiny"
    torch.manual_seed(0)
    create_model("wavenet", "tiny").save(checkpoint)
    demo = studio.launch(free_port(), extra_checkpoints={"tiny-wavenet": str(checkpoint)},
                         prevent_thread_lock=True)
    try:
        yield demo.local_url
    finally:
        demo.close()


@pytest.fixture(scope="module")
def page(studio_url):
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(studio_url)
            yield page
        finally:
            browser.close()


def test_move_pitch_click_generate_hear_the_result(page, tmp_path):
    expect = sync_api.expect
    generate = page.get_by_role("button", name="Generate")
    expect(generate).to_be_visible(timeout=30_000)

    # choose the tiny WaveNet (shipped checkpoints come first in the list)
    page.get_by_label("model", exact=True).click()
    page.get_by_role("option", name="tiny-wavenet").click()
    torch.manual_seed(0)
    n_parameters = create_model("wavenet", "tiny").n_parameters
    expect(page.get_by_text(f"{n_parameters:,} parameters")).to_be_visible()

    # move the pitch slider one semitone up: its note name follows (62 = D4 -> 63 = D#4)
    pitch = page.get_by_label("range slider for pitch (MIDI)")
    expect(pitch).to_have_value("62")
    pitch.focus()
    pitch.press("ArrowRight")
    expect(pitch).to_have_value("63")
    expect(page.get_by_text("D#4 · 311.1 Hz")).to_be_visible()

    # a short note, without the pyin measurement, keeps the test quick
    seconds = page.get_by_label("number input for seconds")
    seconds.fill("0.1")
    seconds.press("Enter")
    page.get_by_label("measure the pitch of the result (pyin)").uncheck()

    expect(page.get_by_text("Press Generate.")).to_be_visible()
    generate.click()
    expect(page.get_by_text("pitch 63 (D#4), instrument piano")).to_be_visible(timeout=120_000)
    expect(page.get_by_text("real-time factor")).to_be_visible()
    # the player shows the result's waveform; its <audio> element holds the generated clip
    expect(page.get_by_test_id("waveform-generated")).to_be_visible()
    block = page.get_by_test_id("waveform-generated").locator("xpath=ancestor::div[contains(@class, 'block')][1]")
    link = block.get_by_test_id("download-link")
    expect(link).to_have_attribute("href", re.compile(r"\.wav$"))
    response = page.request.get(link.get_attribute("href"))
    samples, rate = sf.read(io.BytesIO(response.body()))
    assert rate == 8000 and len(samples) == 800  # 0.1 s at the tiny WaveNet's rate

    shot = tmp_path / "studio.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
