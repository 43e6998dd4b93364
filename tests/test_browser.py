"""The studio in a real browser: headless Chromium (Debian's, no browser download) via Playwright.

The studio serves the shipped checkpoints and a tiny untrained WaveNet (fast to sample). Tests
that need a shipped model skip while it does not exist. Screenshots go to a temporary folder
(its path is printed).
"""

from __future__ import annotations

import io
import os
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

from apps import common, studio, votes  # noqa: E402
from apps.generate_tab import element_id  # noqa: E402
from workbench.models import create_model, list_checkpoints  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORTS = {"wide": {"width": 1400, "height": 1000}, "laptop": {"width": 1024, "height": 768}}
expect = sync_api.expect

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Chromium (apt-get install chromium)"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def needs(name: str) -> None:
    if name not in list_checkpoints():
        pytest.skip(f"no shipped {name} checkpoint")


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("screenshots")
    print(f"screenshots in {folder}")
    return folder


@pytest.fixture(scope="module")
def studio_url(tmp_path_factory):
    """The studio with a tiny untrained WaveNet beside the shipped checkpoints, on a free localhost port;
    A/B votes in a temporary data directory."""
    checkpoint = tmp_path_factory.mktemp("checkpoints") / "tiny"
    torch.manual_seed(0)
    create_model("wavenet", "tiny").save(checkpoint)
    before = os.environ.get(votes.DATA_DIR_ENV)
    os.environ[votes.DATA_DIR_ENV] = str(tmp_path_factory.mktemp("data"))
    demo = studio.launch(free_port(), extra_checkpoints={"tiny-wavenet": str(checkpoint)},
                         prevent_thread_lock=True)
    try:
        yield demo.local_url
    finally:
        demo.close()
        if before is None:
            os.environ.pop(votes.DATA_DIR_ENV, None)
        else:
            os.environ[votes.DATA_DIR_ENV] = before


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def page(browser, studio_url):
    page = browser.new_page(viewport=VIEWPORTS["wide"])
    page.goto(studio_url)
    expect(generate_button(page)).to_be_visible(timeout=30_000)
    yield page
    page.close()


def visible(locator):
    return locator.filter(visible=True)


def generate_button(page):
    return visible(page.get_by_role("button", name="Generate", exact=True))


def pick(page, label: str, option: str) -> None:
    """Choose ``option`` in the visible dropdown labelled ``label``: typed, then clicked in the list
    (Enter would take the first match, and "vae" also matches "vqvae", listed before it)."""
    box = visible(page.get_by_label(label, exact=True))
    box.click()
    box.fill(option)
    choices = visible(page.get_by_role("option", name=option, exact=True))
    listbox = box.get_attribute("aria-controls")  # another dropdown's list may still be open
    if listbox:
        choices = page.locator(f"#{listbox}").get_by_role("option", name=option, exact=True)
    choices.click()
    expect(box).to_have_value(option)


def choose_model(page, label: str) -> None:
    """Choose a model and wait until its controls replace the previous model's (the switch is an
    event of its own: a control found before it lands belongs to the model before)."""
    pick(page, "model", label)
    expect(page.locator(f"#generate-{element_id(label)}")).to_be_visible()
    expect(generate_button(page)).to_have_count(1)  # the previous model's is hidden


def downloaded_clip(page, label: str = "generated"):
    """The samples of the player labelled ``label`` (its download link)."""
    block = visible(page.get_by_test_id(f"waveform-{label}")).locator(
        "xpath=ancestor::div[contains(@class, 'block')][1]")
    link = block.get_by_test_id("download-link")
    expect(link).to_have_attribute("href", re.compile(r"\.wav$"))
    return sf.read(io.BytesIO(page.request.get(link.get_attribute("href")).body()))


# ---- Generate ---------------------------------------------------------------------------------------------
def test_move_pitch_click_generate_hear_the_result(page, screenshots):
    choose_model(page, "tiny-wavenet")
    torch.manual_seed(0)
    n_parameters = create_model("wavenet", "tiny").n_parameters
    expect(page.get_by_text(f"{n_parameters:,} parameters")).to_be_visible()
    expect(page.get_by_text("no aid: the network learns the pitch itself")).to_be_visible()

    # move the pitch slider one semitone up: its note name follows (62 = D4 -> 63 = D#4)
    pitch = visible(page.get_by_label("range slider for pitch (MIDI)"))
    expect(pitch).to_have_value("62")
    pitch.focus()
    pitch.press("ArrowRight")
    expect(pitch).to_have_value("63")
    expect(page.get_by_text("D#4 · 311.1 Hz")).to_be_visible()

    # a short note, without the pyin measurement, keeps the test quick
    seconds = visible(page.get_by_label("number input for seconds"))
    seconds.fill("0.1")
    seconds.press("Enter")
    page.get_by_label("measure the pitch of the result (pyin)").uncheck()

    expect(page.get_by_text("Press Generate.")).to_be_visible()
    generate_button(page).click()
    expect(page.get_by_text("pitch 63 (D#4), instrument piano")).to_be_visible(timeout=120_000)
    expect(page.get_by_text("real-time factor")).to_be_visible()
    samples, rate = downloaded_clip(page)
    assert rate == 8000 and len(samples) == 800  # 0.1 s at the tiny WaveNet's rate
    page.get_by_label("measure the pitch of the result (pyin)").check()
    page.screenshot(path=str(screenshots / "generate-tiny-wavenet.png"), full_page=True)


def test_the_audio_has_the_pitch_the_header_names(page, screenshots):
    from workbench.audio import Audio
    from workbench.metrics import cents_error, median_f0

    needs("ddsp")
    choose_model(page, "ddsp")
    expect(page.get_by_text("aid: oscillator bank")).to_be_visible()
    pitch = visible(page.get_by_label("range slider for pitch (MIDI)"))
    expect(pitch).to_have_value("60")
    pitch.focus()
    for _ in range(7):  # C4 -> G4
        pitch.press("ArrowRight")
    expect(pitch).to_have_value("67")
    expect(page.get_by_text("G4 · 392.0 Hz")).to_be_visible()
    generate_button(page).click()
    expect(page.get_by_text("pitch 67 (G4)")).to_be_visible(timeout=120_000)
    expect(page.get_by_text(re.compile(r"harmonic share at the harmonics of the asked G4: \d+%"))).to_be_visible()
    samples, rate = downloaded_clip(page)
    f0 = median_f0(Audio(torch.as_tensor(samples, dtype=torch.float32), rate), fmin=200.0, fmax=800.0)
    assert abs(cents_error(f0, 67)) < 50, f0
    page.screenshot(path=str(screenshots / "generate-ddsp-G4.png"), full_page=True)


def _card_pitch(name: str):
    from workbench.models import load_card

    return load_card(name).get("metrics", {}).get("pitch_accuracy")


PITCHED = [name for name in list_checkpoints() if _card_pitch(name) is not None]  # evaluated on notes


@pytest.fixture(scope="module")
def models_page(browser, studio_url):
    """One page for the every-model test: each result's header names the model that made it, so the
    previous model's result, still on the page, cannot answer for the next."""
    page = browser.new_page(viewport=VIEWPORTS["wide"])
    page.goto(studio_url)
    expect(generate_button(page)).to_be_visible(timeout=30_000)
    yield page
    page.close()


@pytest.mark.parametrize("name", PITCHED)
def test_every_model_at_a_non_default_pitch_plays_what_the_header_names(models_page, name):
    """G4 asked in the browser: the header of the model's own column names G4, and a model whose card
    says it plays the asked pitch (90% or more of its evaluation notes) plays G4 within 50 cents, by
    pYIN."""
    from workbench.audio import Audio
    from workbench.metrics import cents_error, median_f0

    page = models_page
    choose_model(page, name)
    header = visible(page.get_by_text(f"{name}: pitch 67 (G4)"))
    expect(header).to_have_count(0)  # nothing from this model yet
    pitch = visible(page.get_by_label("range slider for pitch (MIDI)"))
    expect(pitch).to_be_enabled()
    expect(pitch).to_have_count(1)
    for _ in range(30):  # the keyboard, as a user would; the range is 48-72
        value = int(pitch.input_value())
        if value == 67:
            break
        pitch.press("ArrowRight" if value < 67 else "ArrowLeft")
    expect(pitch).to_have_value("67")
    generate_button(page).click()
    expect(header).to_be_visible(timeout=180_000)
    if _card_pitch(name) >= 0.9:
        samples, rate = downloaded_clip(page)
        f0 = median_f0(Audio(torch.as_tensor(samples, dtype=torch.float32), rate), fmin=200.0, fmax=800.0)
        assert abs(cents_error(f0, 67)) < 50, (name, f0)


def test_a_clip_on_a_vocoder_disables_the_pitch_control_with_its_reason(page):
    needs("griffinlim")
    choose_model(page, "griffinlim")
    pitch = visible(page.get_by_label("range slider for pitch (MIDI)"))
    expect(pitch).to_be_enabled()
    mel = visible(page.get_by_label("mel from an example clip"))
    expect(mel).to_have_value("(none)")  # by default the sliders decide the note
    pick(page, "mel from an example clip", "piano")
    expect(pitch).to_be_disabled()
    expect(visible(page.get_by_text("the clip's mel frames decide the note")).first).to_be_visible()
    expect(visible(page.get_by_text("note set by the clip 'piano': C4"))).to_be_visible()
    pick(page, "mel from an example clip", "(none)")
    expect(pitch).to_be_enabled()


def test_fixed_lengths_and_temperatures_are_shown_as_the_models_declare(page):
    needs("gansynth+comb")
    needs("flowavenet+source")
    needs("griffinlim")
    choose_model(page, "gansynth+comb")
    seconds = visible(page.get_by_label("seconds (fixed)"))
    expect(seconds).to_have_value("0.5")
    expect(seconds).to_be_disabled()
    expect(visible(page.get_by_text("always makes 0.5 s"))).to_be_visible()
    choose_model(page, "flowavenet+source")
    expect(visible(page.get_by_label("number input for temperature"))).to_have_value("0.6")
    choose_model(page, "griffinlim")
    expect(visible(page.get_by_label("number input for temperature"))).to_have_count(0)


def test_compare_a_b_blind_then_reveal(page):
    page.get_by_role("tab", name="Compare A/B").click()
    for which in ("first", "second"):
        pick(page, f"{which} setting: model", "tiny-wavenet")
    seconds = visible(page.get_by_label("number input for seconds"))
    seconds.fill("0.05")
    seconds.press("Enter")
    vote = page.get_by_role("button", name="A is better")
    expect(vote).to_be_disabled()
    page.get_by_role("button", name="Generate A and B").click()
    expect(vote).to_be_enabled(timeout=120_000)
    vote.click()
    expect(page.get_by_text("A was tiny-wavenet (temperature 1)")).to_be_visible()
    expect(vote).to_be_disabled()
    page.get_by_role("tab", name="One model").click()


# ---- the labs and the zoo, at two window sizes ------------------------------------------------------------
LEGIBILITY = """() => Array.from(document.querySelectorAll('img'))
    .filter(i => i.offsetParent !== null && i.src.startsWith('data:image/png'))
    .map(i => ({shown: i.clientWidth, made_for: i.naturalWidth * 72 / DPI}))""".replace("DPI", str(common.PLOT_DPI))

BROKEN_WORDS = """() => {
    const broken = [];
    for (const cell of document.querySelectorAll('.wb-table td, .wb-table th')) {
        if (cell.offsetParent === null) continue;
        const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
        for (let node = walker.nextNode(); node; node = walker.nextNode()) {
            const re = /\\S+/g;
            let m;
            while ((m = re.exec(node.data)) !== null) {
                const range = document.createRange();
                range.setStart(node, m.index);
                range.setEnd(node, m.index + m[0].length);
                const tops = new Set(Array.from(range.getClientRects()).map(r => Math.round(r.top)));
                if (tops.size > 1) broken.push(m[0]);
            }
        }
    }
    return broken;
}"""


def n_plots(page) -> int:
    return len(page.evaluate(LEGIBILITY))


def check_page(page) -> None:
    """Every plot is shown at least as wide as it was drawn for (labels >= 10 px); no word breaks in a table."""
    for plot in page.evaluate(LEGIBILITY):
        assert plot["shown"] >= 0.97 * plot["made_for"], plot
    assert page.evaluate(BROKEN_WORDS) == []


@pytest.mark.parametrize("size", list(VIEWPORTS))
def test_labs_open_with_results_legible_and_unbroken(browser, studio_url, screenshots, size):
    page = browser.new_page(viewport=VIEWPORTS[size])
    try:
        page.goto(studio_url)
        expect(generate_button(page)).to_be_visible(timeout=30_000)
        page.screenshot(path=str(screenshots / f"{size}-generate.png"), full_page=True)
        # each lab shows its default example without a button press
        for tab, plots in (("Phase lab", 5), ("Mu-law lab", 2), ("Receptive field", 1)):
            page.get_by_role("tab", name=tab).click()
            page.wait_for_function(f"() => ({LEGIBILITY})().length >= {plots}", timeout=60_000)
            check_page(page)
            page.screenshot(path=str(screenshots / f"{size}-{tab.replace(' ', '-').lower()}.png"), full_page=True)
        page.get_by_role("tab", name="Phase lab").click()
        expect(visible(page.get_by_text("spectral convergence")).first).to_be_visible()
        if "griffinlim" in list_checkpoints():  # a vocoder's table: its name must not break
            page.get_by_role("button", name="Vocode with griffinlim").click()
            expect(visible(page.get_by_text(re.compile(r"vocoded in \d")))).to_be_visible(timeout=60_000)
            check_page(page)
        page.get_by_role("tab", name="Model zoo").click()
        expect(page.get_by_role("heading", name="A/B votes")).to_be_visible()
        zoo_rows = page.locator(".wb-table tbody tr").filter(visible=True)
        assert zoo_rows.count() >= len(list_checkpoints()) + 1  # every row, the tiny WaveNet's too
        check_page(page)
        assert not re.search(r"\d\.\d{4,}", page.locator(".wb-table").first.inner_text())
        page.screenshot(path=str(screenshots / f"{size}-zoo.png"), full_page=True)
        assert all(shot.stat().st_size > 10_000 for shot in screenshots.glob(f"{size}-*.png"))
    finally:
        page.close()



def test_a_streaming_model_plays_its_first_chunk_while_it_samples_the_rest(browser, studio_url, screenshots):
    """2 s from the tiny WaveNet on its PyTorch sampler (slow enough to watch), on a fresh page: the
    live player is playing while the result and its numbers have not arrived yet, then the
    finished 2 s clip arrives in the "generated" player."""
    if not common.streams(create_model("wavenet", "tiny")):
        pytest.skip("streamed audio needs ffmpeg (Gradio encodes it)")
    page = browser.new_page(viewport=VIEWPORTS["wide"])
    try:
        page.goto(studio_url)
        expect(generate_button(page)).to_be_visible(timeout=30_000)
        choose_model(page, "tiny-wavenet")
        torch.manual_seed(0)
        expect(page.get_by_text(f"{create_model('wavenet', 'tiny').n_parameters:,} parameters")).to_be_visible()
        seconds = visible(page.get_by_label("number input for seconds"))
        seconds.fill("2")
        seconds.press("Enter")
        expect(seconds).to_have_value("2")
        pick(page, "method", "cached")
        page.get_by_label("measure the pitch of the result (pyin)").uncheck()
        generate_button(page).click()
        live = page.get_by_test_id("audio-player-playing while it samples")
        expect(live).to_have_count(1, timeout=60_000)
        live.evaluate("(a) => new Promise(done => { const check = () => (!a.paused && a.currentTime > 0) ? "
                      "done() : setTimeout(check, 50); check(); })", timeout=120_000)
        finished = page.get_by_text("real-time factor")
        assert finished.count() == 0, "the clip was finished before playback started"
        page.screenshot(path=str(screenshots / "generate-streaming.png"), full_page=True)
        expect(finished).to_be_visible(timeout=300_000)
        expect(page.get_by_text(re.compile(r"the first 0\.25 s was ready for the live player after"))).to_be_visible()
        samples, rate = downloaded_clip(page)
        assert rate == 8000 and len(samples) == 16000
    finally:
        page.close()
