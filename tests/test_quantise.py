"""Mu-law and uniform quantisation: parity with torchaudio and the formula, error bounds, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torchaudio.functional as AF

from workbench.audio import Audio
from workbench.dsp.quantise import (
    mu_law_compress,
    mu_law_decode,
    mu_law_encode,
    mu_law_expand,
    quantise,
    uniform_decode,
    uniform_encode,
)
from workbench.errors import ParameterError

BIT_DEPTHS = range(2, 17)


def _samples(dtype=torch.float32) -> torch.Tensor:
    """Edges, a dense grid, random values and very quiet values, all in [-1, 1]."""
    g = torch.Generator().manual_seed(0)
    return torch.cat(
        [
            torch.tensor([-1.0, 0.0, 1.0]),
            torch.linspace(-1, 1, 2**16 + 1),
            torch.rand(20_000, generator=g) * 2 - 1,
            (torch.rand(2_000, generator=g) * 2 - 1) * 1e-3,
        ]
    ).to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("bits", BIT_DEPTHS)
def test_mu_law_encode_equals_torchaudio_bit_for_bit(bits, dtype):
    x = _samples(dtype)
    assert torch.equal(mu_law_encode(x, bits), AF.mu_law_encoding(x, 2**bits))


@pytest.mark.parametrize("bits", BIT_DEPTHS)
def test_mu_law_decode_equals_torchaudio_bit_for_bit_for_every_code(bits):
    codes = torch.arange(2**bits)
    assert torch.equal(mu_law_decode(codes, bits), AF.mu_law_decoding(codes, 2**bits))


@pytest.mark.parametrize("bits", BIT_DEPTHS)
def test_mu_law_encode_maps_edges_to_first_middle_and_last_code(bits):
    codes = mu_law_encode(torch.tensor([-1.0, 0.0, 1.0]), bits)
    assert codes.tolist() == [0, 2 ** (bits - 1), 2**bits - 1]
    decoded = mu_law_decode(torch.tensor([0, 2**bits - 1]), bits)
    assert torch.allclose(decoded, torch.tensor([-1.0, 1.0]), atol=1e-6)


@pytest.mark.parametrize("mu", [1.0, 15.0, 255.0, 65535.0])
def test_mu_law_compress_matches_the_formula_in_float64(mu):
    x = _samples(torch.float64)
    xn = x.numpy()
    reference = np.sign(xn) * np.log1p(mu * np.abs(xn)) / np.log1p(mu)  # F(x)
    np.testing.assert_allclose(mu_law_compress(x, mu).numpy(), reference, rtol=0, atol=1e-14)
    # float32 input is computed in float32: a few ulps from the float64 formula
    np.testing.assert_allclose(
        mu_law_compress(x.float(), mu).double().numpy(), reference, rtol=0, atol=5e-7
    )


def test_mu_law_compress_keeps_edges_exactly_and_expand_inverts_it():
    edges = torch.tensor([-1.0, 0.0, 1.0], dtype=torch.float64)
    assert mu_law_compress(edges).tolist() == [-1.0, 0.0, 1.0]
    x = _samples(torch.float64)
    assert torch.allclose(mu_law_expand(mu_law_compress(x)), x, rtol=0, atol=1e-12)


@pytest.mark.parametrize("bits", BIT_DEPTHS)
def test_uniform_round_trip_error_is_at_most_half_a_step(bits):
    # Levels are 2 / (2**bits - 1) apart; rounding to the nearest is off by at most half of
    # that, 1 / (2**bits - 1), plus float32 rounding (one ulp at 1.0 = 2**-23).
    x = _samples()
    error = (uniform_decode(uniform_encode(x, bits), bits) - x).abs().max()
    assert float(error) <= 1 / (2**bits - 1) + 2**-23
    # and the bound is tight: the dense grid comes close to it
    assert float(error) >= 0.9 / (2**bits - 1)


@pytest.mark.parametrize("bits", BIT_DEPTHS)
def test_mu_law_round_trip_error_is_bounded_by_the_slope_of_the_expansion(bits):
    # Encoding rounds y = F(x) to the nearest of 2**bits levels 2 h apart, h = 1 / (2**bits - 1),
    # so |y - y_hat| <= h. The expansion x = sign(y) ((1 + mu)**|y| - 1) / mu has slope
    #     dx/dy = ln(1 + mu) / mu * (1 + mu)**|y| = ln(1 + mu) / mu * (1 + mu |x|),
    # growing with |y|, so over the cell the error is at most
    #     |x - x_hat| <= h * ln(1 + mu) / mu * (1 + mu |x|) * (1 + mu)**h.
    # Float32 rounding moves y by a few ulps more: we widen h by eps = 2**-20.
    levels = 2**bits
    mu = levels - 1
    h = 1 / (levels - 1) + 2**-20
    x = _samples()
    error = (mu_law_decode(mu_law_encode(x, bits), bits) - x).abs().double()
    bound = h * math.log1p(mu) / mu * (1 + mu * x.abs().double()) * (1 + mu) ** h
    ratio = error / bound
    assert float(ratio.max()) <= 1.0
    assert float(ratio.max()) >= 0.7  # tight, not vacuous


def test_mu_law_gives_quiet_samples_finer_steps_than_uniform():
    quiet = (torch.rand(1000, generator=torch.Generator().manual_seed(1)) * 2 - 1) * 0.01
    mu_error = (quantise(quiet, 8, "mu_law") - quiet).abs().max()
    uniform_error = (quantise(quiet, 8, "uniform") - quiet).abs().max()
    assert float(mu_error) < float(uniform_error) / 5


def test_values_outside_the_range_are_clipped_to_the_end_codes():
    codes = mu_law_encode(torch.tensor([-3.0, 2.5]), 8)
    assert codes.tolist() == [0, 255]
    assert uniform_encode(torch.tensor([-3.0, 2.5]), 8).tolist() == [0, 255]


@pytest.mark.parametrize("decode", [mu_law_decode, uniform_decode])
@pytest.mark.parametrize("codes", [[0, 256], [-1, 3]])
def test_codes_out_of_range_raise_naming_the_span_and_expected_range(decode, codes):
    with pytest.raises(ParameterError) as info:
        decode(torch.tensor(codes), 8)
    message = str(info.value)
    assert f"{min(codes)}..{max(codes)}" in message
    assert "0..255" in message and "bits=8" in message


@pytest.mark.parametrize("bits", [0, 17, 8.0, True])
def test_bad_bit_depth_raises(bits):
    with pytest.raises(ParameterError, match=r"bits=.*1\.\.16"):
        mu_law_encode(torch.zeros(3), bits)


def test_non_positive_mu_raises():
    with pytest.raises(ParameterError, match=r"mu=0.*positive"):
        mu_law_encode(torch.zeros(3), 8, mu=0)


def test_unknown_quantiser_kind_raises_naming_the_choices():
    with pytest.raises(ParameterError, match=r"kind='alaw'.*'mu_law' or 'uniform'"):
        quantise(torch.zeros(3), 8, kind="alaw")


def test_quantise_returns_audio_for_audio_and_tensor_for_tensor():
    x = torch.linspace(-1, 1, 1600)
    out = quantise(Audio(x, 16000), bits=4)
    assert isinstance(out, Audio) and out.sample_rate == 16000
    assert torch.equal(out.samples[0, 0], quantise(x, bits=4))
    assert isinstance(quantise(x, bits=4), torch.Tensor)
    # 4-bit mu-law leaves at most 16 distinct values
    assert torch.unique(out.samples).numel() <= 16
