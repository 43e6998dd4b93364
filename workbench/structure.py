"""Long-range structure, measured: a structure score of audio, and what the levels of a code hierarchy do.

This module sits beside :mod:`workbench.evaluate` (it measures models, importing them only inside
functions). Two kinds of measurement:

**The structure score** (pure functions of audio, computed the same way on corpus audio and on
samples). Music repeats itself: a phrase comes back after a few seconds, and a tune stays in one
key. Both show in *chroma* (the energy of each of the 12 pitch classes, frame by frame;
``librosa.feature.chroma_stft``):

- ``repetition``: the cosine similarity of chroma frames ``lag`` seconds apart, averaged over the
  clip, for lags of 1 to 8 s, minus that of two frames drawn anywhere in the clip (at least the
  shortest lag apart). A
  phrase that returns after ``lag`` seconds lifts its lag above that baseline; a sound without
  order (noise, or the same notes shuffled in time) stays at it. The score is the largest excess.
- ``pitch_class_kl``: the KL divergence (bits) from the pitch-class histogram of the second half
  of the clip to that of the first: near 0 when the clip keeps its key, larger when it wanders.
  Stationary noise also scores near 0 (its chroma is flat in both halves), and a short melody's
  halves differ by the notes they happen to hold: read it beside ``repetition``, never alone.

**The hierarchy's measurements**, for models that declare
:class:`~workbench.models._levels.CodeHierarchy`, on held-out pieces:

- :func:`level_consistency`: each conditional stage's bits per target given the true codes of the
  level above, against the same codes shuffled in time and codes taken from another piece. A
  stage that uses its conditioning does worse on the wrong codes.
- :func:`prior_vs_unigram`: every code level's bits per code under the model (the prior, an
  upsampler or an upper WaveNet) against a unigram model of that level's codes fitted on the
  training split.

Notebook: notebooks/11_long_range_structure.ipynb
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .audio import Audio
from .errors import ParameterError

#: Lags (seconds) at which the repetition score looks for returning material.
DEFAULT_LAGS = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0)


# ---- the structure score ------------------------------------------------------------------------------
def chroma_frames(x, sample_rate: int, hop_seconds: float = 0.1) -> np.ndarray:
    """Chroma of one clip ``(time,)``: ``(12, frames)``, one frame every ``hop_seconds``.

    What ``librosa.feature.chroma_stft(y, tuning=0)`` computes (tested against it): the power
    spectrogram (Hann window, centred frames) through librosa's chroma filter bank, each frame
    scaled to a maximum of 1 (a silent frame stays all zeros). The FFT spans about a quarter of a
    second (2048 samples at 8 kHz) so that neighbouring semitones of low notes separate. The
    spectrogram is torch's: librosa's own compiles itself on first use, which takes longer than
    scoring a whole set of clips.
    """
    import librosa

    y = torch.as_tensor(x, dtype=torch.float32).reshape(-1).cpu()
    hop = max(1, int(round(hop_seconds * sample_rate)))
    n_fft = 2 ** int(math.ceil(math.log2(max(256, 0.25 * sample_rate))))
    if y.shape[0] < n_fft:
        y = torch.nn.functional.pad(y, (0, n_fft - y.shape[0]))
    power = torch.stft(y, n_fft, hop, window=torch.hann_window(n_fft), center=True, pad_mode="constant",
                       return_complex=True).abs().pow(2).numpy()  # (1 + n_fft / 2, frames)
    # tuning=0: the pitch classes of A440 (rendered music is in tune)
    filters = librosa.filters.chroma(sr=sample_rate, n_fft=n_fft, tuning=0.0)  # (12, 1 + n_fft / 2)
    return librosa.util.normalize(filters @ power, norm=np.inf, axis=0)


def _unit(chroma: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(chroma, axis=0, keepdims=True)
    return chroma / np.maximum(norm, 1e-8)


def lag_similarity(chroma: np.ndarray, lag_frames: int) -> float:
    """Mean cosine similarity of chroma frames ``lag_frames`` apart (``chroma`` ``(12, frames)``)."""
    u = _unit(chroma)
    if lag_frames < 1 or lag_frames >= u.shape[1]:
        raise ParameterError(f"lag of {lag_frames} frames does not fit a clip of {u.shape[1]} frames")
    return float((u[:, :-lag_frames] * u[:, lag_frames:]).sum(0).mean())


def pitch_class_kl(chroma: np.ndarray, eps: float = 1e-3) -> float:
    """KL divergence (bits) from the second half's pitch-class histogram to the first half's.

    Each half's chroma is summed over time and normalised to a distribution over the 12 pitch
    classes (plus ``eps`` of each, so that a class one half never plays costs a finite amount).
    """
    half = chroma.shape[1] // 2
    if half < 1:
        raise ParameterError("the clip is too short for two halves of chroma frames")
    p, q = (h / h.sum() for h in (chroma[:, :half].sum(1) + eps, chroma[:, half:].sum(1) + eps))
    return float((p * np.log2(p / q)).sum())


def structure_score(x, sample_rate: int, lags_seconds=None, hop_seconds: float = 0.1) -> dict:
    """The structure of one clip ``(time,)``: repetition above chance, and key consistency.

    Parameters
    ----------
    x : array or Tensor ``(time,)``
    sample_rate : int
    lags_seconds : sequence of float, optional
        Lags to look at. Default: 1 to 8 s, those no longer than half the clip (for a clip under
        2 s, a quarter and a half of it).
    hop_seconds : float
        Chroma frame spacing.

    Returns
    -------
    dict with ``repetition`` (the largest excess of lag similarity over the baseline),
    ``pitch_class_kl`` (bits), ``lags_seconds``, ``profile`` (the similarity at each lag) and
    ``baseline`` (the mean similarity of all pairs of frames at least the shortest lag apart: what a
    lag scores when nothing returns there in particular).

    Raises
    ------
    ParameterError
        A clip too short for any lag.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.arange(8000 * 8) / 8000
    >>> phrase = np.sin(2 * np.pi * np.where(t % 2 < 1, 440.0, 330.0) * t)  # A, E, A, E ... every second
    >>> s = structure_score(phrase, 8000)
    >>> s["lags_seconds"][:2], s["profile"][1] > s["profile"][0]
    ([1.0, 2.0], True)
    """
    chroma = chroma_frames(x, sample_rate, hop_seconds)
    n_frames = chroma.shape[1]
    seconds = n_frames * hop_seconds
    if lags_seconds is None:
        lags_seconds = [lag for lag in DEFAULT_LAGS if lag <= seconds / 2] or [seconds / 4, seconds / 2]
    lags = [(float(s), int(round(s / hop_seconds))) for s in lags_seconds]
    lags = [(s, f) for s, f in lags if 1 <= f < n_frames]
    if not lags:
        raise ParameterError(f"a clip of {seconds:.2f} s has no room for lags {list(lags_seconds)}; "
                             "pass a longer clip or shorter lags")
    profile = [lag_similarity(chroma, f) for _, f in lags]
    u = _unit(chroma)
    gram = u.T @ u  # (frames, frames) cosine similarities
    gap = np.abs(np.arange(n_frames)[:, None] - np.arange(n_frames)[None, :])
    far = gap >= min(f for _, f in lags)  # chance: two frames at least the shortest lag apart
    baseline = float(gram[far].mean())
    return {"repetition": max(p - baseline for p in profile), "pitch_class_kl": pitch_class_kl(chroma),
            "lags_seconds": [s for s, _ in lags], "profile": profile, "baseline": baseline}


def structure_scores(audio: Audio, lags_seconds=None, hop_seconds: float = 0.1) -> dict:
    """:func:`structure_score` of every clip of ``audio``: the means and each clip's values.

    Returns
    -------
    dict with ``repetition`` and ``pitch_class_kl`` (means over clips), ``per_clip`` (a list of
    each clip's dict) and ``seconds``.
    """
    if not isinstance(audio, Audio):
        raise ParameterError(f"expected an Audio, got {type(audio).__name__}")
    per_clip = [structure_score(audio.samples[i].mean(0), audio.sample_rate, lags_seconds, hop_seconds)
                for i in range(audio.batch_size)]
    return {"repetition": float(np.mean([s["repetition"] for s in per_clip])),
            "pitch_class_kl": float(np.mean([s["pitch_class_kl"] for s in per_clip])),
            "per_clip": per_clip, "seconds": audio.seconds}


# ---- held-out music ---------------------------------------------------------------------------------------
def music_clips(model, split: str = "test", n_clips: int = 8, seconds: float | None = None, seed: int = 0,
                dataset=None) -> torch.Tensor:
    """``n_clips`` clips ``(n, 1, time)`` of the model's music, each from a different piece where the
    split has enough (one random, non-silent segment of each), cut to ``seconds`` (default: the
    model's segment length).

    Raises
    ------
    ParameterError
        The model has no music of its own to take clips from, or ``seconds`` is longer than a segment.
    """
    from .scores import Scores

    ds = dataset if dataset is not None else model.dataset(split)
    scores = getattr(ds, "scores", ds)
    if not isinstance(scores, Scores):
        raise ParameterError(f"{model.name} does not learn from music (Scores); pass dataset=...")
    n_samples = scores.segment if seconds is None else int(round(seconds * scores.sample_rate))
    if n_samples > scores.segment:
        raise ParameterError(f"seconds={seconds} is longer than the dataset's segments "
                             f"({scores.segment / scores.sample_rate:g} s)")
    gen = torch.Generator().manual_seed(seed)
    by_version: dict[int, list[int]] = {}
    for index, (v, _) in enumerate(scores.items):
        by_version.setdefault(v, []).append(index)
    versions = [by_version[v] for v in sorted(by_version)]
    order = torch.randperm(len(versions), generator=gen).tolist()
    clips = []
    for k in range(len(versions) * 4):
        items = versions[order[k % len(versions)]]
        index = items[int(torch.randint(len(items), (), generator=gen))]
        x = scores[index][0][..., :n_samples]
        if float(x.abs().max()) > 1e-3:  # skip silent segments (a piece's tail)
            clips.append(x)
        if len(clips) == n_clips:
            break
    if len(clips) < n_clips:
        raise ParameterError(f"found {len(clips)} non-silent clips in split={split!r}; ask for fewer")
    return torch.stack(clips)  # (n, 1, time)


# ---- the hierarchy's measurements ---------------------------------------------------------------------------
def _check_hierarchy(model):
    from .models._levels import CodeHierarchy

    if not isinstance(model, CodeHierarchy):
        raise ParameterError(f"{type(model).__name__} is not a hierarchy of codes (CodeHierarchy); "
                             "use ada, hierarchical_wavenet or jukebox_mini")


@torch.no_grad()
def consistency_of(model, x: torch.Tensor, seed: int = 0) -> dict:
    """:func:`level_consistency` on given clips ``x`` ``(n >= 2, 1, time)``."""
    _check_hierarchy(model)
    if x.shape[0] < 2:
        raise ParameterError("level consistency swaps codes between clips: pass at least 2 clips")
    gen = torch.Generator().manual_seed(seed)
    model.eval()
    seqs = model.level_sequences(x.to(model.device))
    out = {}
    for i, stage in enumerate(model.stages):
        if stage.cond is None:
            continue
        cond = seqs[stage.cond]
        shuffled, other = list(seqs), list(seqs)
        shuffled[stage.cond] = cond[:, torch.randperm(cond.shape[1], generator=gen).to(cond.device)]
        other[stage.cond] = cond.roll(1, dims=0)  # clip k hears the codes of clip k - 1
        out[stage.name] = {"own": float(model.stage_bits(i, seqs).mean()),
                           "shuffled_in_time": float(model.stage_bits(i, shuffled).mean()),
                           "other_piece": float(model.stage_bits(i, other).mean())}
    return out


def level_consistency(model, split: str = "test", n_clips: int = 8, seconds: float | None = None,
                      seed: int = 0) -> dict:
    """Teacher-forced level consistency on held-out music: does each stage use its conditioning?

    For every stage conditioned on the level above (a WaveNet decoder, an upsampler), the bits per
    target of ``n_clips`` held-out clips (one per piece) given their own codes, given those codes
    shuffled in time, and given the codes of another clip. Own codes should cost the fewest bits.

    Returns
    -------
    dict ``{stage name: {"own", "shuffled_in_time", "other_piece"}}`` in bits per target (per
    sample for a decoder of audio, per code for one of codes), plus ``"clips"`` and ``"seconds"``.

    Raises
    ------
    ParameterError
        The model is not a :class:`~workbench.models._levels.CodeHierarchy`.
    """
    _check_hierarchy(model)
    x = music_clips(model, split, n_clips, seconds, seed)
    out = consistency_of(model, x, seed)
    return {**out, "clips": x.shape[0], "seconds": x.shape[-1] / model.sample_rate, "split": split}


def unigram_bits(train_codes: torch.Tensor, test_codes: torch.Tensor, n_codes: int, alpha: float = 1.0) -> float:
    """Bits per code of ``test_codes`` under the codes' frequencies in ``train_codes`` (add-``alpha``).

    Examples
    --------
    >>> import torch
    >>> unigram_bits(torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1]), 2)
    1.0
    """
    counts = torch.bincount(train_codes.reshape(-1).cpu(), minlength=n_codes).double() + alpha
    p = counts / counts.sum()
    return float(-torch.log2(p[test_codes.reshape(-1).cpu()]).mean())


@torch.no_grad()
def prior_bits_of(model, train_x: torch.Tensor, test_x: torch.Tensor) -> dict:
    """:func:`prior_vs_unigram` on given clips (training clips for the unigram counts, held-out ones to score)."""
    _check_hierarchy(model)
    model.eval()
    train_seqs = model.level_sequences(train_x.to(model.device))
    test_seqs = model.level_sequences(test_x.to(model.device))
    classes = model.level_classes()
    out = {}
    for i, stage in enumerate(model.stages):
        if stage.target == 0:
            continue
        k = classes[stage.target]
        out[stage.name] = {"model": float(model.stage_bits(i, test_seqs).mean()),
                           "unigram": unigram_bits(train_seqs[stage.target], test_seqs[stage.target], k),
                           "uniform": math.log2(k)}
    return out


def prior_vs_unigram(model, split: str = "test", n_clips: int = 8, n_train_clips: int = 32,
                     seconds: float | None = None, seed: int = 0) -> dict:
    """Each code level's held-out bits per code under the model against a unigram model of that level.

    The unigram model counts the codes of ``n_train_clips`` clips of the training split (add-one);
    the model's stage for that level (the prior, an upsampler, an upper WaveNet decoder) scores the
    same held-out clips teacher-forced. A stage that has learned the codes' order beats the unigram.

    Returns
    -------
    dict ``{stage name: {"model", "unigram", "uniform"}}`` in bits per code, plus ``"clips"``.
    """
    _check_hierarchy(model)
    train_x = music_clips(model, "train", n_train_clips, seconds, seed)
    test_x = music_clips(model, split, n_clips, seconds, seed)
    return {**prior_bits_of(model, train_x, test_x), "clips": test_x.shape[0], "split": split}


__all__ = ["DEFAULT_LAGS", "chroma_frames", "consistency_of", "lag_similarity", "level_consistency", "music_clips",
           "pitch_class_kl", "prior_bits_of", "prior_vs_unigram", "structure_score", "structure_scores",
           "unigram_bits"]
