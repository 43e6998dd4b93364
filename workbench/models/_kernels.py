"""What the compiled samplers share (numba): a matrix-vector product and the inverse-CDF draw.

``draw`` samples exactly as :func:`workbench.models.base.sample_categorical` does: softmax of the
logits over the temperature, in float64, then the first class whose running sum reaches the
uniform number times the total. Given the same uniform it picks the same class.
"""

from __future__ import annotations

import math

import numpy as np

try:
    import numba

    HAVE_NUMBA = True
except ImportError:  # numba comes with librosa; without it the PyTorch samplers are used
    HAVE_NUMBA = False


def matvec(x, w, b, out):
    """out = x @ w + b, with ``w`` stored input-major ``(in, out)``."""
    out[:] = b
    for i in range(w.shape[0]):
        v = x[i]
        for j in range(w.shape[1]):
            out[j] += w[i, j] * v


def draw(logits, weights, inv_temperature, uniform):
    """The class drawn from ``softmax(logits * inv_temperature)`` by inverse CDF at ``uniform``;
    ``weights`` is float64 scratch of the logits' length."""
    n_classes = logits.shape[0]
    best = -1e300
    for c in range(n_classes):
        weights[c] = np.float64(logits[c]) * inv_temperature
        if weights[c] > best:
            best = weights[c]
    mass = 0.0
    for c in range(n_classes):
        weights[c] = math.exp(weights[c] - best)
        mass += weights[c]
    target = uniform * mass
    cumulative = 0.0
    for c in range(n_classes):
        cumulative += weights[c]
        if cumulative >= target:
            return c
    return n_classes - 1


if HAVE_NUMBA:
    matvec = numba.njit(cache=True, fastmath=False, nogil=True)(matvec)
    draw = numba.njit(cache=True, fastmath=False, nogil=True)(draw)
