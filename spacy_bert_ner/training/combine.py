"""Combining trained pipelines into one: a weight average ("model soup") or a
prediction-time ensemble.

Weight averaging: one pipeline whose weights are the mean of several pipelines
fine-tuned from the same start.

Pipelines fine-tuned from the same pretrained transformer and the same
initial head (same config and seed, other hyperparameters free) usually end in
one basin of the loss, so the mean of their weights scores about like an
ensemble of them while costing one model at prediction time.

Ensembles: one pipeline holding every member, whose ``bert_ner_ensemble``
component (``spacy_bert_ner.pipeline.ensemble``) averages the members' tag
probabilities at prediction time; N members cost N models.
"""
from pathlib import Path
from typing import Any, List, Optional, Sequence, Union

import spacy
from spacy.language import Language

from spacy_bert_ner.pipeline.ensemble import ENSEMBLE_FACTORY, MEMBER_PREFIX, annotates_batches
from spacy_bert_ner.pipeline.transformer import grow_token_types, token_type_embeddings


def average_weights(pipelines: Sequence[Language]) -> Language:
    """Set the first pipeline's weights to the mean of all the pipelines'
    weights, in place, and return it: every thinc parameter (casing
    embeddings, head) and every floating-point tensor of the PyTorch models
    (the transformer). The pipelines must have the same components and
    model structure; raises ``ValueError`` otherwise. Pipelines with and
    without ``case_types`` can be averaged: the smaller token type
    embeddings are grown to copies of their row 0, in every pipeline given,
    which does not change what they compute. The first pipeline's config is kept, so put a ``case_types``
    pipeline first to keep the casing input."""
    import torch

    if not pipelines:
        raise ValueError("average_weights: no pipelines given")
    first = pipelines[0]
    for nlp in pipelines[1:]:
        if nlp.pipe_names != first.pipe_names:
            raise ValueError(f"pipelines differ: components {first.pipe_names} and {nlp.pipe_names}")
    for name in first.pipe_names:
        walks = [list(nlp.get_pipe(name).model.walk()) for nlp in pipelines]
        if len({len(w) for w in walks}) != 1 or any(
            len({n.name for n in nodes}) != 1 or len({len(n.shims) for n in nodes}) != 1 for nodes in zip(*walks)
        ):
            raise ValueError(f"{name}: the pipelines' models differ in structure")
        for nodes in zip(*walks):
            target = nodes[0]
            for param in target.param_names:
                if not target.has_param(param):
                    continue
                values = [node.get_param(param) for node in nodes]
                if len({v.shape for v in values}) != 1:
                    raise ValueError(f"{name}: {target.name}.{param} differs in shape: {[v.shape for v in values]}")
                target.set_param(param, sum(values) / len(values))
            for shims in zip(*(node.shims for node in nodes)):
                models = [shim._model for shim in shims]
                _match_token_types(models)
                states = [model.state_dict() for model in models]
                averaged = {}
                for key, value in states[0].items():
                    shapes = {tuple(s[key].shape) if key in s else None for s in states}
                    if len(shapes) != 1:
                        raise ValueError(f"{name}: transformer weight {key} differs in shape or is missing: {shapes}")
                    averaged[key] = sum(s[key] for s in states) / len(states) if value.is_floating_point() else value
                with torch.no_grad():
                    models[0].load_state_dict(averaged)
    return first


def _match_token_types(transformers: List[Any]) -> None:
    """Grow every transformer's token type embeddings to the most rows among
    them (``grow_token_types``: copies of row 0), so that pipelines with and
    without ``case_types`` can be averaged. Leaves models without token type
    embeddings alone."""
    embeddings = [token_type_embeddings(t) for t in transformers]
    if any(e is None for e in embeddings):
        return
    rows = max(e.num_embeddings for e in embeddings)
    for transformer in transformers:
        grow_token_types(transformer, rows)


def average_pipelines(paths: Sequence[Union[str, Path]], output_dir: Union[str, Path]) -> Path:
    """Load the pipelines at ``paths``, average their weights and save the result
    (with the first pipeline's config and settings) to ``output_dir``."""
    if len(paths) < 2:
        raise ValueError(f"average: give at least two pipelines, got {len(paths)}")
    pipelines: List[Language] = [spacy.load(path) for path in paths]
    output_dir = Path(output_dir)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    average_weights(pipelines).to_disk(output_dir)
    return output_dir


def build_ensemble(pipelines: Sequence[Language], sources: Optional[Sequence[str]] = None) -> Language:
    """One pipeline that averages the ``bert_ner`` probabilities of ``pipelines``.

    Each pipeline must end with a ``bert_ner`` component (every enabled
    component before it, e.g. its transformer, belongs to that member), and all
    must share the language and the labels. The first pipeline is changed in
    place and returned: its components are renamed ``member0_<name>``, the
    others' are added as ``member<k>_<name>``, all are disabled, and a
    ``bert_ner_ensemble`` component takes the first ``bert_ner``'s name,
    threshold and span key. ``sources`` (e.g. the paths) name the pipelines in
    error messages. Raises ``ValueError`` for pipelines that cannot be joined.
    """
    if len(pipelines) < 2:
        raise ValueError(f"an ensemble needs at least two pipelines, got {len(pipelines)}")
    sources = list(sources) if sources is not None else [f"pipeline {k}" for k in range(len(pipelines))]
    for source, nlp in zip(sources, pipelines):
        factories = [nlp.get_pipe_meta(n).factory for n in nlp.pipe_names]
        if not factories or factories[-1] != "bert_ner" or factories.count("bert_ner") != 1:
            raise ValueError(
                f"{source}: an ensemble member must end with its only bert_ner component; its pipeline is "
                f"{list(zip(nlp.pipe_names, factories))}"
            )
        if nlp.lang != pipelines[0].lang:
            raise ValueError(f"{source}: language {nlp.lang!r} differs from {sources[0]}'s {pipelines[0].lang!r}")
        for name in nlp.pipe_names[:-1]:
            if not annotates_batches(nlp.get_pipe(name)):
                raise ValueError(f"{source}: component {name!r} has no predict/set_annotations, it cannot run in an ensemble")
    labels = [tuple(nlp.get_pipe(nlp.pipe_names[-1]).labels) for nlp in pipelines]
    for source, member in zip(sources[1:], labels[1:]):
        if member != labels[0]:
            raise ValueError(f"{source}: labels {list(member)} differ from {sources[0]}'s {list(labels[0])}")
    first = pipelines[0]
    ner_name = first.pipe_names[-1]
    ner = first.get_pipe(ner_name)
    members: List[List[str]] = [[MEMBER_PREFIX.format(k=0) + name for name in first.pipe_names]]
    for name, new_name in zip(list(first.pipe_names), members[0]):
        first.rename_pipe(name, new_name)
    for k, nlp in enumerate(pipelines[1:], start=1):
        names = []
        for name in nlp.pipe_names:
            new_name = MEMBER_PREFIX.format(k=k) + name
            first.add_pipe(name, name=new_name, source=nlp)
            names.append(new_name)
        members.append(names)
    ensemble = first.add_pipe(
        ENSEMBLE_FACTORY,
        name=ner_name,
        config={"members": members, "threshold": ner.threshold, "spans_key": ner.spans_key},
    )
    ensemble.cfg["labels"] = list(labels[0])
    for names in members:
        for name in names:
            first.disable_pipe(name)
    return first


def ensemble_pipelines(paths: Sequence[Union[str, Path]], output_dir: Union[str, Path]) -> Path:
    """Load the pipelines at ``paths``, join them into an ensemble (:func:`build_ensemble`)
    and save it to ``output_dir``."""
    if len(paths) < 2:
        raise ValueError(f"ensemble: give at least two pipelines, got {len(paths)}")
    pipelines = [spacy.load(path) for path in paths]
    output_dir = Path(output_dir)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    build_ensemble(pipelines, [str(p) for p in paths]).to_disk(output_dir)
    return output_dir
