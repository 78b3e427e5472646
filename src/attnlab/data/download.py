"""Finding Multi30k on disk, or downloading it once into a cache with sha256 checks.

Search order for ``<split>.<lang>.gz`` (or the uncompressed ``<split>.<lang>``): the ``data_dir``
argument (``--data-dir`` / ``data.data_dir``), then ``$ATTNLAB_DATA``, each also under a
``multi30k/`` sub-folder, then the cache (``$ATTNLAB_CACHE`` or ``~/.cache/attnlab``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
import warnings
from pathlib import Path

from attnlab.data.errors import DataError

__all__ = ["MULTI30K_URL", "MULTI30K_SHA256", "MULTI30K_SPLITS", "cache_dir", "find_multi30k_file",
           "download_file", "sha256_of"]

MULTI30K_URL = "https://github.com/multi30k/dataset/raw/master/data/task1/raw/{split}.{lang}.gz"
MULTI30K_SPLITS = ("train", "val", "test_2016_flickr", "test_2017_flickr", "test_2017_mscoco",
                   "test_2018_flickr")

# Checksums of the files as published by the multi30k/dataset repository (task 1, raw).
MULTI30K_SHA256 = {
    "train.en.gz": "d79cfa999dd4c51d2cb42499b6796d5a882c3a8a961923c25a898c90f8bbd56f",
    "train.fr.gz": "622e75069e9f4c577425c4f277116ce66e63a2401c0a2312d90073cb12379a3c",
    "train.de.gz": "726e39b2fa9eb9ffb6dc763fb35a179f80fae06ffc5d28b6ace5faa883de28a6",
    "val.en.gz": "14f7d25ddd868909a9213e361768460edcacdd6ab9d1e77b92560dc10c10dc28",
    "val.fr.gz": "ca3106f1a72390591d25f6c45cb4cd39dec4cd3f123e099748a3ce5256c160e9",
    "val.de.gz": "f0cba2f995189cf5770f29a8a9a537a3ad3f51657ad873405082ff6863a5e75a",
    "test_2016_flickr.en.gz": "611d361c6334bc7246101d48097c13cf5c4413c5befc793cc629934359d532d9",
    "test_2016_flickr.fr.gz": "6d326e188d259fb1d04ac19eae3af956559b3a0b93d7635e56c90987c40c8b90",
    "test_2016_flickr.de.gz": "9204244e408ccb38d2a55cfcd344df15005fc42a07a6e55ca6c52b6ababb8cc8",
    "test_2017_flickr.en.gz": "76a444ee25172e72695cddb13ae4a3bda59430617be88e0bb46b60504f054074",
    "test_2017_flickr.fr.gz": "3ba671ceb2299f3304ffafefea7a833d08632fbaf0ba18546f8a2ec2391af496",
    "test_2017_flickr.de.gz": "a2c89666db00c495cd8513b9d708d5a3acc205d7de312ef2bf5fb7ebc1540aee",
}


def cache_dir() -> Path:
    return Path(os.environ.get("ATTNLAB_CACHE") or Path.home() / ".cache" / "attnlab")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _candidates(directory: Path, split: str, lang: str) -> list[Path]:
    names = (f"{split}.{lang}.gz", f"{split}.{lang}")
    return [d / n for d in (directory, directory / "multi30k") for n in names]


def find_multi30k_file(split: str, lang: str, data_dir: str | Path | None = None,
                       download: bool = True) -> Path:
    """Path of ``<split>.<lang>(.gz)``: a local copy if there is one, else a verified download."""
    if split not in MULTI30K_SPLITS:
        raise DataError(f"Multi30k has no split {split!r}; choose one of {', '.join(MULTI30K_SPLITS)}")
    if data_dir is not None and not Path(data_dir).is_dir():
        raise DataError(f"data directory {data_dir} (--data-dir / data.data_dir) "
                        f"{'is a file' if Path(data_dir).exists() else 'does not exist'}")
    searched = []
    for directory in (data_dir, os.environ.get("ATTNLAB_DATA"), cache_dir() / "multi30k"):
        if not directory:
            continue
        for candidate in _candidates(Path(directory), split, lang):
            searched.append(str(candidate.parent))
            if candidate.is_file():
                return candidate
    if not download:
        raise DataError(
            f"Multi30k file {split}.{lang}.gz not found (looked in {', '.join(dict.fromkeys(searched))}); "
            "pass --data-dir DIR or set ATTNLAB_DATA to a local copy"
        )
    name = f"{split}.{lang}.gz"
    return download_file(MULTI30K_URL.format(split=split, lang=lang), cache_dir() / "multi30k" / name,
                         MULTI30K_SHA256.get(name))


def download_file(url: str, dest: Path, sha256: str | None) -> Path:
    """Download ``url`` to ``dest`` atomically and check its sha256.

    A file whose checksum does not match is kept aside as ``<dest>.bad`` and an error explains it.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=dest.parent, delete=False, suffix=".part") as tmp:
        tmp_path = Path(tmp.name)
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                shutil.copyfileobj(response, tmp)
        except OSError as err:
            tmp_path.unlink(missing_ok=True)
            raise DataError(
                f"could not download {url} ({err}); without a network, pass --data-dir DIR "
                "(or set ATTNLAB_DATA) to a local copy of the files"
            ) from None
    actual = sha256_of(tmp_path)
    if sha256 is None:
        warnings.warn(f"{dest.name}: no published checksum to verify against; its sha256 is {actual}",
                      stacklevel=2)
    elif actual != sha256:
        bad = dest.with_name(dest.name + ".bad")
        os.replace(tmp_path, bad)
        raise DataError(
            f"checksum mismatch for {url}: expected sha256 {sha256}, got {actual}; "
            f"the download was kept aside as {bad} and not used"
        )
    os.replace(tmp_path, dest)
    return dest
