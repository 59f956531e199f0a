"""Small grey-scale image datasets as tensors: MNIST, Fashion-MNIST, scikit-learn's 8x8 digits, IDX folders.

Every loader returns an :class:`ImageData` whose images are float tensors of shape ``(N, 1, 32, 32)`` in
``[0, 1]`` (28x28 images get a 2-pixel border of zeros, the way the conv autoencoder lab expects them) and
whose labels are ``int64`` tensors. The whole set lives in memory and is batched by index.

* ``mnist``: the fetched ``mnist.pkl.gz`` (``genlab data fetch mnist``). It is the classic pickle of three
  ``(images, labels)`` pairs of numpy arrays: train (50k), validation (10k) and test (10k), images ``float32``
  in ``[0, 1]`` of shape ``(n, 784)``. Train and validation together are the standard 60k training set.
  A pickle can run arbitrary code when loaded, so it is read with :class:`NumpyOnlyUnpickler`, which refuses
  every global except the three numpy names an array needs.
* ``fashion``: the fetched Fashion-MNIST IDX ``.gz`` files (``genlab data fetch fashion``).
* ``digits``: scikit-learn's 1797 8x8 digits (no download), resized to 28x28 and padded; the default in tests.
* ``idx``: ``train-images-idx3-ubyte[.gz]`` etc. from a folder of the user's (any MNIST-format dataset).
"""

from __future__ import annotations

import gzip
import pickle
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from genlab.errors import DataError, choose

DATASETS = ("mnist", "fashion", "digits", "idx")
IDX_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}
FASHION_CLASSES = ("T-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot")
SIZE = 32


@dataclass
class ImageData:
    """Train and test images ``(N, 1, 32, 32)`` in [0, 1] with their labels, and the class names."""

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def subset(self, train: int = 0, test: int = 0) -> ImageData:
        """The first ``train`` / ``test`` examples (0 keeps all)."""
        return ImageData(
            self.name,
            self.train_x[: train or None],
            self.train_y[: train or None],
            self.test_x[: test or None],
            self.test_y[: test or None],
            self.classes,
        )

    def to(self, device: torch.device | str) -> ImageData:
        return ImageData(
            self.name,
            self.train_x.to(device),
            self.train_y.to(device),
            self.test_x.to(device),
            self.test_y.to(device),
            self.classes,
        )


# ------------------------------------------------------------------------------------------- safe pickles


class NumpyOnlyUnpickler(pickle.Unpickler):
    """An unpickler that builds numpy arrays and plain containers, and refuses every other global.

    A numpy array pickles as ``numpy.core.multiarray._reconstruct(numpy.ndarray, ...)`` plus a
    ``numpy.dtype`` (newer numpy: ``numpy._core...``, ``_frombuffer``; raw bytes under protocol 2 come through
    ``_codecs.encode``); those are the only callables allowed. Anything else (``os.system``,
    ``builtins.eval``...) raises :class:`~genlab.errors.DataError` before it could run.
    """

    def find_class(self, module: str, name: str):
        if name == "_reconstruct" and module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            try:
                from numpy._core.multiarray import _reconstruct
            except ImportError:  # numpy < 2
                from numpy.core.multiarray import _reconstruct
            return _reconstruct
        if (module, name) in (("numpy._core.numeric", "_frombuffer"), ("numpy.core.numeric", "_frombuffer")):
            try:
                from numpy._core.numeric import _frombuffer
            except ImportError:  # numpy < 2
                from numpy.core.numeric import _frombuffer
            return _frombuffer
        if (module, name) == ("_codecs", "encode"):  # how protocol-2 pickles from Python 3 store bytes
            import codecs

            return codecs.encode
        if module == "numpy" and name == "ndarray":
            return np.ndarray
        if module == "numpy" and name == "dtype":
            return np.dtype
        raise DataError(f"refusing to unpickle {module}.{name}: only numpy arrays are allowed in a dataset file")


def load_numpy_pickle(path: str | Path):
    """Load a (gzipped) pickle that may only hold numpy arrays, tuples, lists, dicts and numbers."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            return NumpyOnlyUnpickler(f, encoding="latin1").load()
    except (OSError, EOFError, pickle.UnpicklingError) as e:
        raise DataError(f"{str(path)!r} is not a readable pickle ({e}); fetch it again with --force") from None
    except DataError as e:  # a global the unpickler refused: name the file
        raise DataError(f"{str(path)!r}: {e}; fetch it again with --force") from None


# ---------------------------------------------------------------------------------------------- IDX files


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (``.gz`` or plain): magic ``0 0 dtype ndim``, big-endian sizes, then the data."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise DataError(f"could not read IDX file {str(path)!r}: {e}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise DataError(f"{str(path)!r} is not an IDX file (bad magic number)")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[data[2]]).newbyteorder(">")
    start = 4 + 4 * ndim
    count = int(np.prod(shape)) if shape else 0
    if len(data) - start < count * dtype.itemsize:
        raise DataError(f"IDX file {str(path)!r} is truncated: expected shape {shape}")
    out = np.frombuffer(data, dtype=dtype, count=count, offset=start).reshape(shape)
    return out.astype(dtype.newbyteorder("="))


_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.int16, 0x0C: np.int32, 0x0D: np.float32, 0x0E: np.float64}


def write_idx(path: str | Path, array: np.ndarray) -> Path:
    """Write a uint8 array as an IDX file (gzipped when ``path`` ends in .gz); used by tests and exports."""
    path = Path(path)
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as f:
        f.write(header + array.tobytes())
    return path


def _find_idx(folder: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if (folder / name).is_file():
            return folder / name
    raise DataError(
        f"no {stem}[.gz] in {str(folder)!r}; an IDX folder needs the four MNIST-format files "
        f"({', '.join(IDX_FILES.values())})"
    )


# --------------------------------------------------------------------------------------------- converting


def to_images(x: np.ndarray | torch.Tensor, scale: float | None = None) -> torch.Tensor:
    """Pixels ``(N, H*W)`` or ``(N, H, W)`` -> float tensor ``(N, 1, 32, 32)`` in [0, 1].

    ``scale`` divides the values (255 for bytes); images smaller than 28x28 are resized to 28x28 first
    (bilinear), then every image is padded with zeros to 32x32.
    """
    t = torch.as_tensor(np.asarray(x), dtype=torch.float32)
    if t.ndim == 2:
        side = int(round(t.shape[1] ** 0.5))
        if side * side != t.shape[1]:
            raise DataError(f"cannot read images of {t.shape[1]} pixels as a square")
        t = t.reshape(-1, side, side)
    if t.ndim != 3:
        raise DataError(f"expected images of shape (N, H, W), got {tuple(t.shape)}")
    if scale is None:
        scale = 255.0 if t.numel() and float(t.max()) > 1.0 else 1.0
    t = (t / scale).clamp(0, 1).unsqueeze(1)
    if t.shape[-1] < 28:
        t = F.interpolate(t, size=(28, 28), mode="bilinear", align_corners=False).clamp(0, 1)
    if t.shape[-1] > SIZE or t.shape[-2] > SIZE:
        raise DataError(f"images of {t.shape[-2]}x{t.shape[-1]} pixels are larger than {SIZE}x{SIZE}")
    ph, pw = SIZE - t.shape[-2], SIZE - t.shape[-1]
    return F.pad(t, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)).contiguous()


def _labels(y: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.asarray(y).astype(np.int64))


# ----------------------------------------------------------------------------------------------- loaders


@lru_cache(maxsize=2)
def _load_mnist(path: str) -> tuple[torch.Tensor, ...]:
    obj = load_numpy_pickle(path)
    try:
        (trx, try_), (vax, vay), (tex, tey) = obj
    except (TypeError, ValueError):
        raise DataError(f"{path!r} does not hold the expected ((train), (valid), (test)) array pairs") from None
    train_x = to_images(np.concatenate([trx, vax]), scale=1.0)
    return train_x, _labels(np.concatenate([try_, vay])), to_images(tex, scale=1.0), _labels(tey)


def load_mnist() -> ImageData:
    """MNIST: 60k training (pickle's train + validation) and 10k test images."""
    from genlab.data.fetch import data_path

    tx, ty, vx, vy = _load_mnist(str(data_path("mnist")))
    return ImageData("mnist", tx, ty, vx, vy, tuple(str(i) for i in range(10)))


def load_idx_folder(folder: str | Path, name: str = "idx", classes: tuple[str, ...] | None = None) -> ImageData:
    """The four MNIST-format IDX files from ``folder`` (plain or .gz)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"IDX folder {str(folder)!r} not found; pass --set data_dir=FOLDER with the 4 IDX files")
    arrays = {k: read_idx(_find_idx(folder, stem)) for k, stem in IDX_FILES.items()}
    for split in ("train", "test"):
        if len(arrays[f"{split}_x"]) != len(arrays[f"{split}_y"]):
            raise DataError(f"{split} images and labels in {str(folder)!r} differ in count")
    n_cls = int(max(arrays["train_y"].max(), arrays["test_y"].max())) + 1
    return ImageData(
        name,
        to_images(arrays["train_x"], 255.0),
        _labels(arrays["train_y"]),
        to_images(arrays["test_x"], 255.0),
        _labels(arrays["test_y"]),
        classes or tuple(str(i) for i in range(n_cls)),
    )


def load_fashion() -> ImageData:
    """Fashion-MNIST from the fetched IDX files."""
    from genlab.data.fetch import data_path

    folder = data_path("fashion", IDX_FILES["train_x"] + ".gz").parent
    return load_idx_folder(folder, "fashion", FASHION_CLASSES)


def load_digits(test_fraction: float = 0.2) -> ImageData:
    """scikit-learn's 8x8 digits (0..16), resized to 28x28 and padded; the last 20% are the test set."""
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    x = to_images(d.images, scale=16.0)
    y = _labels(d.target)
    n_test = int(round(len(x) * test_fraction))
    classes = tuple(str(i) for i in range(10))
    return ImageData("digits", x[:-n_test], y[:-n_test], x[-n_test:], y[-n_test:], classes)


def load_images(name: str, data_dir: str | Path | None = None) -> ImageData:
    """Load dataset ``name`` (mnist, fashion, digits, or idx with ``data_dir``)."""
    choose("dataset", name, DATASETS, DataError)
    if name == "mnist":
        return load_mnist()
    if name == "fashion":
        return load_fashion()
    if name == "digits":
        return load_digits()
    if not data_dir:
        raise DataError("dataset 'idx' needs a folder: --set data_dir=FOLDER (with the 4 MNIST-format IDX files)")
    return load_idx_folder(data_dir)


@lru_cache(maxsize=2)
def load_subset(name: str, data_dir: str = "", train: int = 0, test: int = 0) -> ImageData:
    """:func:`load_images` cut to its first ``train`` / ``test`` examples (0 keeps all), cached per process: every
    part of a lab that asks for the same cut shares one copy."""
    return load_images(name, data_dir or None).subset(train, test)
