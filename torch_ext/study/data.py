"""The study's data: scikit-learn's bundled handwritten digits, or a user's CSV/.npz file."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch


@dataclass
class Dataset:
    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    @property
    def features(self) -> int:
        return self.x_train.shape[1]

    @property
    def classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max())) + 1

    @property
    def image_side(self) -> int | None:
        """The side of the square one-channel images the features are, or None."""
        return image_side(self.features)


# The smallest image the CNN takes: its 2x2 max-pooling must leave at least 2x2 pixels.
MIN_IMAGE_SIDE = 4


def image_side(features: int) -> int | None:
    """The side ``s`` with ``s * s == features`` and ``s >= MIN_IMAGE_SIDE``, else None."""
    side = math.isqrt(features)
    return side if side * side == features and side >= MIN_IMAGE_SIDE else None


def as_images(x: torch.Tensor) -> torch.Tensor:
    """Flattened square images ``[N, s * s]`` as one-channel images ``[N, 1, s, s]``.

    The rows are read row-major, as scikit-learn flattens the digits (``images.reshape(N,
    -1)``) and as a CSV of flattened images usually holds them.

    Raises:
        ValueError: the feature count is not the square of a side of at least
            ``MIN_IMAGE_SIDE``.
    """
    side = image_side(x.shape[1])
    if side is None:
        raise ValueError(
            f"{x.shape[1]} features are not a square image of at least "
            f"{MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE} pixels"
        )
    return x.reshape(len(x), 1, side, side)


class DataError(ValueError):
    """A data file the study cannot use; the message says why."""


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits as sklearn_digits

    digits = sklearn_digits()  # 1,797 8x8 images shipped inside scikit-learn
    return digits.data.astype(np.float32), digits.target.astype(np.int64)


def load_file(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Features and integer labels from a CSV (label in the last column, an optional header
    row) or an .npz (arrays ``features`` and ``labels``, or ``X`` and ``y``)."""
    if not path.is_file():
        raise DataError(f"--data {path}: no such file")
    if path.suffix == ".npz":
        with np.load(path) as archive:
            keys = set(archive.files)
            for fx, fy in (("features", "labels"), ("X", "y")):
                if {fx, fy} <= keys:
                    x, y = archive[fx], archive[fy]
                    break
            else:
                raise DataError(
                    f"--data {path}: expected arrays 'features' and 'labels' (or 'X' "
                    f"and 'y'), found {sorted(keys)}"
                )
    elif path.suffix == ".csv":
        try:
            table = np.genfromtxt(path, delimiter=",", dtype=np.float64)
        except ValueError as error:
            raise DataError(f"--data {path}: not a numeric CSV ({error})") from None
        if table.ndim == 2 and np.isnan(table[0]).all():
            table = table[1:]  # header row
        if table.ndim != 2 or table.shape[1] < 2 or np.isnan(table).any():
            raise DataError(
                f"--data {path}: expected rows of numbers, features then the label "
                "in the last column, with no missing values"
            )
        x, y = table[:, :-1], table[:, -1]
    else:
        raise DataError(f"--data {path}: expected a .csv or .npz file")
    return validate(path, np.asarray(x), np.asarray(y))


def validate(path: Path, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if x.ndim != 2 or y.ndim != 1 or len(x) != len(y):
        raise DataError(
            f"--data {path}: expected features [samples, features] and labels "
            f"[samples], got shapes {x.shape} and {y.shape}"
        )
    if len(x) < 10:
        raise DataError(f"--data {path}: {len(x)} samples is too few (need at least 10)")
    if not np.isfinite(x).all():
        raise DataError(f"--data {path}: features contain NaN or infinity")
    if not np.all(np.equal(np.mod(y, 1), 0)) or y.min() < 0:
        raise DataError(f"--data {path}: labels must be non-negative integers")
    if len(np.unique(y)) < 2:
        raise DataError(f"--data {path}: labels have a single class")
    return x.astype(np.float32), y.astype(np.int64)


def split(
    name: str, x: np.ndarray, y: np.ndarray, seed: int = 0, test_fraction: float = 0.25
) -> Dataset:
    """A fixed, stratified train/test split; features standardised with training statistics."""
    from sklearn.model_selection import train_test_split

    _, counts = np.unique(y, return_counts=True)
    stratify = y if counts.min() >= 2 else None
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_fraction, random_state=seed, stratify=stratify
    )
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6
    return Dataset(
        name,
        _tensor((x_train - mean) / std),
        _tensor(y_train),
        _tensor((x_test - mean) / std),
        _tensor(y_test),
    )


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array))


def dataset(path: Path | None) -> Dataset:
    if path is None:
        return split("digits (scikit-learn, 1,797 8x8 images)", *load_digits())
    return split(str(path), *load_file(path))
