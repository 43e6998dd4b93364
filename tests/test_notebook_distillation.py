"""Notebook 12's helpers (workbench.notebook.distillation)."""

import pytest
import torch

from workbench import Audio
from workbench.errors import ParameterError
from workbench.models import create_model
from workbench.notebook import distillation as dist


def _student(name="clarinet"):
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = create_model(name, "tiny").eval()
        with torch.no_grad():
            for flow in model.flows:  # not the identity
                flow.head[3].weight.normal_(std=0.3)
    return model


def test_diversity_is_zero_for_copies_symmetric_and_grows_with_difference():
    t = torch.arange(4000) / 8000
    tone = torch.sin(2 * torch.pi * 262 * t)
    assert dist.diversity([tone, tone, tone], 8000) == 0.0
    a = [tone, 0.5 * tone, torch.sin(2 * torch.pi * 330 * t)]
    assert dist.diversity(a, 8000) == pytest.approx(dist.diversity(a[::-1], 8000))
    noise = torch.randn(3, 4000, generator=torch.Generator().manual_seed(0))
    assert dist.diversity([tone, tone + 0.01 * noise[0]], 8000) < dist.diversity([tone, noise[1]], 8000)
    assert dist.diversity(Audio(torch.stack(a)[:, None], 8000), 8000) == pytest.approx(dist.diversity(a, 8000))


def test_diversity_refuses_a_single_or_a_too_short_clip():
    with pytest.raises(ParameterError, match="at least 2"):
        dist.diversity([torch.zeros(4000)], 8000)
    with pytest.raises(ParameterError, match="n_fft"):
        dist.diversity([torch.zeros(300), torch.zeros(300)], 8000)


def test_iaf_directions_agree_on_the_density_and_the_noise():
    d = dist.iaf_directions(_student(), n_samples=300)
    assert d.n_samples == 300 and d.parallel_seconds > 0 and d.sequential_seconds > 0
    assert abs(d.log_q_parallel - d.log_q_sequential) < 1e-3 * abs(d.log_q_parallel)
    assert d.max_z_error < 1e-3


def test_spread_of_a_model_and_the_real_notes_near_a_condition():
    student = _student("parallel_wavenet")
    audio, spread = dist.spread_of(student, {"pitch": 62}, n=3, seconds=0.1, generator=0)
    assert audio.batch_size == 3 and spread > 0
    real = dist.real_notes_near(student.config, 62, "piano", 0.1)
    low, high = student.config.pitch_range
    assert len(real) == min(high, 64) - max(low, 60) + 1  # pitches 60..64, one velocity
    assert all(clip.shape == (800,) for clip in real)


def test_generation_speed_reports_both_rates_and_their_ratio():
    student = _student()
    speed = dist.generation_speed(student.teacher(), student, teacher_seconds=0.005, student_seconds=0.05)
    ratio = speed["student_samples_per_second"] / speed["teacher_samples_per_second"]
    assert speed["speedup"] == pytest.approx(ratio, rel=0.01)
    assert speed["student_real_time_factor"] == pytest.approx(speed["student_samples_per_second"] / 8000, rel=0.01)
