"""Sample quantisation: uniform (mid-rise and mid-tread) and mu-law companding at any bit depth.

Mu-law (ITU-T G.711, used by WaveNet with 8 bits) squeezes the amplitude range before
uniform quantisation so that quiet samples get finer steps than loud ones:

    F(x) = sign(x) * ln(1 + mu |x|) / ln(1 + mu),   mu = 2**bits - 1

Notebook: notebooks/02_mu_law.ipynb
"""

from __future__ import annotations

import torch

from ..audio import like, to_tensor
from ..errors import ParameterError


def _check_bits(bits) -> int:
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 16:
        raise ParameterError(f"bits={bits!r} must be an integer in 1..16; 8 is what WaveNet uses")
    return bits


def _mu(bits: int, mu) -> float:
    if mu is None:
        return float(2**bits - 1)
    if not float(mu) > 0:
        raise ParameterError(f"mu={mu!r} must be positive; leave it None for 2**bits - 1")
    return float(mu)


def mu_law_compress(x, mu: float = 255.0):
    """Continuous mu-law companding F(x) of values in [-1, 1] (no quantisation).

    Examples
    --------
    >>> import torch
    >>> mu_law_compress(torch.tensor([-1.0, 0.0, 1.0])).tolist()
    [-1.0, 0.0, 1.0]
    """
    t, sr = to_tensor(x)
    mu_t = torch.tensor(float(mu), dtype=t.dtype if t.is_floating_point() else torch.float32)
    y = torch.sign(t) * torch.log1p(mu_t * t.abs()) / torch.log1p(mu_t)
    return like(x, y, sr)


def mu_law_expand(y, mu: float = 255.0):
    """Inverse of :func:`mu_law_compress`."""
    t, sr = to_tensor(y)
    mu_t = torch.tensor(float(mu), dtype=t.dtype if t.is_floating_point() else torch.float32)
    x = torch.sign(t) * (torch.exp(t.abs() * torch.log1p(mu_t)) - 1.0) / mu_t
    return like(y, x, sr)


def mu_law_encode(x, bits: int = 8, mu: float | None = None) -> torch.Tensor:
    """Mu-law encode samples in [-1, 1] to integer codes ``0 .. 2**bits - 1``.

    Bit for bit the same as ``torchaudio.functional.mu_law_encoding(x, 2**bits)``.

    Parameters
    ----------
    x : Tensor or Audio, float in [-1, 1] (values outside are clipped)
    bits : int
        1..16.
    mu : float, optional
        Companding strength; ``2**bits - 1`` when None.

    Returns
    -------
    Tensor of int64 codes, same shape as ``x``'s samples.

    Raises
    ------
    ParameterError
        ``bits`` outside 1..16 or ``mu <= 0``.

    Examples
    --------
    >>> import torch
    >>> mu_law_encode(torch.tensor([-1.0, 0.0, 1.0])).tolist()
    [0, 128, 255]
    """
    bits = _check_bits(bits)
    levels = 2**bits
    mu_f = _mu(bits, mu)
    t, _ = to_tensor(x)
    if not t.is_floating_point():
        t = t.float()
    t = t.clamp(-1.0, 1.0)
    mu_t = torch.tensor(mu_f, dtype=t.dtype)
    y = torch.sign(t) * torch.log1p(mu_t * t.abs()) / torch.log1p(mu_t)  # F(x) in [-1, 1]
    codes = ((y + 1) / 2 * (levels - 1) + 0.5).to(torch.int64)  # round to the nearest level
    return codes


def mu_law_decode(codes, bits: int = 8, mu: float | None = None) -> torch.Tensor:
    """Integer codes ``0 .. 2**bits - 1`` back to float samples in [-1, 1].

    Bit for bit the same as ``torchaudio.functional.mu_law_decoding(codes, 2**bits)``.

    Raises
    ------
    ParameterError
        Codes outside ``0 .. 2**bits - 1``.
    """
    bits = _check_bits(bits)
    levels = 2**bits
    mu_f = _mu(bits, mu)
    codes = torch.as_tensor(codes)
    if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) > levels - 1):
        raise ParameterError(
            f"codes span {int(codes.min())}..{int(codes.max())}; expected 0..{levels - 1} "
            f"for bits={bits}"
        )
    y = codes.float() / (levels - 1) * 2 - 1  # back to F(x) in [-1, 1]
    mu_t = torch.tensor(mu_f, dtype=y.dtype)
    return torch.sign(y) * (torch.exp(y.abs() * torch.log1p(mu_t)) - 1.0) / mu_t


def uniform_encode(x, bits: int = 8) -> torch.Tensor:
    """Uniform (linear PCM) quantisation of [-1, 1] to codes ``0 .. 2**bits - 1``."""
    bits = _check_bits(bits)
    levels = 2**bits
    t, _ = to_tensor(x)
    t = t.float().clamp(-1.0, 1.0)
    return ((t + 1) / 2 * (levels - 1) + 0.5).to(torch.int64)


def _check_codes(codes, bits: int) -> torch.Tensor:
    """``codes`` as a tensor, or a ``ParameterError`` naming the span found and the one expected."""
    codes = torch.as_tensor(codes)
    top = 2**bits - 1
    if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) > top):
        raise ParameterError(f"codes span {int(codes.min())}..{int(codes.max())}; expected 0..{top} for bits={bits}")
    return codes


def uniform_decode(codes, bits: int = 8) -> torch.Tensor:
    """Inverse of :func:`uniform_encode` (to the centre of each level)."""
    bits = _check_bits(bits)
    levels = 2**bits
    codes = _check_codes(codes, bits)
    return codes.float() / (levels - 1) * 2 - 1


def mid_tread_encode(x, bits: int = 8) -> torch.Tensor:
    """Uniform quantisation with a level at zero (mid-tread), as linear PCM stores samples.

    Sample ``x`` becomes the signed integer ``round(x * 2**(bits - 1))``, clipped to
    ``-2**(bits - 1) .. 2**(bits - 1) - 1`` (8-bit PCM: -128..127, so +1.0 clips to 127/128),
    returned offset by ``2**(bits - 1)`` as a code ``0 .. 2**bits - 1``. Unlike
    :func:`uniform_encode` (mid-rise: levels at +-half a step, none at zero) silence stays silent.

    Examples
    --------
    >>> import torch
    >>> mid_tread_encode(torch.tensor([-1.0, 0.0, 0.004, 1.0]), bits=8).tolist()
    [0, 128, 129, 255]
    """
    bits = _check_bits(bits)
    half = 2 ** (bits - 1)
    t, _ = to_tensor(x)
    signed = torch.round(t.float().clamp(-1.0, 1.0) * half).clamp(-half, half - 1)  # ties to even
    return (signed + half).to(torch.int64)


def mid_tread_decode(codes, bits: int = 8) -> torch.Tensor:
    """Inverse of :func:`mid_tread_encode`: code ``c`` -> ``(c - 2**(bits - 1)) / 2**(bits - 1)``."""
    bits = _check_bits(bits)
    levels = 2**bits
    codes = _check_codes(codes, bits)
    half = levels // 2
    return (codes.float() - half) / half


def quantise(x, bits: int = 8, kind: str = "mu_law"):
    """Quantise and dequantise: what a signal sounds like after ``bits``-bit storage.

    Parameters
    ----------
    x : Tensor or Audio
    bits : int
    kind : {"mu_law", "uniform", "mid_tread"}
        ``"uniform"`` spreads ``2**bits`` levels evenly over [-1, 1] with none at zero (mid-rise);
        ``"mid_tread"`` is linear PCM, with a level at zero (:func:`mid_tread_encode`).

    Returns
    -------
    Same kind as ``x``.

    Examples
    --------
    >>> import torch
    >>> y = quantise(torch.linspace(-1, 1, 5), bits=8, kind="uniform")
    >>> bool((y - torch.linspace(-1, 1, 5)).abs().max() < 1 / 255 + 1e-6)  # at most half a step
    True
    """
    t, sr = to_tensor(x)
    if kind == "mu_law":
        y = mu_law_decode(mu_law_encode(t, bits), bits)
    elif kind == "uniform":
        y = uniform_decode(uniform_encode(t, bits), bits)
    elif kind == "mid_tread":
        y = mid_tread_decode(mid_tread_encode(t, bits), bits)
    else:
        raise ParameterError(f"kind={kind!r} is not a quantiser; use 'mu_law' or 'uniform' "
                             "(or 'mid_tread': linear PCM, with a level at zero)")
    return like(x, y, sr)
