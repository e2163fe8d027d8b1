"""Locating the datasets: a local folder named by ``SPACY_BERT_NER_DATA``
(laid out like ``wikiann-en/*.tsv``, ``gmb-kaggle/ner_dataset.csv.gz``), or a
download from the public URLs. Every file is checked against its sha256."""

import hashlib
import io
import os
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple, Union

from spacy_bert_ner.formats.io import atomic_write

ENV_VAR = "SPACY_BERT_NER_DATA"


@dataclass(frozen=True)
class DataFile:
    name: str  # path below the data folder, e.g. "wikiann-en/train.tsv"
    sha256: str  # of the file as stored under ``name``
    url: str  # public download
    zip_member: Optional[str] = None  # when ``url`` is a zip: the member to take
    download_name: Optional[str] = None  # the file name a download is saved as
    download_sha256: Optional[str] = None  # sha256 of the downloaded content
    also: Tuple[str, ...] = ()  # other names readers accept (e.g. the zip `spacy project assets` fetches)


_PANX = (
    "https://raw.githubusercontent.com/KyGao/token-level-classification/348bb8f13d083635f92d12e7d6f41d7f0bfb69f1/download/panx"
)
_GMB = "https://github.com/codingtime123/Named-Entity-Recognition-with-NLP/raw/bae7eccc99b1ca894587a959e3d1a707d7f0853a/ner_dataset.csv.zip"

DATASETS: Dict[str, List[DataFile]] = {
    "wikiann-en": [
        DataFile(
            "wikiann-en/train.tsv", "28f5492d1cfd0be1b936a4d40a7d17568df66957a77fd608f94bd6c0862f27d8", f"{_PANX}/train-en.tsv"
        ),
        DataFile(
            "wikiann-en/validation.tsv", "d70ce55d6e88b6c4cabcd8dbb927219c1dd4cd1c523ff045c7994527ce5fa782", f"{_PANX}/dev-en.tsv"
        ),
        DataFile(
            "wikiann-en/test.tsv", "188a37dcd7320ef600e354b6cda3a3abe78ca8250e8a675facdcb81a188719cb", f"{_PANX}/test-en.tsv"
        ),
    ],
    "gmb": [
        DataFile(
            "gmb-kaggle/ner_dataset.csv.gz",
            "4c91123c17b1a10a5e4160a3446196b2cf722e6b86730d83287510ef5e5ba03f",
            _GMB,
            zip_member="ner_dataset.csv",
            download_name="gmb-kaggle/ner_dataset.csv",
            download_sha256="83257dd94ed59596809dc9f5b28f1f035c9d925d5a647f266db43a2f098e8f1a",
            also=("gmb-kaggle/ner_dataset.csv.zip",),
        )
    ],
}


class ChecksumError(ValueError):
    pass


def sha256_of(path: Union[str, Path]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def data_dir_from_env() -> Optional[Path]:
    value = os.environ.get(ENV_VAR)
    return Path(value) if value else None


def find_file(dest: Union[str, Path], data_file: DataFile) -> Optional[Path]:
    """Where a dataset file lies below ``dest``: as stored, as downloaded, or under another accepted name."""
    for name in (data_file.name, data_file.download_name, *data_file.also):
        if name and (Path(dest) / name).exists():
            return Path(dest) / name
    return None


def fetch_dataset(
    dataset: str,
    dest: Union[str, Path],
    source: Optional[Union[str, Path]] = None,
    log: Callable[[str], None] = lambda s: None,
) -> List[Path]:
    """Put the files of ``dataset`` below ``dest``, checked against their sha256.

    ``source`` (default: ``$SPACY_BERT_NER_DATA``) is a local folder to copy
    from; without it the files are downloaded. Files already in ``dest`` with
    the right checksum are kept.
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; known: {', '.join(DATASETS)}")
    source = Path(source) if source else data_dir_from_env()
    out: List[Path] = []
    for df in DATASETS[dataset]:
        have = find_file(dest, df)
        if have is not None and sha256_of(have) in (df.sha256, df.download_sha256):
            log(f"{have}: present, checksum ok")
            out.append(have)
            continue
        if source is not None:
            src = Path(source) / df.name
            if not src.exists():
                raise FileNotFoundError(f"{src} not found ({ENV_VAR}={source}); expected the layout {df.name}")
            target = Path(dest) / df.name
            atomic_write(target, src=src)
            expected = df.sha256
        else:
            target = Path(dest) / (df.download_name or df.name)
            log(f"downloading {df.url}")
            _download(df, target)
            expected = df.download_sha256 or df.sha256
        got = sha256_of(target)
        if got != expected:
            target.unlink()
            raise ChecksumError(f"{target}: sha256 {got} does not match the expected {expected}")
        log(f"{target}: checksum ok")
        out.append(target)
    return out


# Datasets made of the user's own train/dev/test files.
OWN_FILES = ("conll", "spans")


def record_own_files(dataset: str, dest: Union[str, Path], files: Dict[str, Optional[Path]]) -> Path:
    """Check that the user's ``train``/``dev``/``test`` files exist and record
    them (:func:`record_files`)."""
    missing = [part for part, path in files.items() if not path]
    if missing:
        raise ValueError(f"dataset {dataset!r} needs --{' --'.join(missing)}")
    absent = [f"{part} file {path}" for part, path in files.items() if not Path(path).is_file()]
    if absent:
        raise FileNotFoundError(f"no such file: {', '.join(absent)}")
    return record_files(dataset, dest, files)


def record_files(dataset: str, dest: Union[str, Path], files: Dict[str, Path]) -> Path:
    """Write ``dest/<dataset>/files.json`` with each file's path, size and sha256.

    The manifest is what the project's ``convert`` step depends on, so it
    reruns when one of the dataset's files changes.
    """
    import srsly

    manifest = {
        part: {"path": str(path), "bytes": Path(path).stat().st_size, "sha256": sha256_of(path)} for part, path in files.items()
    }
    target = Path(dest) / dataset / "files.json"
    atomic_write(target, (srsly.json_dumps(manifest, indent=2) + "\n").encode("utf8"))
    return target


def _download(df: DataFile, target: Path) -> None:  # pragma: no cover - needs the internet
    target.parent.mkdir(parents=True, exist_ok=True)
    with urllib.request.urlopen(df.url, timeout=60) as response:
        payload = response.read()
    if df.zip_member:
        with zipfile.ZipFile(io.BytesIO(payload)) as zf:
            payload = zf.read(df.zip_member)
    atomic_write(target, payload)


# What the model card says about each dataset of the project.
DATASET_CARDS: Dict[str, Dict[str, str]] = {
    "wikiann-en": {
        "name": "WikiANN English (PAN-X)",
        "description": (
            "WikiANN English (Pan et al. 2017) in the train/dev/test split of Rahimi et al. (2019): "
            "Wikipedia sentences tagged with PER, ORG and LOC."
        ),
        "limits": (
            "WikiANN's labels are *silver*: produced automatically from Wikipedia links and "
            "knowledge-base types, not by annotators. Some test labels are wrong, and its sentences are "
            "mostly short Wikipedia fragments (titles, list items), so expect lower accuracy on running "
            "text from other domains such as news, e-mail or social media."
        ),
    },
    "gmb": {
        "name": "GMB (Kaggle 'Annotated Corpus for NER')",
        "description": (
            "The Groningen Meaning Bank NER corpus as distributed on Kaggle (news text), labels geo, gpe, "
            "per, org, tim, art, eve and nat, split into train/dev/test by the project."
        ),
        "limits": (
            "The classes art (artefacts), eve (events) and nat (natural phenomena) are rare in GMB: "
            "few training examples and a small test support make their scores unreliable and the model "
            "weak on them. GMB's tags were partly produced automatically and contain noise."
        ),
    },
}


def detect_dataset(*paths: Optional[str]) -> Optional[str]:
    """``wikiann-en`` or ``gmb`` when a data path names it (e.g. ``corpus/gmb/test.spacy``)."""
    for path in paths:
        text = str(path or "").lower()
        for key in ("wikiann", "gmb"):
            if key in text:
                return "wikiann-en" if key == "wikiann" else "gmb"
    return None


def dataset_card(*paths: Optional[str]) -> Optional[Dict[str, str]]:
    """The model-card text of the project dataset a data path names, or None."""
    return DATASET_CARDS.get(detect_dataset(*paths) or "")
