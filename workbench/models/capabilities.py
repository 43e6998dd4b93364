"""Optional abilities a model declares by inheriting them.

The contract in :mod:`workbench.models.base` is what every model has. What only some models can
do is declared here, one small mixin per ability, and front ends (the studio, the benchmarks,
the notebooks, the tests) ask ``isinstance(model, Vocoder)``; they never probe with ``hasattr``
or guess from ``family`` or ``name``. Each mixin has its own conformance tests
(``tests/test_capabilities.py``), which every model that declares it inherits.

=================  ============================================================================
``ClipFrames``     measures its dense conditioning (``frames`` CondSpecs) on a clip:
                   ``frames_from_clip(name, x)``, ``clip_frames(x)``
``Vocoder``        a ``ClipFrames`` whose main input is log-mel frames: ``mel_of(x)``,
                   ``example_frames(seconds)``, ``f0_of_mel(mel)``
``LatentModel``    a prior over latents and a decoder: ``sample_latent(...)``, ``encode``,
                   ``decode``; ``generate`` is ``decode(sample_latent(...))``
``Streaming``      hands its clip back in chunks as it computes them: ``generate_stream(...)``
                   yields what ``generate`` returns, piece by piece
=================  ============================================================================

How fast a model generates is declared for every model, not here: ``model.speed`` (from the
checkpoint's card, None when unmeasured) and ``model.interactive``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch

from ..audio import Audio
from ..dsp.spectral import log_mel, make_generator
from ..dsp.synth import midi_to_hz
from ..errors import ParameterError
from . import vocoder as plumbing
from .base import MAX_SECONDS, Encoding


class ClipFrames:
    """A model whose dense conditioning can be measured on a clip (a vocoder's mel, DDSP's curves).

    Subclasses return, from :meth:`frame_makers`, one function per ``frames`` CondSpec name that
    turns samples ``(batch, time)`` at the model's rate into those frames ``(batch, ..., frames)``.
    """

    def frame_makers(self) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
        """``{frames name: function of samples (batch, time)}``, one per ``frames`` CondSpec."""
        raise NotImplementedError

    def frames_from_clip(self, name: str, x: torch.Tensor) -> torch.Tensor:
        """The ``name`` frames of samples ``x`` ``(batch, time)`` (or one clip ``(time,)``).

        Returns ``(batch, ..., frames)``, or ``(..., frames)`` for a 1-d ``x``.

        Raises
        ------
        ParameterError
            This model does not take ``name`` frames.
        """
        makers = self.frame_makers()
        if name not in makers:
            raise ParameterError(f"{self.name} does not measure {name!r} frames on a clip; it measures "
                                 f"{', '.join(makers) or 'none'}")
        x = torch.as_tensor(x, dtype=torch.float32)
        single = x.dim() == 1
        frames = makers[name]((x[None] if single else x).to(self.device))
        return frames[0] if single else frames

    def clip_frames(self, x: torch.Tensor, names=None) -> dict[str, torch.Tensor]:
        """Every frames conditioning (or those in ``names``) measured on ``x``: a ``cond`` dict."""
        return {name: self.frames_from_clip(name, x) for name in (names or self.frame_makers())}

    def estimate_f0(self, x: torch.Tensor, fmin: float = 50.0, fmax: float = 2000.0) -> torch.Tensor:
        """pYIN f0 of samples ``(batch, time)`` on this model's frame grid ``(batch, time // hop + 1)``;
        unvoiced gaps interpolated, the middle of ``pitch_range`` where nothing is voiced."""
        return plumbing.f0_on_frames(x, self.config, fmin, fmax).to(self.device)


class Vocoder(ClipFrames):
    """Log-mel frames in, waveform out (Griffin-Lim, MelGAN, the flows, a WaveNet vocoder).

    The mel convention is the config's ``sample_rate``, ``hop_length`` and ``n_mels`` with an FFT
    of :attr:`mel_n_fft` (natural log, floor 1e-5): ``mel_of`` computes it, and a vocoder is
    given frames in it (``cond={"mel": frames}``). A vocoder with an ``f0_hz`` CondSpec (an NSF
    source) also measures f0 on clips.
    """

    @property
    def mel_n_fft(self) -> int:
        """The FFT size of this vocoder's mel frames."""
        return int(self.config.n_fft)

    def frame_makers(self) -> dict:
        makers = {"mel": self.mel_of}
        if any(s.name == "f0_hz" and s.kind == "frames" for s in self.conditioning):
            makers["f0_hz"] = self.estimate_f0
        return makers

    def mel_of(self, x: torch.Tensor) -> torch.Tensor:
        """The log-mel frames this vocoder takes: samples ``(batch, time)`` -> ``(batch, n_mels, time // hop + 1)``."""
        c = self.config
        return log_mel(x, c.sample_rate, n_fft=self.mel_n_fft, hop_length=c.hop_length, n_mels=c.n_mels)

    def example_frames(self, seconds: float = 0.5, pitch: int | None = None) -> torch.Tensor:
        """Log-mel frames ``(n_mels, frames)`` of a plain harmonic tone, for trying the vocoder.

        ``pitch`` (MIDI) defaults to the middle of the config's ``pitch_range``.
        """
        n = max(self.mel_n_fft, int(round(seconds * self.sample_rate)))
        t = torch.arange(n) / self.sample_rate
        f0 = midi_to_hz(pitch if pitch is not None else sum(self.config.pitch_range) // 2)
        tone = sum(0.3 / k * torch.sin(2 * torch.pi * k * f0 * t) for k in range(1, 6))
        return self.mel_of(tone[None])[0]

    def f0_of_mel(self, mel: torch.Tensor) -> torch.Tensor:
        """An f0 curve ``(batch, frames)`` for mel frames alone: pYIN on their Griffin-Lim inversion."""
        return plumbing.f0_from_mel(mel, self.config, self.mel_n_fft).to(self.device)


class LatentModel:
    """A prior over latents and a decoder (a VAE, a VQ-VAE).

    Subclasses implement :meth:`sample_latent` (an :class:`Encoding` drawn from the prior, the
    kind that ``encode`` returns) besides ``encode`` and ``decode``; ``generate`` then decodes
    prior draws, and ``decode(encode(x))`` reconstructs a real clip through the latents.
    """

    def sample_latent(self, n: int = 1, *, seconds: float = 1.0, cond: dict | None = None,
                      temperature: float | None = None, generator=None) -> Encoding:
        """Latents of ``n`` clips drawn from the prior, decodable by :meth:`decode`."""
        temperature = self.default_temperature if temperature is None else float(temperature)
        checked = self.check_cond(cond, n)
        with torch.no_grad():
            return self._sample_latent(n, float(seconds), checked, temperature, make_generator(generator))

    def _sample_latent(self, n, seconds, cond, temperature, generator) -> Encoding:
        raise NotImplementedError


class Streaming:
    """A model that can hand its clip back in chunks, each as soon as it is computed.

    An autoregressive sampler makes its clip from the start to the end, so the beginning can be
    played while the rest is still being sampled. Subclasses implement :meth:`_generate_stream`
    (``_generate``'s arguments plus ``chunk``, returning an iterator over samples ``(n, 1, chunk)``;
    it prepares the conditioning when called, so bad input raises at once) so that its
    chunks, joined, are exactly what ``_generate`` returns under the same seed.
    """

    def generate_stream(self, n: int = 1, *, seconds: float = 1.0, cond: dict | None = None,
                        temperature: float | None = None, generator=None, chunk_seconds: float = 0.25,
                        progress=None, **options) -> Iterator[Audio]:
        """Sample ``n`` sounds as :meth:`~workbench.models.base.GenerativeModel.generate` does, in chunks.

        Parameters
        ----------
        n, seconds, cond, temperature, generator, progress, **options
            As for ``generate`` (checked the same way, when this is called).
        chunk_seconds : float
            The length of each chunk (the last one may be shorter).

        Returns
        -------
        An iterator of Audio ``(n, 1, chunk)``, in order: joined along time they are the clip
        ``generate`` makes with the same arguments and seed, sample for sample. Each chunk is
        yielded as soon as it is sampled, before the next one is computed.

        Raises
        ------
        ParameterError
            Bad ``chunk_seconds``, or any argument ``generate`` refuses.

        Examples
        --------
        >>> from workbench.models import create_model
        >>> model = create_model("wavenet", "tiny")
        >>> chunks = list(model.generate_stream(seconds=0.1, chunk_seconds=0.05, generator=0))
        >>> [c.n_samples for c in chunks]
        [400, 400]
        """
        checked, temperature = self.check_generate_args(n, seconds, cond, temperature, options)
        if (isinstance(chunk_seconds, bool) or not isinstance(chunk_seconds, int | float)
                or not math.isfinite(chunk_seconds) or not 0 < chunk_seconds <= MAX_SECONDS):
            raise ParameterError(f"chunk_seconds={chunk_seconds!r} must be in (0, {MAX_SECONDS:g}]; "
                                 "a quarter of a second starts playback quickly")
        chunk = max(1, int(round(chunk_seconds * self.sample_rate)))
        with torch.no_grad():  # conditioning is prepared (and checked) now, the samples as they are asked for
            chunks = self._generate_stream(n, float(seconds), checked, temperature, make_generator(generator),
                                           progress, chunk, **options)
        return self._as_audio(chunks)

    @torch.no_grad()
    def _as_audio(self, chunks) -> Iterator[Audio]:
        # torch.no_grad on a generator function holds while it runs, not in the caller between chunks
        for samples in chunks:
            yield Audio(samples.clamp(-1, 1).float().cpu(), self.sample_rate)

    def _generate_stream(self, n, seconds, cond, temperature, generator, progress, chunk,
                         **options) -> Iterator[torch.Tensor]:
        """An iterator over samples ``(n, 1, chunk)``: ``_generate``'s clip, ``chunk`` samples at a time."""
        raise NotImplementedError


__all__ = ["ClipFrames", "LatentModel", "Streaming", "Vocoder"]
