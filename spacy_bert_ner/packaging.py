"""Building a pip-installable model with ``spacy package``: the name, version,
pinned requirements and the evaluation metrics go into the package's meta."""
import os
import shutil
import tempfile
from pathlib import Path
from typing import Dict, Optional, Union

import srsly

# Requirements the packaged pipeline needs at load time besides spaCy itself.
RUNTIME_REQUIREMENTS = [
    "spacy-transformers>=1.4.0,<1.5.0",
    "transformers>=4.30,<4.53.3",
    "torch>=2.1,<2.15",
]


def build_meta(
    model_path: Union[str, Path],
    name: str,
    version: str,
    metrics: Optional[Dict] = None,
    extra: Optional[Dict] = None,
) -> Dict:
    """The meta.json for ``spacy package``: the model's own meta, overridden."""
    from . import __version__

    meta = srsly.read_json(Path(model_path) / "meta.json")
    config_text = (Path(model_path) / "config.cfg").read_text(encoding="utf8")
    requirements = list(RUNTIME_REQUIREMENTS)
    if "spacy_bert_ner." in config_text:
        # its registered functions are needed to load the pipeline
        requirements.append(f"spacy-bert-ner>={__version__}")
    meta["name"] = name
    meta["version"] = version
    # `spacy package` adds any other third-party package the config names
    meta["requirements"] = requirements
    if metrics:
        keep = ("ents_p", "ents_r", "ents_f", "ents_per_type")
        meta["performance"] = {k: metrics[k] for k in keep if k in metrics}
        meta.setdefault("spacy_bert_ner", {})["evaluation"] = {
            k: metrics.get(k) for k in ("data", "docs", "words", "transformer", "steps", "train_seconds", "machine", "date")
        }
    if extra:
        meta.update(extra)
    return meta


def _stage_model(model_path: Path, staging: Path, readme: str) -> Path:
    """A copy of the pipeline directory with ``README.md`` set to ``readme``.

    ``spacy package`` takes a README.md found in the pipeline directory as the
    package's README: it is copied next to setup.py (the sdist's README and the
    wheel's long description) and stays inside the packaged model directory.
    Files are hard-linked where the file system allows, so big weights are not
    copied; the original directory is never written to.
    """
    target = staging / model_path.name

    def link_or_copy(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(model_path, target, copy_function=link_or_copy)
    card = target / "README.md"
    if card.exists():
        card.unlink()  # it may be a hard link to the original's README
    card.write_text(readme, encoding="utf8")
    return target


def package(
    model_path: Union[str, Path],
    output_dir: Union[str, Path],
    name: str,
    version: str,
    metrics_path: Optional[Union[str, Path]] = None,
    readme: Optional[str] = None,
    create_wheel: bool = True,
) -> Path:
    """Run ``spacy package`` and return the path of the wheel (or of the package folder).

    ``readme`` (Markdown, e.g. :func:`spacy_bert_ner.modelcard.model_card`)
    becomes the package's README.md: next to setup.py, in the sdist, as the
    wheel's long description and inside the installed model directory.
    Without it, spaCy's rules apply (a README.md in the pipeline directory, or
    one generated from the meta).
    """
    from spacy.cli.package import package as spacy_package

    model_path, output_dir = Path(model_path), Path(output_dir)
    metrics = srsly.read_json(metrics_path) if metrics_path else None
    meta = build_meta(model_path, name, version, metrics)
    output_dir.mkdir(parents=True, exist_ok=True)
    meta_path = output_dir / f"{meta['lang']}_{name}-meta.json"
    srsly.write_json(meta_path, meta)
    with tempfile.TemporaryDirectory(prefix=".staging-", dir=str(output_dir)) as staging:
        source = _stage_model(model_path, Path(staging), readme) if readme is not None else model_path
        spacy_package(
            source,
            output_dir,
            meta_path=meta_path,
            create_meta=False,
            create_sdist=not create_wheel,
            create_wheel=create_wheel,
            force=True,
            silent=True,
        )
    pkg_dir = output_dir / f"{meta['lang']}_{name}-{version}"
    if create_wheel:
        wheels = sorted((pkg_dir / "dist").glob("*.whl"))
        if not wheels:
            raise RuntimeError(f"spacy package made no wheel in {pkg_dir / 'dist'}")
        return wheels[-1]
    return pkg_dir
