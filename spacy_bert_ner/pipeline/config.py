"""Editing a saved pipeline's ``config.cfg`` in place: the one way the tools
change a setting of a trained pipeline (its runtime when packaging, its
temperature after calibration) without touching its weights."""

from pathlib import Path
from typing import Callable, TypeVar, Union

from thinc.api import Config

T = TypeVar("T")


def edit_config(model_dir: Union[str, Path], edit: Callable[[Config, Path], T]) -> T:
    """Load ``MODEL_DIR/config.cfg`` uninterpolated, let ``edit(config, path)``
    change it, and write it back; returns what ``edit`` returns. The file is
    replaced, never written through: a hard-linked copy of a pipeline (as
    ``package`` stages one) leaves the original's config as it was. ``edit``
    raises to leave the file untouched."""
    from spacy.util import load_config

    path = Path(model_dir) / "config.cfg"
    if not path.is_file():
        raise ValueError(f"{model_dir}: not a pipeline directory (no config.cfg); pass a directory, not a package name")
    config = load_config(path, interpolate=False)
    result = edit(config, path)
    text = config.to_str()
    path.unlink()
    path.write_text(text, encoding="utf8")
    return result
