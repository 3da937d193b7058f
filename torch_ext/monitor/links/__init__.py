"""Links: which layers feed each monitored activation call site and which read its output,
learnt from the model's own forward. They are what :func:`torch_ext.revive` rewires.

A link is ``producer [-> norm] -> activation -> readers``: the producer a Linear/Conv (or Hugging Face's Conv1D), the
optional norm a BatchNorm/LayerNorm/GroupNorm, the readers Linear/Conv layers reached
through operations that keep each unit's values apart (pooling, dropout, flatten, views).
The tracer also records what revive cannot keep exact (a residual addition reading the
unit, a norm that mixes units), so revive can say so instead of guessing.
"""

from __future__ import annotations

from .layers import (
    NORM_LAYERS,
    WEIGHTED_LAYERS,
    feature_dim,
    features_last,
    in_features,
    is_weighted,
    out_features,
    weight_out_dim,
    weight_out_in,
)
from .layout import UnitLayout
from .records import OUTSIDE, Link, LinkBook, Reader, Use
from .tracer import LinkTracer

__all__ = [
    "NORM_LAYERS",
    "OUTSIDE",
    "WEIGHTED_LAYERS",
    "Link",
    "LinkBook",
    "LinkTracer",
    "Reader",
    "UnitLayout",
    "Use",
    "feature_dim",
    "features_last",
    "in_features",
    "is_weighted",
    "out_features",
    "weight_out_dim",
    "weight_out_in",
]
