"""FastSurferCNN (v1), its loss and per-pixel weights, and view aggregation."""

from harness.models.aggregate import VIEW_WEIGHTS, aggregate_probabilities, aggregate_views
from harness.models.fastsurfer import (
    CLASSES_PER_VIEW,
    PRESETS,
    FastSurferCNN,
    count_parameters,
    fastsurfer_config,
)
from harness.models.loss import FastSurferLoss, boundary_mask, class_weights, weight_mask

__all__ = [
    "CLASSES_PER_VIEW",
    "PRESETS",
    "VIEW_WEIGHTS",
    "FastSurferCNN",
    "FastSurferLoss",
    "aggregate_probabilities",
    "aggregate_views",
    "boundary_mask",
    "class_weights",
    "count_parameters",
    "fastsurfer_config",
    "weight_mask",
]
