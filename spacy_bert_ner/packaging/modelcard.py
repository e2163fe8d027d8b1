"""The packaged model's README (a model card), rendered from its meta, config
and the test metrics that ``spacy-bert-ner evaluate`` writes."""

import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import srsly

from spacy_bert_ner.evaluation.scoring import markdown_table
from spacy_bert_ner.pipeline.transformer import EMBEDDED_MINILM, embedded_minilm_path, resolve_transformer_name

# Licences of backbones we know; any other one is looked up on its hub page.
TRANSFORMER_LICENSES = {EMBEDDED_MINILM: "Apache-2.0"}

# Labels with fewer test examples than this get a warning: their scores are noisy.
RARE_SUPPORT = 50


def transformer_license(name: Optional[str]) -> str:
    """The backbone's licence as a Markdown string."""
    if not name:
        return "unknown"
    if name in TRANSFORMER_LICENSES:
        return TRANSFORMER_LICENSES[name]
    minilm = embedded_minilm_path()
    if minilm and resolve_transformer_name(name) == minilm:  # an alias of the MiniLM, or its local copy
        return TRANSFORMER_LICENSES[EMBEDDED_MINILM]
    if name.rstrip("/").endswith("all-MiniLM-L6-v2"):
        return TRANSFORMER_LICENSES[EMBEDDED_MINILM]
    if _is_hub_name(name):
        return f"see the model's hub page: <https://huggingface.co/{name}>"
    return "see the model's hub page (the licence of the model this local copy comes from)"


def _is_hub_name(name: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?", name)) and not Path(name).exists()


def tokenizer_lowercases(model_path: Union[str, Path], transformer: Optional[str] = None) -> Optional[bool]:
    """Whether the pipeline's transformer tokenizer lower-cases its input (``do_lower_case``).

    Asks the tokenizer saved in the pipeline; failing that, the
    ``tokenizer_config.json`` of the transformer when it is a local directory.
    ``None`` when neither tells.
    """
    try:
        import spacy

        nlp = spacy.load(model_path)
        for _, pipe in nlp.components:  # disabled ones too: an ensemble's members
            tokenizer = getattr(getattr(pipe, "model", None), "tokenizer", None)
            if tokenizer is not None:
                value = getattr(tokenizer, "do_lower_case", None)
                if value is None:
                    value = tokenizer.init_kwargs.get("do_lower_case")
                if value is not None:
                    return bool(value)
    except Exception:  # an unloadable pipeline: fall back to the files
        pass
    if transformer:
        config_path = Path(resolve_transformer_name(transformer)) / "tokenizer_config.json"
        if config_path.is_file():
            value = srsly.read_json(config_path).get("do_lower_case")
            return None if value is None else bool(value)
    return None


def _casing_features(config: Dict[str, Any]) -> bool:
    """True when the NER model adds casing features to the transformer output."""
    for component in (config.get("components") or {}).values():
        tok2vec = ((component or {}).get("model") or {}).get("tok2vec") or {}
        if tok2vec.get("@architectures") == "spacy_bert_ner.CasedListener.v1" and tok2vec.get("features"):
            return True
    return False


def _temperature(config: Optional[Dict[str, Any]]) -> Optional[float]:
    """The enabled bert_ner (or ensemble) component's confidence temperature, when the config sets one other than 1."""
    from spacy_bert_ner.pipeline.bert_ner import BERT_NER_FACTORIES, enabled_components

    for _, component in enabled_components(config, BERT_NER_FACTORIES):
        value = component.get("temperature")
        if isinstance(value, (int, float)) and value != 1.0:
            return float(value)
    return None


def _ensemble_members(config: Optional[Dict[str, Any]]) -> int:
    """How many members the config's enabled ``bert_ner_ensemble`` component has (0 without one)."""
    from spacy_bert_ner.pipeline.bert_ner import enabled_components

    ensembles = enabled_components(config, ("bert_ner_ensemble",))
    return len(ensembles[0][1].get("members") or []) if ensembles else 0


def _window(config: Dict[str, Any]) -> Optional[str]:
    for component in (config.get("components") or {}).values():
        spans = ((component or {}).get("model") or {}).get("get_spans") or {}
        if "window" in spans:
            return f"{spans['window']} wordpieces (stride {spans.get('stride', spans['window'])})"
    return None


def _minutes(seconds: Optional[float]) -> Optional[str]:
    if not isinstance(seconds, (int, float)):
        return None
    return f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"


def render_model_card(
    meta: Dict[str, Any],
    metrics: Dict[str, Any],
    config: Optional[Dict[str, Any]] = None,
    do_lower_case: Optional[bool] = None,
    dataset: Optional[Dict[str, str]] = None,
    speed: Optional[Dict[str, Any]] = None,
) -> str:
    """The model card as Markdown.

    ``meta`` is the packaged meta (as :func:`spacy_bert_ner.packaging.package.build_meta`
    makes it), ``metrics`` the ``test-metrics.json`` of ``evaluate``,
    ``config`` the pipeline's config as a dict, ``do_lower_case`` what
    :func:`tokenizer_lowercases` found, ``dataset`` the training data's
    ``name``, ``description`` and ``limits`` (the project's are in
    :data:`spacy_bert_ner.project.datasets.DATASET_CARDS`); without it the card
    names the data by its path. ``speed`` is the JSON of
    ``benchmarks/benchmark_runtimes.py`` (words/s per runtime, with the machine).
    """
    config = config or {}
    paths = config.get("paths") or {}
    package = f"{meta['lang']}_{meta['name']}"
    version = meta.get("version", "0.0.0")
    transformer = metrics.get("transformer") or paths.get("transformer")
    data_info = dataset
    labels: List[str] = sorted({label for labels in (meta.get("labels") or {}).values() for label in labels})
    per_type = metrics.get("ents_per_type") or {}

    lines: List[str] = [f"# {package} {version}", ""]
    lines += [
        meta.get("description")
        or f"Named-entity recognition for English: a spaCy pipeline ({', '.join(meta.get('pipeline', []))}) "
        f"with a transformer backbone, trained with spacy-bert-ner.",
        "",
    ]
    facts = [
        ("Name", f"`{package}`"),
        ("Version", f"`{version}`"),
        ("spaCy", f"`{meta.get('spacy_version', '')}`"),
        ("Pipeline", ", ".join(f"`{p}`" for p in meta.get("pipeline", []))),
        ("Transformer", f"`{transformer}`" if transformer else "unknown"),
        ("Transformer licence", transformer_license(transformer)),
        ("Labels", ", ".join(f"`{label}`" for label in labels) or "none"),
        ("Training data", data_info["name"] if data_info else (f"`{paths['train']}`" if paths.get("train") else "unknown")),
        ("Licence", meta.get("license") or "not set"),
    ]
    members = _ensemble_members(config)
    if members > 1:
        facts.insert(
            4,
            (
                "Ensemble",
                f"{members} fine-tuned members; their tag probabilities are averaged "
                f"(prediction costs about {members}x one model)",
            ),
        )
    if meta.get("author"):
        facts.append(("Author", meta["author"]))
    lines += ["| Feature | Description |", "| --- | --- |"] + [f"| **{k}** | {v} |" for k, v in facts] + [""]

    lines += ["## Training data", ""]
    if data_info:
        lines.append(data_info["description"])
    if paths.get("train") or paths.get("dev"):
        lines.append(f"Training file `{paths.get('train')}`, development file `{paths.get('dev')}`.")
    run = []
    if metrics.get("steps") is not None:
        run.append(f"{metrics['steps']} optimizer steps")
    if _minutes(metrics.get("train_seconds")):
        run.append(f"in {_minutes(metrics.get('train_seconds'))}")
    if metrics.get("machine"):
        run.append(f"on {metrics['machine']}")
    if run:
        lines.append("Trained for " + " ".join(run) + ".")
    lines.append("")

    lines += ["## Test results", ""]
    if per_type:
        scores = dict(metrics)
        scores["ents_per_type"] = {label: {"support": 0, **s} for label, s in per_type.items()}
        scores.setdefault("n_gold", sum(s["support"] for s in scores["ents_per_type"].values()))
        where = f"`{metrics['data']}`" if metrics.get("data") else "the test set"
        extra = f", {metrics['docs']} documents, {metrics['words']} words" if metrics.get("docs") else ""
        date = f", evaluated {metrics['date']}" if metrics.get("date") else ""
        lines += [
            f"Entity-level precision, recall and F1 (exact span and label, %) on {where}{extra}{date}:",
            "",
            markdown_table(scores).rstrip("\n"),
            "",
        ]
    else:
        lines += ["No test metrics were given.", ""]

    lines += [
        "## Installation and use",
        "",
        "The model's code is the `spacy-bert-ner` package; its wheel is built beside this one "
        "(`spacy-bert-ner package` puts both in `dist/`):",
        "",
        "```bash",
        f"pip install {package}-{version}-py3-none-any.whl spacy_bert_ner-*.whl",
        "```",
        "",
        "```python",
        "import spacy",
        "",
        "# spacy.require_gpu()  # optional, with a CUDA build of torch and cupy",
        f'nlp = spacy.load("{package}")',
        'doc = nlp("Angela Merkel met the board of Siemens in Munich.")',
        "for ent in doc.ents:",
        "    print(ent.text, ent.label_, ent.start_char, ent.end_char)",
        "",
    ]
    if "bert_ner" in (meta.get("pipeline") or []):
        lines += [
            "# bert_ner gives every entity a confidence in [0, 1] (the mean marginal",
            '# probability of its tags); doc.spans["bert_ner"].attrs["scores"] has them too',
        ]
        temperature = _temperature(config)
        if temperature is not None:
            lines.append(f"# (computed at temperature {temperature:.2f}: [components.bert_ner] temperature in the config)")
        lines += [
            "for ent in doc.ents:",
            "    print(ent.text, ent.label_, round(ent._.confidence, 3))",
            "",
        ]
    lines += [
        "# many texts: stream them in batches",
        'texts = ["First document.", "Second document."]',
        "for doc in nlp.pipe(texts, batch_size=64):",
        "    ...",
        "```",
        "",
        "Faster on CPU: the transformer can run with int8 weights or ONNX Runtime (the `onnx` extra), "
        "chosen when loading; the weights in the package stay fp32 and the entities are those of the "
        "default runtime unless the quality table below says otherwise:",
        "",
        "```python",
        "from spacy_bert_ner.runtime import load",
        "",
        f'nlp = load("{package}", runtime="onnx-int8")  # fp32, int8, onnx or onnx-int8',
        "```",
        "",
    ]
    lines += _runtime_table(speed)
    lines += [
        "From the command line, with spacy-bert-ner installed (`.txt` one document per line, "
        "`.jsonl` with a `text` field, or `.spacy`):",
        "",
        "```bash",
        f"spacy-bert-ner predict {package} input.jsonl output.jsonl",
        "```",
        "",
    ]

    lines += [
        "## Intended use",
        "",
        f"Finding {', '.join(labels) or 'named'} entities in English text close to the training data, "
        "as a component of larger pipelines, for research, prototyping or as a baseline. The scores above "
        "hold for the test distribution only; measure on your own data before relying on it. Not meant for "
        "decisions about individuals without human review.",
        "",
        "## Known limitations",
        "",
    ]
    limits = []
    if do_lower_case:
        cased = (
            " The NER model adds casing features (word shape, prefix, suffix) to the transformer output, "
            "which makes up for part of it."
            if _casing_features(config)
            else ""
        )
        limits.append(
            "**Uncased backbone**: the transformer's tokenizer lower-cases its input (`do_lower_case`), so the "
            f"transformer does not see capitalisation, a strong cue for names.{cased}"
        )
    if data_info:
        limits.append(data_info["limits"])
    rare = sorted(label for label, s in per_type.items() if s.get("support", 0) < RARE_SUPPORT)
    if rare:
        limits.append(
            f"Labels with fewer than {RARE_SUPPORT} test entities ({', '.join(f'`{r}`' for r in rare)}): "
            "their scores rest on few examples and are unreliable."
        )
    window = _window(config)
    if window:
        limits.append(f"The transformer reads text in windows of {window}; context beyond a window is not seen.")
    limits.append("English only; entities are flat (no nesting) and every entity gets exactly one label.")
    lines += [f"- {limit}" for limit in limits] + [""]
    lines += [
        "## Reproduce",
        "",
        "Trained and evaluated with the spacy-bert-ner project"
        + (f": `{metrics['command']}`" if metrics.get("command") else "")
        + ".",
        "",
    ]
    return "\n".join(lines)


def model_card(
    model_path: Union[str, Path],
    metrics_path: Union[str, Path],
    name: str,
    version: str,
    dataset: Optional[Dict[str, str]] = None,
    speed: Optional[Dict[str, Any]] = None,
) -> str:
    """Render the card of the pipeline at ``model_path`` packaged as ``name``/``version``."""
    from thinc.api import Config

    from spacy_bert_ner.packaging.package import build_meta

    model_path = Path(model_path)
    metrics = srsly.read_json(metrics_path)
    meta = build_meta(model_path, name, version, metrics)
    config = Config().from_disk(model_path / "config.cfg", interpolate=False)
    transformer = metrics.get("transformer") or (config.get("paths") or {}).get("transformer")
    return render_model_card(
        meta,
        metrics,
        config=config,
        do_lower_case=tokenizer_lowercases(model_path, transformer),
        dataset=dataset,
        speed=speed,
    )


def _runtime_table(speed: Optional[Dict[str, Any]]) -> List[str]:
    """Words/s of the pipeline per runtime, from a ``benchmark_runtimes.py`` JSON."""
    rows = (speed or {}).get("rows") or {}
    ours = [(key.split("/", 1)[1], row) for key, row in rows.items() if key.startswith("ours/")]
    if not ours:
        return []
    cpu = (speed.get("cpu") or {}).get("model") or "CPU"
    lines = [
        f"Measured speed ({speed.get('sentences')} WikiANN-en sentences, batch {speed.get('batch_size')}, "
        f"{speed.get('threads')} threads, {cpu}, {speed.get('date')}):",
        "",
        "| runtime | words/s |",
        "| --- | ---: |",
    ]
    lines += [f"| {runtime} | {row['words_per_s']:,.0f} |" for runtime, row in ours]
    return lines + [""]
