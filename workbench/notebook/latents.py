"""What a VQ-VAE's codes carry, measured: the decoder's bits for a note given its own codes, and
given the same codes shuffled in time.

Notebook: notebooks/06_flows_and_latents.ipynb
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..audio import Audio
from ..dsp.quantise import mu_law_encode
from ..errors import ParameterError


def decoder_bits(vq, clip: Audio, cond: dict, codes: torch.Tensor) -> float:
    """Bits per sample the VQ-VAE's decoder needs for ``clip`` given ``codes`` ``(1, frames)``: the
    reconstruction term of its bound (``log_prob`` adds the prior's bits for the codes).

    Raises
    ------
    ParameterError
        ``codes`` do not cover the clip (one code per ``hop`` samples).
    """
    x = vq.check_audio_input(clip)[:1]
    checked = vq.check_cond(cond, 1)
    needed = -(-x.shape[-1] // vq.hop)
    if codes.shape[-1] != needed:
        raise ParameterError(f"codes have {codes.shape[-1]} frames; the clip of {x.shape[-1]} samples needs {needed} "
                             f"(one per hop of {vq.hop})")
    with torch.no_grad():
        logits = vq.decoder_logits(vq.quantiser.lookup(codes.to(vq.device)), checked)[..., : x.shape[-1]]
        target = mu_law_encode(x[:, 0], vq.config.bits)
        nats = F.cross_entropy(logits, target)
    return float(nats) / math.log(2)


def own_vs_shuffled(vq, clip: Audio, cond: dict, generator: int = 0) -> dict:
    """Decoder bits per sample with the note's own codes and with the same codes in a random order.

    The same codes, so the same codebook vectors and the same overall spectrum; only *when* each
    appears changes. The gap says how much of the note lives in the order of its codes.

    Returns
    -------
    dict: ``own``, ``shuffled`` (bits per sample), ``codes``, ``shuffled_codes``.
    """
    encoding = vq.encode(clip[0] if clip.batch_size > 1 else clip, cond)
    codes = encoding.data["codes"]
    g = torch.Generator().manual_seed(int(generator))
    shuffled = codes[:, torch.randperm(codes.shape[1], generator=g)]
    return {"own": decoder_bits(vq, clip, cond, codes), "shuffled": decoder_bits(vq, clip, cond, shuffled),
            "codes": codes, "shuffled_codes": shuffled, "encoding": encoding}


def describe_codes(result: dict) -> str:
    """One sentence on :func:`own_vs_shuffled`, worded by its numbers."""
    own, shuffled = result["own"], result["shuffled"]
    if shuffled > own + 0.05:
        return (f"its own codes cost the decoder {own:.2f} bits per sample, the shuffled ones {shuffled:.2f}: "
                f"putting the same codes in the wrong order costs {shuffled - own:.2f} more bits per sample.")
    if own > shuffled + 0.05:
        return (f"the shuffled codes cost the decoder less ({shuffled:.2f} against {own:.2f} bits per sample): "
                "this checkpoint's codes say little about when things happen.")
    return (f"own and shuffled codes cost about the same ({own:.2f} and {shuffled:.2f} bits per sample): "
            "the order of the codes hardly matters to this decoder.")
