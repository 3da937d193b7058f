"""The study's data: scikit-learn's bundled handwritten digits, or a user's CSV/.npz file."""

from __future__ import annotations

import csv
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .wording import count


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


def load_file(path: Path, label_column: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Features and integer labels from a CSV or an .npz file.

    Args:
        path: a CSV of numbers, one sample a row, the label in the last column or in the
            column ``label_column`` names; a first row with text in it (a cell that is
            neither empty nor a number) is a header naming the columns, and is skipped.
            Or an .npz with arrays ``features`` and ``labels`` (or ``X`` and ``y``).
        label_column: the header's name of the CSV's label column; None: the last column.

    Raises:
        DataError: the file is missing, unreadable or not of that form; the message names
            the file, the row and what was expected.
    """
    if not path.is_file():
        raise DataError(f"--data {path}: no such file")
    if path.suffix == ".npz":
        if label_column is not None:
            raise DataError(
                f"--data {path}: --label-column {label_column} names a column of a CSV's "
                "header row; an .npz holds its labels in their own array"
            )
        x, y = load_npz(path)
    elif path.suffix == ".csv":
        x, y = load_csv(path, label_column)
    else:
        raise DataError(f"--data {path}: expected a .csv or .npz file")
    return validate(path, np.asarray(x), np.asarray(y))


def load_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The arrays ``features`` and ``labels`` (or ``X`` and ``y``) of an .npz file."""
    try:
        with np.load(path) as archive:
            keys = set(archive.files)
            for fx, fy in (("features", "labels"), ("X", "y")):
                if {fx, fy} <= keys:
                    return archive[fx], archive[fy]
    except (OSError, ValueError, zipfile.BadZipFile) as error:  # not an .npz, object arrays
        raise DataError(f"--data {path}: not a readable .npz of numeric arrays ({error})") from None
    raise DataError(
        f"--data {path}: expected arrays 'features' and 'labels' (or 'X' and 'y'), "
        f"found {sorted(keys)}"
    )


# What a CSV row must be, said at the end of every error about one.
CSV_ROWS = (
    "expected rows of numbers, the features and the label, with no missing values "
    "(and at most one header row first)"
)


@dataclass
class CsvRow:
    """One non-blank row of a CSV file: its line number (1-based) and its cells, stripped."""

    line: int
    cells: list[str]


def load_csv(path: Path, label_column: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels of a CSV file (see ``load_file``)."""
    rows = read_csv_rows(path)
    if not rows:
        raise DataError(f"--data {path}: the file is empty; {CSV_ROWS}")
    header = rows[0].cells if is_header(rows[0].cells) else None
    data_rows = rows[1:] if header is not None else rows
    label = label_index(path, header, rows[0], label_column)
    table = numeric_table(path, data_rows, header)
    return np.delete(table, label, axis=1), table[:, label]


def read_csv_rows(path: Path) -> list[CsvRow]:
    """The file's non-blank rows; a byte-order mark (as spreadsheets write) is dropped."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as file:
            reader = csv.reader(file)
            rows = []
            for cells in reader:
                stripped = [cell.strip() for cell in cells]
                if any(stripped):
                    rows.append(CsvRow(reader.line_num, stripped))
            return rows
    except (UnicodeDecodeError, csv.Error) as error:
        raise DataError(f"--data {path}: not a readable CSV text file ({error})") from None


def is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def is_header(cells: list[str]) -> bool:
    """Whether a first row is a header: some cell is text (neither empty nor a number).

    An empty cell alone does not make a header: a first row of numbers missing one is data,
    and an error says so."""
    return any(cell and not is_number(cell) for cell in cells)


def column_names(header: list[str], shown: int = 20) -> str:
    """The header's column names for an error message, the first ``shown`` of them."""
    names = ", ".join(repr(name) for name in header[:shown])
    return names if len(header) <= shown else f"{names}, ... ({len(header)} columns)"


def label_index(
    path: Path, header: list[str] | None, first_row: CsvRow, label_column: str | None
) -> int:
    """The index of the label column: the last one, or the one the header names
    ``label_column``."""
    columns = len(first_row.cells)
    if columns < 2:
        raise DataError(
            f"--data {path}: row {first_row.line} has {count(columns, 'column')}; expected "
            f"at least 2 (the features, then the label); {CSV_ROWS}"
        )
    if label_column is None:
        return columns - 1
    if header is None:
        raise DataError(
            f"--data {path}: --label-column {label_column} needs a header row naming the "
            f"columns, but the first row (row {first_row.line}) is numbers, not names"
        )
    matches = [i for i, name in enumerate(header) if name == label_column]
    if not matches:
        raise DataError(
            f"--data {path}: --label-column {label_column}: no such column; the header "
            f"(row {first_row.line}) names {column_names(header)}"
        )
    if len(matches) > 1:
        raise DataError(
            f"--data {path}: --label-column {label_column}: the header (row "
            f"{first_row.line}) names {len(matches)} columns so (columns "
            f"{', '.join(str(i + 1) for i in matches)}); expected one"
        )
    return matches[0]


def numeric_table(path: Path, rows: list[CsvRow], header: list[str] | None) -> np.ndarray:
    """The rows as a float64 table ``[rows, columns]``.

    Raises:
        DataError: no rows, a row of another length than the first (or the header), or a
            cell that is not a number; the message names the row and the column.
    """
    if not rows:
        raise DataError(f"--data {path}: a header row and no data; {CSV_ROWS}")
    columns = len(header) if header is not None else len(rows[0].cells)
    for row in rows:
        if len(row.cells) != columns:
            source = "the header" if header is not None else f"row {rows[0].line}"
            raise DataError(
                f"--data {path}: row {row.line} has {count(len(row.cells), 'column')}, {source} "
                f"{columns}; {CSV_ROWS}"
            )
    try:
        return np.asarray([row.cells for row in rows]).astype(np.float64)
    except ValueError:
        raise first_non_number(path, rows, header) from None


def first_non_number(path: Path, rows: list[CsvRow], header: list[str] | None) -> DataError:
    """The error naming the first cell of ``rows`` that is not a number."""
    for row in rows:
        for column, cell in enumerate(row.cells):
            if not is_number(cell):
                name = f" ({header[column]!r})" if header is not None else ""
                what = "is empty" if not cell else f"is {cell!r}, not a number"
                return DataError(
                    f"--data {path}: row {row.line}, column {column + 1}{name} {what}; {CSV_ROWS}"
                )
    return DataError(f"--data {path}: {CSV_ROWS}")


def validate(path: Path, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if x.ndim != 2 or y.ndim != 1 or len(x) != len(y):
        raise DataError(
            f"--data {path}: expected features [samples, features] and labels "
            f"[samples], got shapes {x.shape} and {y.shape}"
        )
    if len(x) < 10:
        raise DataError(f"--data {path}: {len(x)} samples is too few (need at least 10)")
    for name, array in (("features", x), ("labels", y)):
        if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
            raise DataError(f"--data {path}: {name} must be real numbers, got dtype {array.dtype}")
    if not np.isfinite(x).all():
        raise DataError(f"--data {path}: features contain NaN or infinity")
    if not np.isfinite(y).all() or not np.all(np.equal(np.mod(y, 1), 0)):
        raise DataError(f"--data {path}: labels must be integers (class numbers)")
    # Any integer values name the classes: renumbered 0..K-1 in sorted order, so labels such
    # as 1995/2000 give two output units, not 2001.
    classes, y = np.unique(y, return_inverse=True)
    if len(classes) < 2:
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


def dataset(path: Path | None, label_column: str | None = None) -> Dataset:
    """The study's data, split: the digits, or the file ``path`` (see ``load_file``).

    Raises:
        DataError: the file cannot be used, or ``label_column`` is given without a file.
    """
    if path is None:
        if label_column is not None:
            raise DataError(
                f"--label-column {label_column} names a column of the --data CSV; "
                "without --data the study trains on the digits"
            )
        return split("digits (scikit-learn, 1,797 8x8 images)", *load_digits())
    name = str(path) if label_column is None else f"{path} (labels: column {label_column!r})"
    return split(name, *load_file(path, label_column))
