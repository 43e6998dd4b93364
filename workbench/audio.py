"""The ``Audio`` container: samples ``(batch, channels, time)`` float32 in [-1, 1] + sample rate.

Loading and saving go through soundfile (wav, flac, ogg); resampling through torchaudio.
Every method returns a new ``Audio`` and never mutates the caller's tensor.
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .errors import AudioError, ParameterError

MIN_SAMPLE_RATE = 1_000
MAX_SAMPLE_RATE = 384_000
DEFAULT_MAX_SECONDS = 600.0


def check_sample_rate(sample_rate) -> int:
    """Return ``sample_rate`` as an int, or raise if it is not a plausible audio rate."""
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int | float | np.integer):
        raise ParameterError(
            f"sample_rate={sample_rate!r} is not a number; pass the rate in Hz, e.g. 16000"
        )
    if not math.isfinite(float(sample_rate)) or float(sample_rate) != int(sample_rate):
        raise ParameterError(f"sample_rate={sample_rate!r} must be a whole number of Hz, e.g. 16000")
    sample_rate = int(sample_rate)
    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise ParameterError(
            f"sample_rate={sample_rate} Hz is outside {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz; "
            "pass the rate in Hz (e.g. 16000), not kHz"
        )
    return sample_rate


def as_batch(samples) -> torch.Tensor:
    """Return ``samples`` as a float32 tensor ``(batch, channels, time)``.

    Accepts ``(time,)``, ``(channels, time)`` or ``(batch, channels, time)``, a numpy array or
    a tensor. The result never shares memory with a numpy input.
    """
    if isinstance(samples, np.ndarray):
        samples = torch.from_numpy(np.array(samples, dtype=np.float32, copy=True))
    if not isinstance(samples, torch.Tensor):
        raise AudioError(
            f"audio samples must be a torch.Tensor or numpy array, got {type(samples).__name__}"
        )
    if samples.is_complex():
        raise AudioError("audio samples are complex; pass a real waveform (use dsp.istft first)")
    if samples.dim() == 1:
        samples = samples[None, None]
    elif samples.dim() == 2:
        samples = samples[None]
    elif samples.dim() != 3:
        raise AudioError(
            f"audio samples have shape {tuple(samples.shape)}; expected (time,), (channels, time) "
            "or (batch, channels, time)"
        )
    return samples.float()


def check_audio(samples: torch.Tensor, *, max_channels: int = 2, max_samples: int | None = None,
                allow_silence: bool = True) -> torch.Tensor:
    """Validate a ``(batch, channels, time)`` tensor; return it unchanged.

    Raises
    ------
    AudioError
        If it is empty, holds NaN/inf, has too many channels, is too long or (with
        ``allow_silence=False``) is all zeros.
    """
    if samples.shape[-1] == 0:
        raise AudioError("the audio is empty (0 samples); pass at least a few milliseconds of sound")
    if samples.shape[1] > max_channels:
        raise AudioError(
            f"the audio has {samples.shape[1]} channels; expected at most {max_channels} "
            "(mono or stereo); mix down first with Audio.to_mono()"
        )
    if max_samples is not None and samples.shape[-1] > max_samples:
        raise AudioError(
            f"the audio is {samples.shape[-1]} samples long; the limit here is {max_samples}; "
            "trim it first"
        )
    finite = torch.isfinite(samples)
    if not bool(finite.all()):
        n_bad = int((~finite).sum())
        raise AudioError(
            f"the audio holds {n_bad} NaN or infinite samples; clean it (e.g. torch.nan_to_num) "
            "before using it"
        )
    if not allow_silence and float(samples.abs().max()) == 0.0:
        raise AudioError("the audio is completely silent; pass a clip with some sound in it")
    return samples


@dataclass(frozen=True, eq=False)
class Audio:
    """Samples and their sample rate, always together.

    Parameters
    ----------
    samples : Tensor or ndarray, shape ``(time,)``, ``(channels, time)`` or ``(batch, channels, time)``
        Stored as float32 ``(batch, channels, time)``.
    sample_rate : int
        In Hz.

    Examples
    --------
    >>> import torch
    >>> a = Audio(torch.zeros(16000), 16000)
    >>> a.samples.shape, a.seconds
    (torch.Size([1, 1, 16000]), 1.0)
    """

    samples: torch.Tensor
    sample_rate: int

    def __post_init__(self):
        object.__setattr__(self, "samples", as_batch(self.samples))
        object.__setattr__(self, "sample_rate", check_sample_rate(self.sample_rate))

    # ---- shape ---------------------------------------------------------------
    @property
    def batch_size(self) -> int:
        return self.samples.shape[0]

    @property
    def n_channels(self) -> int:
        return self.samples.shape[1]

    @property
    def n_samples(self) -> int:
        return self.samples.shape[-1]

    @property
    def seconds(self) -> float:
        return self.n_samples / self.sample_rate

    def __len__(self) -> int:
        return self.batch_size

    def __getitem__(self, index) -> Audio:
        """Select items of the batch, keeping three dimensions."""
        samples = self.samples[index]
        if samples.dim() == 2:
            samples = samples[None]
        return Audio(samples, self.sample_rate)

    def __repr__(self) -> str:
        b, c, t = self.samples.shape
        return f"Audio(batch={b}, channels={c}, samples={t}, sample_rate={self.sample_rate}, seconds={self.seconds:.3f})"

    # ---- conversions ---------------------------------------------------------
    def numpy(self) -> np.ndarray:
        """A copy of the samples as a numpy array ``(batch, channels, time)``."""
        return self.samples.detach().cpu().numpy().copy()

    def to_mono(self) -> Audio:
        """Average the channels."""
        return Audio(self.samples.mean(dim=1, keepdim=True), self.sample_rate)

    def resample(self, sample_rate: int) -> Audio:
        """Resample with torchaudio's band-limited sinc interpolation."""
        import torchaudio.functional as AF

        sample_rate = check_sample_rate(sample_rate)
        if sample_rate == self.sample_rate:
            return Audio(self.samples.clone(), sample_rate)
        return Audio(AF.resample(self.samples, self.sample_rate, sample_rate), sample_rate)

    def trim(self, seconds: float) -> Audio:
        """The first ``seconds`` of the clip."""
        return Audio(self.samples[..., : int(round(seconds * self.sample_rate))].clone(), self.sample_rate)

    def normalise(self, peak: float = 0.9) -> Audio:
        """Scale each item so its peak absolute value is ``peak`` (silent items stay silent)."""
        scale = self.samples.abs().amax(dim=(1, 2), keepdim=True).clamp_min(1e-8)
        return Audio(self.samples / scale * peak, self.sample_rate)

    def with_samples(self, samples: torch.Tensor) -> Audio:
        """New ``Audio`` with other samples at the same rate."""
        return Audio(samples, self.sample_rate)

    def to_int16(self, index: int = 0) -> np.ndarray:
        """Item ``index`` as int16 ``(time,)`` or ``(time, channels)``: what Gradio plays unscaled."""
        x = self.samples[index].detach().cpu().clamp(-1, 1).numpy()
        x = (x * 32767).round().astype(np.int16)
        return x[0] if x.shape[0] == 1 else x.T.copy()

    # ---- I/O -------------------------------------------------------------------
    @classmethod
    def load(cls, path, *, sample_rate: int | None = None, mono: bool = False,
             max_seconds: float = DEFAULT_MAX_SECONDS) -> Audio:
        """Read a wav / flac / ogg file with soundfile.

        Parameters
        ----------
        path : str or Path
        sample_rate : int, optional
            Resample to this rate.
        mono : bool
            Mix down to one channel.
        max_seconds : float
            Refuse longer files (they would exhaust memory in an interactive session).

        Raises
        ------
        AudioError
            Missing file, not audio, empty, too long, NaN samples.
        """
        import soundfile as sf

        path = Path(path)
        if not path.exists():
            raise AudioError(f"no such audio file: {str(path)!r}; check the path")
        if path.is_dir():
            raise AudioError(f"{str(path)!r} is a folder; pass an audio file (wav, flac, ogg)")
        try:
            info = sf.info(str(path))
        except Exception as exc:  # soundfile raises LibsndfileError / RuntimeError
            raise AudioError(
                f"{path.name!r} is not a readable audio file ({exc}); pass a wav, flac or ogg file"
            ) from None
        if info.frames == 0:
            raise AudioError(f"{path.name!r} holds no samples; pass a non-empty recording")
        check_sample_rate(info.samplerate)
        if info.frames > max_seconds * info.samplerate:
            raise AudioError(
                f"{path.name!r} is {info.frames / info.samplerate:.1f} s long; the limit is "
                f"{max_seconds:g} s; trim it first"
            )
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)  # (time, channels)
        samples = torch.from_numpy(data.T.copy())[None]  # (1, channels, time)
        check_audio(samples, max_channels=64)
        audio = cls(samples, rate)
        if mono:
            audio = audio.to_mono()
        if sample_rate is not None:
            audio = audio.resample(sample_rate)
        return audio

    def save(self, path, *, index: int = 0) -> Path:
        """Write item ``index`` as a 16-bit file (format from the suffix: .wav, .flac, .ogg)."""
        import soundfile as sf

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = self.samples[index].detach().cpu().clamp(-1, 1).numpy().T  # (time, channels)
        subtype = "PCM_16" if path.suffix.lower() in (".wav", ".flac") else None
        sf.write(str(path), data, self.sample_rate, subtype=subtype)
        return path

    def wav_bytes(self, index: int = 0) -> bytes:
        import soundfile as sf

        buffer = io.BytesIO()
        data = self.samples[index].detach().cpu().clamp(-1, 1).numpy().T
        sf.write(buffer, data, self.sample_rate, format="WAV", subtype="PCM_16")
        return buffer.getvalue()

    def _repr_html_(self) -> str:
        """An inline player per item in Jupyter (16-bit WAV, not rescaled)."""
        players = []
        for i in range(min(self.batch_size, 8)):
            b64 = base64.b64encode(self.wav_bytes(i)).decode("ascii")
            players.append(
                f'<audio controls preload="none" src="data:audio/wav;base64,{b64}"></audio>'
            )
        return f"<div><code>{self!r}</code><br>{'<br>'.join(players)}</div>"


def to_tensor(x) -> tuple[torch.Tensor, int | None]:
    """Split an ``Audio`` or tensor into ``(tensor, sample_rate or None)``."""
    if isinstance(x, Audio):
        return x.samples, x.sample_rate
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.asarray(x, dtype=np.float32)), None
    if isinstance(x, torch.Tensor):
        return x, None
    raise ParameterError(f"expected an Audio, a tensor or an array, got {type(x).__name__}")


def like(template, samples: torch.Tensor, sample_rate: int | None):
    """Wrap ``samples`` like ``template`` was given: as ``Audio`` if it was one, else a tensor."""
    if isinstance(template, Audio):
        return Audio(samples, sample_rate)
    return samples
