"""The model registry: every system by name, created from a preset or loaded from a checkpoint."""

from __future__ import annotations

import importlib
from pathlib import Path

import torch

from ..errors import CheckpointError, ParameterError
from .base import (
    Aid,
    CondSpec,
    Encoding,
    GenerativeModel,
    Model,
    NoteDataConfig,
    ScoreDataConfig,
    Speed,
)
from .capabilities import ClipFrames, LatentModel, Streaming, Vocoder

#: name -> "module:Class". Imported lazily so that listing models stays cheap.
REGISTRY: dict[str, str] = {
    "wavenet": "workbench.models.wavenet:WaveNet",
    "ddsp": "workbench.models.ddsp:DDSP",
    "griffinlim": "workbench.models.griffinlim:GriffinLim",
    "note2mel": "workbench.models.note2mel:NoteToMel",
    "vqvae": "workbench.models.vqvae:VQVAE",
    "waveglow": "workbench.models.waveglow:WaveGlow",
    "flowavenet": "workbench.models.flowavenet:FloWaveNet",
    "vae": "workbench.models.vae:VAE",
    "samplernn": "workbench.models.samplernn:SampleRNN",
    "melgan": "workbench.models.melgan:MelGAN",
    "gansynth": "workbench.models.gansynth:GANSynth",
    "wavegan": "workbench.models.wavegan:WaveGAN",
    "wavenet_vocoder": "workbench.models.wavenet:WaveNetVocoder",
    "sparse_transformer": "workbench.models.sparse_transformer:SparseTransformer",
    "midi2wave": "workbench.models.midi2wave:Midi2Wave",
    "notes_lm": "workbench.models.notes_lm:NotesLM",
    "transcriber": "workbench.models.transcriber:Transcriber",
    "ada": "workbench.models.ada:ADA",
    "hierarchical_wavenet": "workbench.models.hierarchical_wavenet:HierarchicalWaveNet",
    "jukebox_mini": "workbench.models.jukebox_mini:JukeboxMini",
    "wavenet_mol": "workbench.models.wavenet:WaveNetMoL",
    "wavenet_gaussian": "workbench.models.wavenet:WaveNetGaussian",
    "parallel_wavenet": "workbench.models.parallel_wavenet:ParallelWaveNet",
    "clarinet": "workbench.models.clarinet:ClariNet",
    # aided variants: the published model plus an aid its paper does not have (``aid`` says which)
    "wavenet+source": "workbench.models.wavenet:WaveNetWithSource",
    "samplernn+source": "workbench.models.samplernn:SampleRNNWithSource",
    "waveglow+source": "workbench.models.waveglow:WaveGlowWithSource",
    "flowavenet+source": "workbench.models.flowavenet:FloWaveNetWithSource",
    "vqvae+source": "workbench.models.vqvae:VQVAEWithSource",
    "wavegan+source": "workbench.models.wavegan:WaveGANWithSource",
    "melgan+source": "workbench.models.melgan:MelGANWithSource",
    "gansynth+comb": "workbench.models.gansynth:GANSynthWithComb",
}

CHECKPOINTS = Path(__file__).resolve().parent.parent.parent / "assets" / "checkpoints"


def list_models(kind: type | None = None) -> list[str]:
    """Names of every registered system, or of those whose class is a ``kind`` (a capability or
    :class:`GenerativeModel` for the models of audio)."""
    if kind is None:
        return list(REGISTRY)
    return [name for name in REGISTRY if issubclass(model_class(name), kind)]


def model_class(name: str) -> type[GenerativeModel]:
    """The class registered under ``name``."""
    if name not in REGISTRY:
        raise ParameterError(f"no model named {name!r}; registered models: {', '.join(REGISTRY)}")
    module, cls = REGISTRY[name].split(":")
    return getattr(importlib.import_module(module), cls)


def create_model(name: str, preset: str = "tiny", **overrides) -> GenerativeModel:
    """A freshly initialised model from a named preset (``tiny`` trains in seconds)."""
    return model_class(name).from_preset(preset, **overrides)


def checkpoint_dir(name: str) -> Path:
    return CHECKPOINTS / name


def has_checkpoint(name: str) -> bool:
    return (checkpoint_dir(name) / "model.safetensors").exists()


def list_checkpoints() -> list[str]:
    """Registered models that ship a trained checkpoint."""
    return [name for name in REGISTRY if has_checkpoint(name)]


def load_model(name_or_dir, device: str | torch.device = "cpu") -> GenerativeModel:
    """Load the shipped checkpoint of a registered model, or any checkpoint folder.

    Raises
    ------
    ParameterError
        Unknown name.
    CheckpointError
        The folder is not a checkpoint, or the model ships none yet.
    """
    import json

    path = Path(name_or_dir)
    if str(name_or_dir) in REGISTRY and not path.is_dir():
        path = checkpoint_dir(str(name_or_dir))
        if not has_checkpoint(str(name_or_dir)):
            raise CheckpointError(
                f"{name_or_dir} ships no checkpoint yet; train one with "
                f"'workbench train {name_or_dir} --out {path}'"
            )
    elif not path.is_dir():
        raise ParameterError(
            f"{str(name_or_dir)!r} is neither a registered model ({', '.join(REGISTRY)}) nor a checkpoint folder"
        )
    config = path / "config.json"
    if not config.exists():
        raise CheckpointError(f"{path} has no config.json; it is not a checkpoint folder")
    name = json.loads(config.read_text()).get("model")
    return model_class(name).load(path, device=device)


def load_card(name_or_dir) -> dict:
    """The ``card.json`` of a checkpoint (empty dict when there is none)."""
    import json

    path = Path(name_or_dir)
    if not path.is_dir():
        path = checkpoint_dir(str(name_or_dir))
    card = path / "card.json"
    return json.loads(card.read_text()) if card.exists() else {}


__all__ = [
    "REGISTRY", "Aid", "ClipFrames", "CondSpec", "Encoding", "GenerativeModel", "LatentModel", "Model",
    "NoteDataConfig", "ScoreDataConfig", "Speed",
    "Streaming", "Vocoder", "checkpoint_dir", "create_model", "has_checkpoint", "list_checkpoints", "list_models", "load_card",
    "load_model", "model_class",
]
