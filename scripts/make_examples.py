"""Render the example clips shipped in ``assets/audio/`` with our own SoundFont renderer.

Each clip is real sampled instruments from the FluidR3 GM SoundFont, rendered offline by
FluidSynth (no reverb, no chorus) at 16 kHz, mixed to mono, peak-normalised and written as
16-bit wav. Rendering is deterministic: running this twice gives the same files.

Usage::

    python scripts/make_examples.py            # writes assets/audio/*.wav
    python scripts/make_examples.py --out DIR  # somewhere else

Needs ``apt-get install fluidsynth fluid-soundfont-gm`` and ``pip install pyfluidsynth``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from workbench.audio import Audio
from workbench.data import ASSETS, SOUNDFONT_PROGRAMS, SoundFontRenderer

SAMPLE_RATE = 16_000
PEAK = 0.8
VELOCITY = 100

# name -> (program, seconds, events); an event is (onset_s, duration_s, midi, velocity)
CLIPS: dict[str, tuple[int, float, list[tuple[float, float, int, int]]]] = {
    "piano": (SOUNDFONT_PROGRAMS["piano"], 2.0, [(0.0, 1.5, 60, VELOCITY)]),  # C4
    "flute": (SOUNDFONT_PROGRAMS["flute"], 2.0, [(0.0, 1.6, 72, VELOCITY)]),  # C5
    "strings": (SOUNDFONT_PROGRAMS["strings"], 2.0, [(0.0, 1.2, 60, VELOCITY)]),  # C4, long release
    # C major triad C4 E4 G4, struck together
    "chord": (
        SOUNDFONT_PROGRAMS["piano"],
        2.0,
        [(0.0, 1.5, midi, VELOCITY) for midi in (60, 64, 67)],
    ),
    # six notes rising and falling in C major, 0.45 s apart, slightly detached
    "melody": (
        SOUNDFONT_PROGRAMS["flute"],
        3.0,
        [(0.45 * i, 0.4, midi, VELOCITY) for i, midi in enumerate((72, 74, 76, 79, 76, 72))],
    ),
}


def render_clips(sample_rate: int = SAMPLE_RATE) -> dict[str, Audio]:
    """Render every clip in :data:`CLIPS`, peak-normalised to :data:`PEAK`."""
    renderer = SoundFontRenderer(sample_rate)
    clips = {}
    for name, (program, seconds, events) in CLIPS.items():
        samples = renderer.render_events(events, seconds, program)  # (time,) mono
        clips[name] = Audio(samples, sample_rate).normalise(PEAK)
    return clips


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ASSETS / "audio", help="output folder")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for name, audio in render_clips().items():
        path = audio.save(args.out / f"{name}.wav")
        logging.info("%s: %.2f s, %d bytes", path, audio.seconds, path.stat().st_size)


if __name__ == "__main__":
    main()
