"""The train/dev/test layouts of the datasets the project knows."""

from pathlib import Path
from typing import List, Optional, Union

from spacy_bert_ner.formats.convert import ConversionReport, convert
from spacy_bert_ner.formats.splits import parse_split
from spacy_bert_ner.project.datasets import DATASETS, OWN_FILES, find_file

WIKIANN_SPLITS = {"train": "train.tsv", "dev": "validation.tsv", "test": "test.tsv"}


def prepare(
    dataset: str,
    assets: Union[str, Path],
    output_dir: Union[str, Path],
    *,
    train: Optional[Path] = None,
    dev: Optional[Path] = None,
    test: Optional[Path] = None,
    split: str = "0.8,0.1,0.1",
    seed: int = 0,
    n_sents: int = 1,
    limit: int = 0,
) -> List[ConversionReport]:
    """Write ``train.spacy``, ``dev.spacy`` and ``test.spacy`` into ``output_dir``.

    ``wikiann-en`` uses its own three splits; ``gmb`` is cut by ``split``/``seed``;
    ``conll`` takes any column files given as ``train``/``dev``/``test``,
    ``spans`` annotation-tool exports (Prodigy, doccano, Label Studio).
    """
    out = Path(output_dir)
    assets = Path(assets)
    if dataset == "wikiann-en":
        return [
            convert(assets / "wikiann-en" / name, out / f"{part}.spacy", format="conll", n_sents=n_sents, limit=limit)
            for part, name in WIKIANN_SPLITS.items()
        ]
    if dataset == "gmb":
        path = find_file(assets, DATASETS["gmb"][0])
        if path is None:
            raise FileNotFoundError(f"no GMB file in {assets}: run `spacy-bert-ner fetch-data gmb {assets}` first")
        return [convert(path, out, format="gmb", split=parse_split(split), seed=seed, n_sents=n_sents, limit=limit)]
    if dataset in OWN_FILES:
        files = {"train": train, "dev": dev, "test": test}
        missing = [k for k, v in files.items() if not v]
        if missing:
            raise ValueError(f"dataset {dataset!r} needs --{' --'.join(missing)}")
        if dataset == "spans":
            return [convert(path, out / f"{part}.spacy", format=span_format(path), limit=limit) for part, path in files.items()]
        return [convert(path, out / f"{part}.spacy", n_sents=n_sents, limit=limit) for part, path in files.items()]
    raise ValueError(f"unknown dataset {dataset!r}; expected wikiann-en, gmb, conll or spans")


def span_format(path: Path) -> str:
    """The annotation tool a span export comes from, or an error naming the file."""
    from spacy_bert_ner.errors import InputError
    from spacy_bert_ner.formats.spans import SPAN_FORMATS, detect_span_format

    found = detect_span_format(path)
    if found is None:
        raise InputError(
            path, None, f"dataset 'spans' reads annotation-tool exports ({', '.join(SPAN_FORMATS)}); this is none of them"
        )
    return found
