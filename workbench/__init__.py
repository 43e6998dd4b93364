"""workbench: learn how generative models of raw audio work, by running them.

Public API: :class:`Audio`, :func:`load_model`, :func:`create_model`, :func:`list_models`,
:func:`train`, and the modules :mod:`data`, :mod:`dsp`, :mod:`metrics`, :mod:`viz`.
"""

from . import data, dsp, metrics
from .audio import Audio
from .errors import ParameterError, WorkbenchError
from .models import create_model, list_models, load_model

__version__ = "0.1.0"


def train(*args, **kwargs):
    """Train a model (see :func:`workbench.train.train`)."""
    from .train import train as _train

    return _train(*args, **kwargs)


def __getattr__(name):
    if name == "viz":  # matplotlib is imported only when figures are wanted
        import importlib

        return importlib.import_module(".viz", __name__)
    raise AttributeError(f"module 'workbench' has no attribute {name!r}")


__all__ = ["Audio", "ParameterError", "WorkbenchError", "create_model", "data", "dsp", "list_models",
           "load_model", "metrics", "train", "viz"]
