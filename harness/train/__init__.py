"""Training FastSurferCNN: configuration, per-view trainer with exact resume, whole-volume
inference and run directories."""

from harness.train.config import Engine, TrainConfig
from harness.train.predict import predict_labels, predict_view, write_prediction
from harness.train.run import select_subjects, train_run
from harness.train.trainer import NonFiniteLossError, ViewTrainer, build_model

__all__ = [
    "Engine",
    "NonFiniteLossError",
    "TrainConfig",
    "ViewTrainer",
    "build_model",
    "predict_labels",
    "predict_view",
    "select_subjects",
    "train_run",
    "write_prediction",
]
