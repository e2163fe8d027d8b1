"""Batch annotation on Ray Data.

The corpus is read by a Ray datasource, one read task per input file, that
streams the file's records in blocks with the same ids and error records as
the local engine (:mod:`spacy_bert_ner.formats.records`). ``map_batches`` runs
:class:`RayAnnotator` on an actor pool: each actor loads the pipeline once,
with ``torch`` threads = its CPUs (and on its GPU when it has one), and turns a
block of records into output rows (:func:`spacy_bert_ner.inference.annotate.annotate_records`).
The rows are written as Parquet or JSON files into the output folder. Ray does
the scheduling, the back-pressure (the corpus streams through; it is never
held whole) and the retries: an actor that dies is restarted and its block
run again, so every record is written once.

The model must be loadable on every worker: a path on storage all nodes share,
or the name of a model package installed on every node (with spacy-bert-ner).

Reading and writing are light tasks of ``IO_CPUS`` logical CPUs each, scheduled
beside the actors: a cluster needs that much room beyond ``workers *
cpus_per_worker``, or the actors hold every CPU and nothing reads. The local
cluster started for a run has one logical CPU more than the actors need (or
than the machine has).
"""

import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from spacy_bert_ner.errors import require_extra
from spacy_bert_ner.formats.records import output_schema, read_records
from spacy_bert_ner.formats.splits import group
from spacy_bert_ner.inference.annotate import AnnotateStats, output_stats

IO_CPUS = 0.25


def require_ray() -> Any:
    """The ``ray`` module, or :class:`~spacy_bert_ner.errors.MissingDependency` naming the extra."""
    require_extra("ray", ("ray", "ray.data"), "--engine ray")
    import ray

    return ray


class RayAnnotator:
    """A Ray Data actor: one loaded pipeline, output rows for each block of records."""

    def __init__(
        self, model: str, threads: int = 1, runtime: Optional[str] = None, batch_size: int = 64, use_gpu: bool = False
    ) -> None:
        import spacy
        import torch

        from spacy_bert_ner.runtime import set_runtime

        torch.set_num_threads(max(1, threads))
        if use_gpu:
            spacy.require_gpu()
        self.nlp = spacy.load(model)
        if runtime is not None:
            set_runtime(self.nlp, runtime)
        self.batch_size = batch_size

    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        from spacy_bert_ner.inference.annotate import annotate_records

        rows = annotate_records(self.nlp, batch.to_pylist(), self.batch_size)
        return pa.Table.from_pylist(rows, schema=output_schema())


def records_datasource(files: Sequence[Path], block_records: int = 1000) -> Any:
    """A Ray datasource of the records of ``files``: one read task per file."""
    from ray.data.block import BlockMetadata
    from ray.data.datasource import Datasource, ReadTask

    def read_file(path: Path):
        import pyarrow as pa

        schema = pa.schema([("id", pa.string()), ("text", pa.string()), ("error", pa.string())])
        for block in group(read_records(path), block_records):
            yield pa.Table.from_pylist(block, schema=schema)

    class RecordsDatasource(Datasource):
        def estimate_inmemory_data_size(self) -> Optional[int]:
            return sum(Path(p).stat().st_size for p in files)

        def get_read_tasks(
            self, parallelism: int, per_task_row_limit: Optional[int] = None, data_context: Any = None
        ) -> List[Any]:
            tasks = []
            for path in files:
                metadata = BlockMetadata(
                    num_rows=None, size_bytes=Path(path).stat().st_size, exec_stats=None, input_files=[str(path)]
                )
                tasks.append(ReadTask(lambda path=path: read_file(Path(path)), metadata))
            return tasks

    return RecordsDatasource()


def annotate_ray(
    model: str,
    files: Sequence[Path],
    output_dir: Path,
    fmt: str = "parquet",
    workers: int = 1,
    cpus_per_worker: float = 1,
    gpus_per_worker: float = 0,
    address: Optional[str] = None,
    batch_size: int = 64,
    block_records: int = 1000,
    runtime: Optional[str] = None,
    init_args: Optional[Dict[str, Any]] = None,
) -> AnnotateStats:
    """Annotate ``files`` into ``output_dir`` with Ray Data: a pool of
    ``workers`` actors. Connects to ``address`` (``ray://...`` or ``auto``) or
    to the cluster this process is part of, else starts a local one for the
    run (``init_args`` go to ``ray.init``) and stops it afterwards."""
    ray = require_ray()
    output_dir = Path(output_dir)
    if output_dir.exists() and any(output_dir.iterdir()):
        raise ValueError(f"{output_dir}: the output folder is not empty; choose another folder or empty it")
    started = False
    if not ray.is_initialized():
        if address:
            ray.init(address=address, **(init_args or {}))
        else:
            import os

            cpus = max(os.cpu_count() or 1, int(workers * cpus_per_worker + 0.999)) + 1
            ray.init(
                **{
                    "num_cpus": cpus,
                    "include_dashboard": False,
                    "log_to_driver": False,
                    "_node_ip_address": "127.0.0.1",
                    **(init_args or {}),
                }
            )  # a one-machine cluster on loopback
            started = True
    try:
        start = time.perf_counter()
        dataset = ray.data.read_datasource(records_datasource(list(files), block_records), num_cpus=IO_CPUS)
        dataset = dataset.map_batches(
            RayAnnotator,
            fn_constructor_kwargs={
                "model": str(model),
                "threads": int(max(1, cpus_per_worker)),
                "runtime": runtime,
                "batch_size": batch_size,
                "use_gpu": gpus_per_worker > 0,
            },
            batch_size=None,  # one block of records at a time
            batch_format="pyarrow",
            concurrency=workers,
            num_cpus=cpus_per_worker,
            num_gpus=gpus_per_worker or None,
        )
        if fmt == "parquet":
            dataset.write_parquet(str(output_dir), ray_remote_args={"num_cpus": IO_CPUS})
        else:
            dataset.write_json(str(output_dir), ray_remote_args={"num_cpus": IO_CPUS})
        seconds = time.perf_counter() - start
    finally:
        if started:
            ray.shutdown()
    stats = output_stats(output_dir)
    stats.seconds = seconds
    return stats
