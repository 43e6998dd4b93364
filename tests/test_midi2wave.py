"""midi2wave: a WaveNet that plays a piano roll, causal in the audio, free to look ahead in the score."""

import pytest
import torch

from workbench.data import NoteEvent, collate
from workbench.errors import ParameterError
from workbench.models import create_model

EVENTS = [NoteEvent(0.0, 0.1, 60, 100), NoteEvent(0.1, 0.1, 64, 90), NoteEvent(0.2, 0.15, 67, 110)]


def _tiny():
    torch.manual_seed(0)
    model = create_model("midi2wave", "tiny").eval()
    with torch.no_grad():  # a conditioning path that is not zero, so the tests can see it
        torch.nn.init.normal_(model.local_proj.weight, std=0.5)
    return model


def test_events_land_in_the_frame_of_their_onset():
    model = _tiny()
    c = model.config
    cond = model.roll_from_events(EVENTS)
    for e in EVENTS:
        row, frame = e.pitch - c.pitch_range[0], int(e.onset_seconds * c.sample_rate // c.hop_length)
        assert cond["onsets"][row, frame] == 1 and cond["onsets"][row].sum() == 1
        assert cond["pianoroll"][row, frame] == 1
        assert cond["velocities"][row, frame] == pytest.approx(e.velocity / 127)
    assert cond["pianoroll"].shape == (model.n_pitches, int((0.35 + 0.3) * c.sample_rate / c.hop_length) + 2)


def test_the_audio_is_causal_and_the_score_may_look_ahead():
    model = _tiny().double()
    cond = {k: v.double() for k, v in model.roll_from_events(EVENTS).items()}
    n = 400
    x = torch.randn(1, model.config.residual_channels, n, dtype=torch.float64, requires_grad=True)
    g, local, _ = model.prepare_cond(cond, 1, n)
    t = 200
    bias = model.layer_bias(g, local, torch.arange(n))
    model.forward_features(x, bias)[0, :, t].sum().backward()
    assert x.grad[..., t + 1:].abs().max() == 0  # no future sample reaches the prediction at t
    assert x.grad[..., t].abs().max() > 0
    # the score ahead does: the bias at t comes from a conv net over neighbouring frames
    roll = cond["pianoroll"].clone().requires_grad_(True)
    g, local, _ = model.prepare_cond({**cond, "pianoroll": roll}, 1, n)
    frame_t = (t + model.config.hop_length // 2) // model.config.hop_length
    local[0, :, frame_t].sum().backward()
    assert roll.grad[:, frame_t + 1:].abs().sum() > 0


def test_every_sampler_plays_the_same_codes_under_a_seed():
    model = _tiny()
    cond = model.roll_from_events(EVENTS)
    codes = {m: model.sample_codes(1, 300, cond, 1.0, torch.Generator().manual_seed(3), method=m)
             for m in ("fast", "cached", "naive")}
    assert torch.equal(codes["fast"], codes["cached"]) and torch.equal(codes["cached"], codes["naive"])


def test_the_score_decides_the_length_and_bad_scores_are_refused():
    model = _tiny()
    audio = model.play(EVENTS, generator=0)
    cond = model.roll_from_events(EVENTS)
    assert audio.n_samples == cond["pianoroll"].shape[-1] * model.config.hop_length
    with pytest.raises(ParameterError, match="pitch 30 is outside"):
        model.roll_from_events([NoteEvent(0.0, 0.1, 30, 100)])
    with pytest.raises(ParameterError, match="pianoroll has shape"):
        model.generate(1, cond={"pianoroll": torch.zeros(7, 20)})
    default = model.generate(1, seconds=model.default_seconds, generator=0)  # no score: the arpeggio
    assert default.n_samples == round(model.default_seconds * model.sample_rate)


def test_another_score_changes_what_is_played():
    model = _tiny()
    a = model.play(EVENTS, generator=1).samples
    b = model.play([NoteEvent(e.onset_seconds, e.duration_seconds, e.pitch + 5, e.velocity) for e in EVENTS],
                   generator=1).samples
    assert a.shape == b.shape and not torch.equal(a, b)


@pytest.mark.slow
def test_a_few_steps_on_a_rendered_piece_lower_the_loss(tmp_path):
    from workbench.scores import Scores, ScoreTargets, events_to_midi

    events_to_midi([NoteEvent(0.1 * i, 0.1, 60 + 2 * (i % 5), 100) for i in range(20)], tmp_path / "run.mid", [73])
    model = create_model("midi2wave", "tiny", segment_seconds=0.5)
    data = ScoreTargets(Scores(files=tmp_path, segment_seconds=0.5, sample_rate=model.sample_rate,
                               hop_length=model.config.hop_length, pitch_range=model.config.pitch_range))
    batch = collate([data[i] for i in range(len(data))])
    opt = model.configure_optimizers()
    gen = torch.Generator().manual_seed(0)
    losses = [model.train().train_step(batch, opt, generator=gen)["loss"] for _ in range(60)]
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.25  # nats per sample
