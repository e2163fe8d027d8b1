"""Building a pip-installable model with ``spacy package``: the name, version,
requirements and the evaluation metrics go into the package's meta, and the
``spacy-bert-ner`` wheel whose registered functions the model's config names is
built beside it.

``spacy package`` adds a requirement for every package whose registered
functions the pipeline's config names (``spacy-transformers``,
``spacy-bert-ner``), with a minor-version range. What it cannot know is added
here: the torch floor that makes loading weights safe. The ``spacy-bert-ner``
requirement is resolved by the wheel built beside the model (``pip install``
both), or by an index where the package is published.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Union

import srsly


def runtime_requirements() -> List[str]:
    """What the packaged pipeline needs at load time that spaCy's own detection
    does not add: torch, with the range this package itself requires (from
    its installed metadata; torch >= 2.6 loads weights with weights_only=True,
    so no pickled code runs)."""
    from importlib.metadata import requires

    from packaging.requirements import Requirement

    for line in requires("spacy-bert-ner") or []:
        requirement = Requirement(line)
        if requirement.name == "torch" and requirement.marker is None:
            return [f"torch{requirement.specifier}"]
    raise RuntimeError("spacy-bert-ner's metadata has no torch requirement: reinstall the package")


def build_meta(
    model_path: Union[str, Path],
    name: str,
    version: str,
    metrics: Optional[Dict] = None,
    extra: Optional[Dict] = None,
) -> Dict:
    """The meta.json for ``spacy package``: the model's own meta, overridden.
    ``spacy package`` adds the packages the config names to ``requirements``."""
    meta = srsly.read_json(Path(model_path) / "meta.json")
    meta["name"] = name
    meta["version"] = version
    meta["requirements"] = runtime_requirements()
    if metrics:
        keep = ("ents_p", "ents_r", "ents_f", "ents_per_type")
        meta["performance"] = {k: metrics[k] for k in keep if k in metrics}
        meta.setdefault("spacy_bert_ner", {})["evaluation"] = {
            k: metrics.get(k) for k in ("data", "docs", "words", "transformer", "steps", "train_seconds", "machine", "date")
        }
    if extra:
        meta.update(extra)
    return meta


def _stage_model(model_path: Path, staging: Path, readme: Optional[str], runtime: Optional[str] = None) -> Path:
    """A copy of the pipeline directory with ``README.md`` set to ``readme`` and
    the transformers' default ``runtime`` set in its ``config.cfg``.

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
    if readme is not None:
        card = target / "README.md"
        if card.exists():
            card.unlink()  # it may be a hard link to the original's README
        card.write_text(readme, encoding="utf8")
    if runtime is not None:
        set_config_runtime(target, runtime)
    return target


def set_config_runtime(model_dir: Path, runtime: str) -> List[str]:
    """Set ``runtime`` on every ``spacy_bert_ner.TransformerModel.v1`` in a saved
    pipeline's config. Returns the components changed."""
    from spacy_bert_ner.pipeline.config import edit_config
    from spacy_bert_ner.runtime import check_runtime

    check_runtime(runtime)

    def edit(config, path: Path) -> List[str]:
        changed = []
        for name, component in (config.get("components") or {}).items():
            model = (component or {}).get("model") or {}
            if model.get("@architectures") == "spacy_bert_ner.TransformerModel.v1":
                model["runtime"] = runtime
                changed.append(name)
        if not changed:
            raise ValueError(f"{path}: no transformer built by spacy_bert_ner.TransformerModel.v1, so no runtime to set")
        return changed

    return edit_config(model_dir, edit)


def package(
    model_path: Union[str, Path],
    output_dir: Union[str, Path],
    name: str,
    version: str,
    metrics_path: Optional[Union[str, Path]] = None,
    readme: Optional[str] = None,
    create_wheel: bool = True,
    runtime: Optional[str] = None,
) -> List[Path]:
    """Run ``spacy package`` and return the paths of the model's wheel and of the
    ``spacy-bert-ner`` wheel built beside it in the same ``dist/`` folder (or the
    package folder alone, without ``create_wheel``).

    ``readme`` (Markdown, e.g. :func:`spacy_bert_ner.packaging.modelcard.model_card`)
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
        staged = readme is not None or runtime is not None
        source = _stage_model(model_path, Path(staging), readme, runtime) if staged else model_path
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
    if not create_wheel:
        return [pkg_dir]
    dist = pkg_dir / "dist"
    wheels = sorted(dist.glob(f"{meta['lang']}_{name}-*.whl"))
    if not wheels:
        raise RuntimeError(f"spacy package made no wheel in {dist}")
    return [wheels[-1], build_own_wheel(dist)]


def source_tree() -> Optional[Path]:
    """The source checkout this ``spacy_bert_ner`` runs from (its ``pyproject.toml``), if any."""
    import spacy_bert_ner

    root = Path(spacy_bert_ner.__file__).resolve().parent.parent
    pyproject = root / "pyproject.toml"
    if pyproject.is_file() and 'name = "spacy-bert-ner"' in pyproject.read_text(encoding="utf8"):
        return root
    return None


def build_own_wheel(dist: Path) -> Path:
    """Build the ``spacy-bert-ner`` wheel into ``dist`` (``pip wheel`` of the source
    checkout, no dependencies; offline when this environment's setuptools can
    build it) and return its path."""
    from spacy_bert_ner import __version__

    root = source_tree()
    if root is None:
        raise RuntimeError(
            "spacy-bert-ner is not installed from a source checkout, so its wheel cannot be built here: "
            f"put the spacy_bert_ner-{__version__} wheel you installed beside the model wheel"
        )
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(dist), str(root)]
    if _setuptools_version() >= (77,):  # what pyproject.toml's build-system asks for
        command.insert(5, "--no-build-isolation")
    done = subprocess.run(command, capture_output=True, text=True)
    wheels = sorted(dist.glob(f"spacy_bert_ner-{__version__}-*.whl"))
    if done.returncode != 0 or not wheels:
        raise RuntimeError(f"building the spacy-bert-ner wheel failed: {done.stdout}{done.stderr}")
    return wheels[-1]


def _setuptools_version() -> tuple:
    try:
        from importlib.metadata import version

        return tuple(int(part) for part in version("setuptools").split(".")[:2])
    except Exception:  # not installed, or an unusual version string
        return (0,)
