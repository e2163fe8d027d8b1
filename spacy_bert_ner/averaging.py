"""Weight averaging ("model soups"): one pipeline whose weights are the mean of
several pipelines fine-tuned from the same start.

Pipelines fine-tuned from the same pretrained transformer and the same
initial head (same config and seed, other hyperparameters free) usually end in
one basin of the loss, so the mean of their weights scores about like an
ensemble of them while costing one model at prediction time.
"""
from pathlib import Path
from typing import List, Sequence, Union

import spacy
from spacy.language import Language



def average_weights(pipelines: Sequence[Language]) -> Language:
    """Set the first pipeline's weights to the mean of all the pipelines'
    weights, in place, and return it: every thinc parameter (casing
    embeddings, head) and every floating-point tensor of the PyTorch models
    (the transformer). The pipelines must have the same components and
    model structure; raises ``ValueError`` otherwise. Pipelines with and
    without ``case_types`` can be averaged: the smaller token type
    embeddings count as ``N_CASE_TYPES`` copies of their row 0, which is what
    they compute. The first pipeline's config is kept, so put a ``case_types``
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
        if len({len(w) for w in walks}) != 1:
            raise ValueError(f"{name}: the pipelines' models differ in structure")
        for nodes in zip(*walks):
            if len({n.name for n in nodes}) != 1 or len({len(n.shims) for n in nodes}) != 1:
                raise ValueError(f"{name}: the pipelines' models differ in structure")
            target = nodes[0]
            for param in target.param_names:
                if not target.has_param(param):
                    continue
                values = [node.get_param(param) for node in nodes]
                if len({v.shape for v in values}) != 1:
                    raise ValueError(f"{name}: {target.name}.{param} differs in shape: {[v.shape for v in values]}")
                target.set_param(param, sum(values) / len(values))
            for shims in zip(*(node.shims for node in nodes)):
                states = _pad_token_types([shim._model.state_dict() for shim in shims])
                averaged = {}
                for key, value in states[0].items():
                    shapes = {tuple(s[key].shape) if key in s else None for s in states}
                    if len(shapes) != 1:
                        raise ValueError(f"{name}: transformer weight {key} differs in shape or is missing: {shapes}")
                    averaged[key] = sum(s[key] for s in states) / len(states) if value.is_floating_point() else value
                model = shims[0]._model
                _resize_token_types(model, averaged)
                with torch.no_grad():
                    model.load_state_dict(averaged)
    return first


TOKEN_TYPES = "embeddings.token_type_embeddings.weight"


def _pad_token_types(states: List[dict]) -> List[dict]:
    """Where the states' token type embeddings differ in rows, grow the smaller
    ones with copies of their row 0.

    A transformer trained without ``case_types`` only ever saw token type 0,
    so it computes the same with every row set to row 0: exactly how
    ``case_types`` starts. That makes pipelines with and without
    ``case_types`` averageable."""
    keys = [key for key in states[0] if key.endswith(TOKEN_TYPES)]
    states = [dict(state) for state in states]
    for key in keys:
        rows = max(state[key].shape[0] for state in states if key in state)
        for state in states:
            if key in state and state[key].shape[0] < rows:
                state[key] = state[key][0].expand(rows, -1).clone()
    return states


def _resize_token_types(model, state: dict) -> None:
    """Give ``model`` as many token type rows as ``state`` has (see ``_pad_token_types``)."""
    import torch

    for key, value in state.items():
        if key.endswith(TOKEN_TYPES):
            embeddings = model.get_submodule(key[: -len(".token_type_embeddings.weight")])
            if embeddings.token_type_embeddings.num_embeddings != value.shape[0]:
                embeddings.token_type_embeddings = torch.nn.Embedding(value.shape[0], value.shape[1])
                model.config.type_vocab_size = value.shape[0]


def average_pipelines(paths: Sequence[Union[str, Path]], output_dir: Union[str, Path]) -> Path:
    """Load the pipelines at ``paths``, average their weights and save the result
    (with the first pipeline's config and settings) to ``output_dir``."""
    if len(paths) < 2:
        raise ValueError(f"average: give at least two pipelines, got {len(paths)}")
    pipelines: List[Language] = [spacy.load(path) for path in paths]
    output_dir = Path(output_dir)
    average_weights(pipelines).to_disk(output_dir)
    return output_dir
