"""The model contract every system follows, plus save/load and conditioning checks.

:class:`Model` is what every registered model shares (config and presets, card, training,
checkpoints); a :class:`GenerativeModel` is a model of audio, an ``nn.Module`` built from a config dataclass. Subclasses set
``name``, ``family``, ``likelihood``, ``Config`` and ``PRESETS``, and implement ``_generate``
(and ``encode`` / ``decode`` / ``log_prob`` / ``training_step`` / ``visualise`` as the family
allows). The public methods here validate arguments once, at the boundary.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from ..audio import Audio, check_audio
from ..dsp.spectral import make_generator
from ..errors import CheckpointError, ParameterError, UnsupportedError

FAMILIES = ("autoregressive", "flow", "latent", "adversarial", "diffusion", "dsp", "spectral")
LIKELIHOODS = ("exact", "bound", "none")
NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
MAX_SECONDS = 30.0


def note_name(midi: int) -> str:
    """MIDI note number to a name such as ``C4`` (60) or ``A4`` (69)."""
    return f"{NOTE_NAMES[int(midi) % 12]}{int(midi) // 12 - 1}"


@dataclass(frozen=True)
class CondSpec:
    """One conditioning input: what the app turns into a control, and what ``cond`` may hold.

    Parameters
    ----------
    name : str
        Shared vocabulary: ``pitch``, ``instrument``, ``velocity``, ``mel``, ``f0_hz``, ``loudness_db``...
    kind : {"int", "float", "choice", "frames"}
    default : object
        Used when ``cond`` is None or lacks this key (None for required dense inputs).
    range : (low, high), optional
        Inclusive bounds for ``int``/``float``.
    choices : tuple, optional
        Allowed values for ``choice``.
    unit, help : str
    """

    name: str
    kind: str
    default: Any = None
    range: tuple | None = None
    choices: tuple | None = None
    unit: str = ""
    help: str = ""

    def validate(self, value):
        """Return ``value`` checked (and cast) for this spec, or raise ``ParameterError``."""
        if self.kind == "choice":
            if value not in self.choices:
                raise ParameterError(
                    f"{self.name}={value!r} is not one of this model's choices: "
                    f"{', '.join(map(str, self.choices))}"
                )
            return value
        if self.kind in ("int", "float"):
            if isinstance(value, torch.Tensor) and value.numel() == 1:
                value = value.item()
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ParameterError(f"{self.name}={value!r} must be a number ({self.unit or self.kind})")
            if not math.isfinite(float(value)):
                raise ParameterError(f"{self.name}={value!r} must be finite")
            if self.kind == "int":
                if float(value) != int(value):
                    raise ParameterError(f"{self.name}={value!r} must be a whole number")
                value = int(value)
            else:
                value = float(value)
            if self.range is not None:
                low, high = self.range
                if not low <= value <= high:
                    what = "a MIDI note" if self.name == "pitch" else "a value"
                    raise ParameterError(
                        f"{self.name}={value} is outside the model's range {low}..{high}"
                        f"{' ' + self.unit if self.unit and self.name != 'pitch' else ''}; "
                        f"pick {what} in that range"
                    )
            return value
        if self.kind == "frames":
            t = torch.as_tensor(value, dtype=torch.float32)
            if not bool(torch.isfinite(t).all()):
                raise ParameterError(f"{self.name} frames hold NaN or inf; clean them first")
            return t
        raise ParameterError(f"unknown CondSpec kind {self.kind!r}")


@dataclass(frozen=True)
class NoteDataConfig:
    """What every note model's config shares: the notes it trains on and is conditioned by.

    Each model's config dataclass inherits these fields (and may change a default by declaring
    the field again); ``workbench.train.make_dataset`` builds the model's :class:`~workbench.data.Notes`
    from them.
    """

    sample_rate: int = 16000
    instruments: tuple = ("piano", "flute", "strings", "trumpet")
    pitch_range: tuple = (48, 72)
    velocities: tuple = (64, 112)
    data_source: str = "soundfont"
    note_seconds: float = 1.0
    batch_size: int = 8


@dataclass(frozen=True)
class ScoreDataConfig:
    """What every music model's config shares: the pieces it learns from, rendered to audio.

    :meth:`Model.dataset` builds :class:`~workbench.data.Scores` from these fields: segments of
    ``segment_seconds`` at ``sample_rate`` with their piano roll at ``hop_length`` samples per
    frame over ``pitch_range``; ``transpose`` shifts the training split only.
    """

    sample_rate: int = 16000
    collection: str = "folk"
    max_pieces: int = 400
    programs: tuple | None = None  # an instrument per part (names or GM numbers); the collection's own
    segment_seconds: float = 2.0
    hop_length: int = 256
    pitch_range: tuple = (21, 108)
    transpose: tuple = (0,)
    batch_size: int = 8


@dataclass(frozen=True)
class Aid:
    """What hands a model its pitch besides its own learning: shown beside its pitch accuracy.

    Attributes
    ----------
    kind : str
        The README's "aid" column: ``oscillator source``, ``harmonic comb``, ``oscillator bank``,
        ``re-rendered data``.
    description : str
        One line: what the model is given.
    reference : str
        Where the idea comes from (authors, year, arXiv).
    in_paper : bool
        Whether the paper the model is named after has it (DDSP's oscillators are DDSP). A
        registered name taken from a paper never carries an aid the paper lacks; the aided
        variant has its own name (``wavenet+source``).
    """

    kind: str
    description: str
    reference: str
    in_paper: bool = False


#: A model generating at least this many seconds of audio per second of compute answers a control
#: change at once, so the studio regenerates live; slower models wait for the Generate button.
INTERACTIVE_REAL_TIME = 4.0


@dataclass(frozen=True)
class Speed:
    """How fast a checkpoint generates, as measured by ``workbench evaluate`` and kept in its card.

    Attributes
    ----------
    samples_per_second : float
        At batch 1.
    real_time_factor : float
        Seconds of audio per second of compute (1 keeps up with playback).
    threads : int or None
        Torch threads it was measured with.
    """

    samples_per_second: float
    real_time_factor: float
    threads: int | None = None

    @property
    def interactive(self) -> bool:
        """Fast enough to regenerate on every control change (:data:`INTERACTIVE_REAL_TIME`)."""
        return self.real_time_factor >= INTERACTIVE_REAL_TIME

    @classmethod
    def from_card(cls, card: dict) -> Speed | None:
        metrics = (card or {}).get("metrics", {})
        if metrics.get("real_time_factor") is None:
            return None
        return cls(float(metrics["samples_per_second"]), float(metrics["real_time_factor"]), metrics.get("threads"))


@dataclass
class Encoding:
    """What a model makes of a sound.

    Attributes
    ----------
    kind : str
        ``codes``, ``z``, ``posterior``, ``controls``, ``magnitude``, ``latent``, ``mel``...
    data : dict[str, Tensor]
        The arrays (``codes``, ``log_likelihood``, ``z``, ``mean``, ...).
    sample_rate : int
    meta : dict
        Anything else a decoder needs (lengths, conditioning).
    """

    kind: str
    data: dict
    sample_rate: int
    meta: dict = field(default_factory=dict)

    def describe(self) -> str:
        """One line per array: name, shape and a summary."""
        lines = [f"{self.kind} encoding at {self.sample_rate} Hz"]
        for key, value in self.data.items():
            if isinstance(value, torch.Tensor):
                v = value.float()
                lines.append(f"  {key}: shape {tuple(value.shape)}, mean {float(v.mean()):.4g}, "
                             f"min {float(v.min()):.4g}, max {float(v.max()):.4g}")
            else:
                lines.append(f"  {key}: {value!r}")
        return "\n".join(lines)


class Model(nn.Module):
    """What every registered model has: a config built from named presets, a card, training, a
    figure, and safetensors checkpoints. :class:`GenerativeModel` adds the audio contract; the
    symbolic models (a language model over notes, a transcriber) add their own.
    """

    name: ClassVar[str] = "model"
    family: ClassVar[str] = "autoregressive"
    Config: ClassVar[type] = object
    PRESETS: ClassVar[dict[str, dict]] = {}
    #: The notebook that explains this model (shown in the model zoo).
    notebook: ClassVar[str] = "notebooks/00_tour.ipynb"

    def __init__(self, config):
        super().__init__()
        self.config = config
        #: The checkpoint's card (``card.json``) when loaded from a folder that has one.
        self.card: dict = {}

    # ---- construction ------------------------------------------------------------
    @classmethod
    def from_preset(cls, preset: str = "tiny", **overrides) -> Model:
        """Build from a named preset, with any config field overridden."""
        if preset not in cls.PRESETS:
            raise ParameterError(
                f"preset={preset!r} does not exist for {cls.name}; choose from {', '.join(cls.PRESETS)}"
            )
        fields = {f.name for f in dataclasses.fields(cls.Config)}
        unknown = set(overrides) - fields
        if unknown:
            raise ParameterError(
                f"{cls.name} has no config field(s) {', '.join(sorted(unknown))}; "
                f"known fields: {', '.join(sorted(fields))}"
            )
        values = {**cls.PRESETS[preset], **overrides}
        return cls(cls.Config(**values))

    def with_config(self, **changes) -> Model:
        """A copy with config fields changed and the same weights (in train/eval mode as this one).

        Meant for fields that leave every weight's shape alone (schedules, loss weights, learning
        rates): ``workbench train --resume --set adversarial_start=0`` uses it. A change that
        reshapes the weights raises :class:`ParameterError`.
        """
        fields = {f.name for f in dataclasses.fields(self.Config)}
        unknown = set(changes) - fields
        if unknown:
            raise ParameterError(f"{self.name} has no config field(s) {', '.join(sorted(unknown))}; "
                                 f"known fields: {', '.join(sorted(fields))}")
        model = type(self)(dataclasses.replace(self.config, **changes))
        try:
            model.load_state_dict(self.state_dict())
        except RuntimeError as err:
            raise ParameterError(f"changing {', '.join(sorted(changes))} reshapes {self.name}'s weights, so the "
                                 "trained ones no longer fit; start a new run (without --resume) instead") from err
        return model.to(self.device).train(self.training)

    @classmethod
    def card_summary(cls, metrics: dict) -> str | None:
        """One line of this model's own numbers from its card's ``metrics`` for the music table of the
        zoo and the README (None: the model's numbers are the shared ones of the audio table)."""
        return None

    def measure(self) -> dict:
        """Numbers of this model's own kind for its card (a transcriber's note F1, a language model's
        NLL per event), measured on the test split; ``workbench evaluate`` adds them to the
        shared ones. Models of audio measure nothing extra by default."""
        return {}

    # ---- data ----------------------------------------------------------------------------
    def dataset(self, split: str = "train", data: str = "notes"):
        """One split (``train``, ``validation``, ``test``, ``all``) of the data this model learns from.

        Note models (:class:`NoteDataConfig`): ``data`` is ``"notes"`` (the configured note
        source), ``"soundfont"``, ``"synth"`` or a folder of your recordings. Music models
        (:class:`ScoreDataConfig`): ``data`` is ``"notes"`` or ``"scores"`` (the configured
        collection) or a folder of your MIDI / MusicXML files. Models with other data override this.
        """
        from ..data import Scores, note_dataset

        c = self.config
        if isinstance(c, NoteDataConfig):
            return note_dataset(c, split, data)
        if isinstance(c, ScoreDataConfig):
            files = None if data in ("notes", "scores") else data
            return Scores(c.collection, files=files, split=split, max_pieces=c.max_pieces,
                          segment_seconds=c.segment_seconds, sample_rate=c.sample_rate, hop_length=c.hop_length,
                          pitch_range=c.pitch_range, transpose=c.transpose if split == "train" else (0,),
                          programs=None if c.programs is None else list(c.programs))
        raise ParameterError(f"{self.name} has no dataset of its own; pass it one")

    @property
    def speed(self) -> Speed | None:
        """How fast this checkpoint generates, from its card (None when unmeasured)."""
        return Speed.from_card(self.card)

    @property
    def interactive(self) -> bool:
        """Whether generation is fast enough to follow every control change (measured, never guessed)."""
        return self.speed is not None and self.speed.interactive

    @property
    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    @property
    def device(self) -> torch.device:
        p = next(self.parameters(), None)
        return p.device if p is not None else torch.device("cpu")

    def visualise(self, *args, **kwargs):
        """The figure that explains this model."""
        raise UnsupportedError(f"{self.name} has no figure yet")

    # ---- training ---------------------------------------------------------------------
    def training_step(self, batch, generator=None) -> dict:
        """Loss on one batch ``(samples (batch, 1, time), cond dict)``: returns ``{"loss": ...}``."""
        raise UnsupportedError(f"{self.name} has nothing to train")

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        return [torch.optim.Adam(self.parameters(), lr=self.config.learning_rate)]

    def train_step(self, batch, optimizers, *, generator=None, clip: float | None = 1.0,
                   sync=None) -> dict:
        """One optimisation step (the default: one loss, one optimiser).

        Adversarial models override this to alternate generator and discriminator. ``sync``
        averages gradients across processes under ``torchrun``.
        """
        (opt,) = optimizers
        opt.zero_grad(set_to_none=True)
        logs = self.training_step(batch, generator=generator)
        logs["loss"].backward()
        if sync is not None:
            sync(self.parameters())
        if clip:
            logs["grad_norm"] = torch.nn.utils.clip_grad_norm_(self.parameters(), clip).detach()
        opt.step()
        return {k: float(v.detach()) if isinstance(v, torch.Tensor) else float(v) for k, v in logs.items()}

    @torch.no_grad()
    def eval_step(self, batch, generator=None) -> dict:
        was_training = self.training
        self.eval()
        logs = self.training_step(batch, generator=generator)
        self.train(was_training)
        return {k: float(v) for k, v in logs.items()}

    # ---- persistence ---------------------------------------------------------------------
    def config_dict(self) -> dict:
        return {"model": self.name, "config": dataclasses.asdict(self.config)}

    def save(self, directory) -> Path:
        """Write ``config.json`` and ``model.safetensors`` (no pickled code) into ``directory``."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "config.json").write_text(json.dumps(self.config_dict(), indent=2) + "\n")
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(directory / "model.safetensors"))
        return directory

    @classmethod
    def load(cls, directory, device: str | torch.device = "cpu") -> Model:
        """Build from ``config.json`` and load ``model.safetensors`` (never unpickles)."""
        from safetensors.torch import load_file

        directory = Path(directory)
        config_path = directory / "config.json"
        weights = directory / "model.safetensors"
        if not config_path.exists() or not weights.exists():
            raise CheckpointError(
                f"{str(directory)!r} is not a checkpoint folder (needs config.json and model.safetensors); "
                "train one with 'workbench train'"
            )
        meta = json.loads(config_path.read_text())
        if meta.get("model") != cls.name:
            raise CheckpointError(f"{directory} holds a {meta.get('model')!r} model, not {cls.name!r}")
        config = cls.Config(**_tuples(meta["config"]))
        model = cls(config)
        state = load_file(str(weights))
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise CheckpointError(
                f"{directory} does not match {cls.name}'s config: missing {missing[:5]}, unexpected {unexpected[:5]}"
            )
        card = directory / "card.json"
        model.card = json.loads(card.read_text()) if card.exists() else {}
        model.eval()
        return model.to(device)



class GenerativeModel(Model):
    """A model of audio: the one contract for the app, the notebooks and the trainer."""

    likelihood: ClassVar[str] = "none"
    #: The temperature ``generate`` samples at when none is given (and the cards measure at).
    default_temperature: ClassVar[float] = 1.0
    #: Whether ``temperature`` changes what this model makes (False: it is accepted and ignored).
    uses_temperature: ClassVar[bool] = True
    #: Extra keyword options of ``generate`` and the values each takes (WaveNet: its sampler).
    generate_options: ClassVar[dict[str, tuple]] = {}
    #: What hands this model its pitch beyond learning (None: nothing, the model learns it).
    aid: ClassVar[Aid | None] = None
    #: Config fields that switch on an aid the paper lacks: a paper-named model refuses them,
    #: its aided variant (whose ``aid`` is set and not ``in_paper``) needs one of them on.
    aid_fields: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config):
        super().__init__(config)
        self._check_aid()

    @property
    def sample_rate(self) -> int:
        return int(self.config.sample_rate)

    @property
    def conditioning(self) -> tuple[CondSpec, ...]:
        return ()

    def _check_aid(self) -> None:
        on = {f: getattr(self.config, f) for f in self.aid_fields if getattr(self.config, f)}
        aided = self.aid is not None and not self.aid.in_paper
        if on and not aided:
            field, value = next(iter(on.items()))
            raise ParameterError(
                f"{field}={value!r}: '{self.name}' is the published model, and this adds an aid its paper does "
                f"not have; create the aided variant instead (its name has a '+', see 'workbench list')")
        if aided and self.aid_fields and not on:
            raise ParameterError(f"'{self.name}' is the aided variant ({self.aid.kind}): set one of "
                                 f"{', '.join(self.aid_fields)} above 0, or use the published model without '+'")

    @property
    def stochastic(self) -> bool:
        """Whether the seed changes what ``generate`` makes (False: one output per condition)."""
        return True

    @property
    def default_seconds(self) -> float:
        """The length of one generation when none is asked for (a note model's note length)."""
        return float(self.config.note_seconds) if isinstance(self.config, NoteDataConfig) else 1.0

    @property
    def max_seconds(self) -> float | None:
        """The longest clip ``generate`` makes, for models with a fixed output size (a longer request
        gets this length); None: any length up to :data:`MAX_SECONDS`."""
        return None

    # ---- conditioning ---------------------------------------------------------------
    def check_cond(self, cond: dict | None, n: int = 1) -> dict:
        """Validate ``cond`` against :attr:`conditioning`, filling defaults.

        Each value may be a scalar (shared by the batch) or a list of ``n`` values.

        Returns
        -------
        dict name -> list of ``n`` validated values (``frames`` kinds: one tensor or None).

        Raises
        ------
        ParameterError
            Unknown keys, out-of-range or unknown values, wrong list lengths.
        """
        cond = dict(cond or {})
        specs = {s.name: s for s in self.conditioning}
        unknown = set(cond) - set(specs)
        if unknown:
            allowed = ", ".join(specs) or "nothing (this model is unconditional)"
            raise ParameterError(
                f"{self.name} does not take conditioning {', '.join(sorted(unknown))}; it takes {allowed}"
            )
        out = {}
        for name, spec in specs.items():
            value = cond.get(name, spec.default)
            if spec.kind == "frames":
                out[name] = None if value is None else spec.validate(value)
                continue
            if isinstance(value, torch.Tensor) and value.dim() == 1:
                value = value.tolist()
            values = list(value) if isinstance(value, list | tuple) else [value] * n
            if len(values) != n:
                raise ParameterError(f"{name} has {len(values)} values for a batch of {n}; pass one or {n}")
            out[name] = [spec.validate(v) for v in values]
        return out

    def cond_index(self, name: str, values) -> torch.Tensor:
        """Map choice values (e.g. instrument names) to indices of their CondSpec."""
        spec = next(s for s in self.conditioning if s.name == name)
        return torch.tensor([spec.choices.index(v) for v in values], dtype=torch.long, device=self.device)

    # ---- the contract ---------------------------------------------------------------------
    def generate(self, n: int = 1, *, seconds: float = 1.0, cond: dict | None = None,
                 temperature: float | None = None, generator=None, progress=None, **options) -> Audio:
        """Sample ``n`` sounds.

        Parameters
        ----------
        n : int
            Batch size.
        seconds : float
            Length (models with a fixed output length ignore it or say so).
        cond : dict, optional
            Conditioning by :attr:`conditioning` name; missing keys take defaults.
        temperature : float, optional
            Scales the sampling noise or logits; 1 samples the model as trained. Default: the
            model's :attr:`default_temperature` (1 except where its authors sample colder).
        generator : None, int or torch.Generator
            Randomness; the same seed gives the same sound.
        progress : callable, optional
            Called as ``progress(done, total)`` during long generation.
        **options
            The model's own options (:attr:`generate_options`), e.g. WaveNet's ``method``.

        Returns
        -------
        Audio ``(n, 1, time)``.

        Raises
        ------
        ParameterError
            Bad ``n``, ``seconds``, ``temperature``, conditioning or option.
        """
        checked, temperature = self.check_generate_args(n, seconds, cond, temperature, options)
        gen = make_generator(generator)
        with torch.no_grad():
            samples = self._generate(n, float(seconds), checked, temperature, gen, progress, **options)
        return Audio(samples.clamp(-1, 1).float().cpu(), self.sample_rate)

    def check_generate_args(self, n, seconds, cond, temperature, options: dict) -> tuple[dict, float]:
        """Validate the arguments :meth:`generate` takes (and every other way of sampling shares).

        Returns
        -------
        (cond, temperature) : the conditioning checked by :meth:`check_cond`, and the temperature
        as a float (the model's :attr:`default_temperature` for None).

        Raises
        ------
        ParameterError
            Bad ``n``, ``seconds``, ``temperature``, conditioning or option.
        """
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 256:
            raise ParameterError(f"n={n!r} must be an integer in 1..256")
        if not isinstance(seconds, int | float) or not 0 < float(seconds) <= MAX_SECONDS:
            raise ParameterError(f"seconds={seconds!r} must be in (0, {MAX_SECONDS:g}]")
        temperature = self.default_temperature if temperature is None else temperature
        if not isinstance(temperature, int | float) or not 0 < float(temperature) <= 10:
            raise ParameterError(f"temperature={temperature!r} must be in (0, 10]; 1 samples the model as trained")
        checked = self.check_cond(cond, n)
        self.check_options(options)
        return checked, float(temperature)

    def check_options(self, options: dict) -> None:
        """Raise ``ParameterError`` for an option this model's ``generate`` does not take or a bad value."""
        for key, value in options.items():
            if key not in self.generate_options:
                takes = ", ".join(self.generate_options) or "no extra options"
                raise ParameterError(f"{self.name}.generate has no option {key}={value!r}; it takes {takes}")
            if value not in self.generate_options[key]:
                raise ParameterError(f"{key}={value!r} must be one of {', '.join(map(str, self.generate_options[key]))}")

    def _generate(self, n, seconds, cond, temperature, generator, progress, **options) -> torch.Tensor:
        raise UnsupportedError(f"{self.name} cannot generate")

    def encode(self, audio: Audio, cond: dict | None = None) -> Encoding:
        """What the model makes of a sound (codes, z, posterior, controls, ...)."""
        raise UnsupportedError(f"{self.name} ({self.family}) has no encoder")

    def decode(self, encoding: Encoding) -> Audio:
        """Audio from an :class:`Encoding`, where the family can."""
        raise UnsupportedError(
            f"{self.name} ({self.family}) cannot decode; autoregressive models re-sample instead, "
            "flows, VAEs, VQ-VAEs, vocoders and DDSP can decode"
        )

    def log_prob(self, audio: Audio, cond: dict | None = None) -> torch.Tensor:
        """Bits per sample of each item (``likelihood`` says exact, bound or none)."""
        raise UnsupportedError(
            f"{self.name} is {self.family} and has no likelihood (likelihood='none'); "
            "autoregressive models and flows give exact bits per sample, VAEs a bound"
        )

    def visualise(self, audio: Audio | None = None):
        """The figure that explains this model."""
        raise UnsupportedError(f"{self.name} has no figure yet")

    def check_audio_input(self, audio: Audio, max_seconds: float = MAX_SECONDS) -> torch.Tensor:
        """Validate an input clip for this model; return mono samples ``(batch, 1, time)``."""
        if not isinstance(audio, Audio):
            raise ParameterError(f"expected an Audio, got {type(audio).__name__}; wrap samples as Audio(x, sample_rate)")
        if audio.sample_rate != self.sample_rate:
            audio = audio.resample(self.sample_rate)
        x = check_audio(audio.to_mono().samples, max_samples=int(max_seconds * self.sample_rate))
        return x.to(self.device)


def _tuples(config: dict) -> dict:
    """JSON turns tuples into lists; config dataclasses use tuples (hashable, immutable)."""
    return {k: tuple(_tuples_list(v)) if isinstance(v, list) else v for k, v in config.items()}


def _tuples_list(values):
    return [tuple(_tuples_list(v)) if isinstance(v, list) else v for v in values]


def sample_categorical(logits: torch.Tensor, temperature: float, generator) -> torch.Tensor:
    """Draw one class per row of ``logits`` ``(batch, classes)`` by inverse CDF.

    One uniform number per row comes from ``generator``, so two code paths that compute the same
    logits draw the same samples.
    """
    probs = torch.softmax(logits.double() / temperature, dim=-1)
    cdf = torch.cumsum(probs, dim=-1)
    u = torch.rand(logits.shape[0], 1, generator=generator, dtype=torch.float64) * cdf[:, -1:]
    return torch.searchsorted(cdf, u).clamp_max(logits.shape[-1] - 1).squeeze(-1)


class AdversarialModel(GenerativeModel):
    """A GAN: generator parameters named ``g_*``, critic parameters ``d_*``, one Adam each.

    Subclasses override ``train_step`` to alternate critic and generator updates; their config
    has ``learning_rate``, ``betas`` and ``ema_decay``.
    """

    family = "adversarial"
    likelihood = "none"

    def _g_params(self):
        return [p for n, p in self.named_parameters() if n.startswith("g_")]

    def _d_params(self):
        return [p for n, p in self.named_parameters() if n.startswith("d_")]

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        c = self.config
        return [torch.optim.Adam(self._g_params(), lr=c.learning_rate, betas=tuple(c.betas)),
                torch.optim.Adam(self._d_params(), lr=c.learning_rate, betas=tuple(c.betas))]

    # ---- a running average of the generator's weights (ProGAN, StyleGAN) ------------------------------------
    # GAN training does not settle: the generator keeps chasing the critic and its samples drift
    # from step to step. Sampling from an exponential moving average of its weights (config
    # ``ema_decay`` > 0) smooths that drift out; training itself still uses the raw weights.
    def _ema_pairs(self):
        return [(p, getattr(self, "ema_" + n.replace(".", "__"))) for n, p in self.named_parameters()
                if n.startswith("g_")]

    def init_generator_average(self) -> None:
        """Call at the end of ``__init__``: with ``ema_decay`` > 0, buffers start as copies of the weights."""
        if self.config.ema_decay:
            for n, p in list(self.named_parameters()):
                if n.startswith("g_"):
                    self.register_buffer("ema_" + n.replace(".", "__"), p.detach().clone())

    @torch.no_grad()
    def update_generator_average(self) -> None:
        """After each generator step: ``average <- decay * average + (1 - decay) * weights``."""
        decay = self.config.ema_decay
        if decay:
            for p, avg in self._ema_pairs():
                avg.lerp_(p.detach(), 1.0 - decay)

    @contextlib.contextmanager
    def averaged_generator(self):
        """Inside, the generator runs on its averaged weights (no-op without ``ema_decay``)."""
        if not self.config.ema_decay:
            yield self
            return
        pairs = self._ema_pairs()
        with torch.no_grad():
            raw = [p.detach().clone() for p, _ in pairs]
            for p, avg in pairs:
                p.copy_(avg)
        try:
            yield self
        finally:
            with torch.no_grad():
                for (p, _), w in zip(pairs, raw):
                    p.copy_(w)

    def generate(self, *args, **kwargs):
        """:meth:`GenerativeModel.generate` on the averaged weights (where there are any)."""
        with self.averaged_generator():
            return super().generate(*args, **kwargs)
