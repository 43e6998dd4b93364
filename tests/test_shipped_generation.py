"""Every shipped checkpoint generates the same audio as when its digest was recorded.

The digests in ``tests/data/shipped_generation.json`` were recorded before the contract
restructuring (capabilities, shared note config, options as arguments) by running this file as a
script (``python tests/test_shipped_generation.py --record``). A refactor that changes what a
checkpoint makes fails here. Audio is compared as the int16 samples a WAV file holds.

Changed on purpose since, each in its own commit: ``vae`` (generate draws from p(x | z) instead of
playing the decoder's mean); ``wavegan+source`` and ``gansynth+comb`` (retrained, the step chosen on
the validation notes); new checkpoints are added with ``--record NAME``. Aided checkpoints moved to their own names (``wavenet+source``...)
with the same digests.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest
import torch

from workbench.data import examples
from workbench.models import Vocoder, list_checkpoints, load_model

DIGESTS = Path(__file__).parent / "data" / "shipped_generation.json"
SECONDS = 0.25


def _digest(audio) -> str:
    return hashlib.sha256(audio.to_int16(0).tobytes()).hexdigest()[:16]


def _mel_frames(model, clip):
    """The vocoder's mel frames of an example clip (the studio's way of vocoding a real sound)."""
    return model.frames_from_clip("mel", clip.to_mono().samples[0, 0])


def digests(name: str) -> dict[str, str]:
    """What ``name``'s shipped checkpoint makes: default conditioning, and mel from a real clip.

    Run on one thread: a float sum split across threads rounds differently.
    """
    torch.set_num_threads(1)
    model = load_model(name)
    out = {"default": _digest(model.generate(1, seconds=SECONDS, generator=0))}
    if isinstance(model, Vocoder):
        clip = examples()["piano"].resample(model.sample_rate).trim(SECONDS)
        mel = _mel_frames(model, clip)
        out["piano_mel"] = _digest(model.generate(1, seconds=SECONDS, cond={"mel": mel}, generator=0))
    return out


RECORDED = json.loads(DIGESTS.read_text()) if DIGESTS.exists() else {}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(RECORDED))
def test_shipped_checkpoint_generates_what_it_did_before(name):
    if name not in list_checkpoints():
        pytest.fail(f"{name} was recorded but ships no checkpoint now")
    assert digests(name) == RECORDED[name]


if __name__ == "__main__":
    if "--record" in sys.argv:  # --record [NAME ...]: those checkpoints (default: every model of audio)
        from workbench.models import model_class
        from workbench.models.base import GenerativeModel

        names = sys.argv[sys.argv.index("--record") + 1:] or [
            n for n in list_checkpoints() if issubclass(model_class(n), GenerativeModel)]
        DIGESTS.write_text(json.dumps({**RECORDED, **{n: digests(n) for n in names}}, indent=2, sort_keys=True) + "\n")
        print(DIGESTS.read_text())
