"""Image data: the numpy-only unpickler, IDX files, padding to 32x32, and the dataset errors."""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import pickle

import numpy as np
import pytest
import torch

from genlab.data import fetch, images
from genlab.errors import DataError


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > evil.txt",))


def test_numpy_only_unpickler_reads_arrays(tmp_path):
    x = np.arange(12, dtype=np.float32).reshape(3, 4) / 12
    path = tmp_path / "ok.pkl.gz"
    with gzip.open(path, "wb") as f:
        pickle.dump(((x, np.array([1, 2, 3])), [x[:1]]), f, protocol=2)
    obj = images.load_numpy_pickle(path)
    np.testing.assert_array_equal(obj[0][0], x)
    assert obj[0][1].tolist() == [1, 2, 3]


def test_numpy_only_unpickler_refuses_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(_Evil()))
    with pytest.raises(DataError, match="refusing to unpickle"):
        images.load_numpy_pickle(path)
    assert not (tmp_path / "evil.txt").exists()


def test_idx_roundtrip_and_bad_magic(tmp_path):
    arr = np.random.default_rng(0).integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    p = images.write_idx(tmp_path / "a-idx3-ubyte.gz", arr)
    np.testing.assert_array_equal(images.read_idx(p), arr)
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(DataError, match="not an IDX file"):
        images.read_idx(bad)


def _write_idx_folder(folder, n_train=20, n_test=8, side=28):
    rng = np.random.default_rng(1)
    folder.mkdir(parents=True, exist_ok=True)
    for key, n in (("train", n_train), ("test", n_test)):
        stem_x = images.IDX_FILES[f"{key}_x"]
        stem_y = images.IDX_FILES[f"{key}_y"]
        images.write_idx(folder / f"{stem_x}.gz", rng.integers(0, 256, size=(n, side, side)))
        images.write_idx(folder / stem_y, np.arange(n) % 10)  # plain file: both forms are accepted


def test_idx_folder_padded_to_32(tmp_path):
    _write_idx_folder(tmp_path / "idx")
    d = images.load_images("idx", tmp_path / "idx")
    assert d.train_x.shape == (20, 1, 32, 32) and d.test_x.shape == (8, 1, 32, 32)
    assert d.train_x.dtype == torch.float32 and d.train_x.min() >= 0 and d.train_x.max() <= 1
    assert d.train_x[:, :, :2].abs().sum() == 0 and d.train_x[:, :, :, -2:].abs().sum() == 0  # zero border
    assert d.train_y.tolist() == [i % 10 for i in range(20)]


def _as_fetched(monkeypatch, name, folder):
    """Mark fake files as the fetched dataset ``name``: the manifest gets their checksums (the cache is verified
    against the manifest on every use) and the folder its completion marker."""
    ds = fetch.MANIFESTS[name]
    items = tuple(
        dataclasses.replace(i, sha256=fetch.checksum(folder / i.target))
        for i in ds.items
        if (folder / i.target).exists()
    )
    monkeypatch.setitem(fetch.MANIFESTS, name, dataclasses.replace(ds, items=items))
    (folder / ".complete").write_text(json.dumps({}))


def test_fashion_from_cache_files(tmp_path, monkeypatch):
    monkeypatch.setenv("GENLAB_DATA", str(tmp_path))
    _write_idx_folder(tmp_path / "fashion")
    _as_fetched(monkeypatch, "fashion", tmp_path / "fashion")
    d = images.load_images("fashion")
    assert d.name == "fashion" and d.classes[0] == "T-shirt" and d.train_x.shape == (20, 1, 32, 32)


def test_mnist_pickle_from_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GENLAB_DATA", str(tmp_path))
    rng = np.random.default_rng(2)
    parts = [(rng.random((n, 784), dtype=np.float32), rng.integers(0, 10, n)) for n in (6, 4, 5)]
    (tmp_path / "mnist").mkdir()
    with gzip.open(tmp_path / "mnist" / "mnist.pkl.gz", "wb") as f:
        pickle.dump(tuple(parts), f, protocol=2)
    _as_fetched(monkeypatch, "mnist", tmp_path / "mnist")
    d = images.load_images("mnist")
    assert d.train_x.shape == (10, 1, 32, 32) and d.test_x.shape == (5, 1, 32, 32)
    np.testing.assert_allclose(d.train_x[6, 0, 2:30, 2:30].numpy(), parts[1][0][0].reshape(28, 28))
    assert d.train_y.tolist() == parts[0][1].tolist() + parts[1][1].tolist()


def test_missing_mnist_names_fetch_command(tmp_path, monkeypatch):
    monkeypatch.setenv("GENLAB_DATA", str(tmp_path))
    with pytest.raises(DataError, match="genlab data fetch mnist"):
        images.load_images("mnist")


def test_digits_and_bad_names():
    d = images.load_images("digits")
    assert d.train_x.shape[1:] == (1, 32, 32) and len(d.train_x) + len(d.test_x) == 1797
    assert d.train_x.max() <= 1 and d.num_classes == 10
    with pytest.raises(DataError, match="unknown dataset 'mnsit'"):
        images.load_images("mnsit")
    with pytest.raises(DataError, match="data_dir"):
        images.load_images("idx")
    sub = d.subset(100, 10)
    assert len(sub.train_x) == 100 and len(sub.test_y) == 10
