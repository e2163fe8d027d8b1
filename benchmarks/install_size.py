"""Installed size of a fresh virtualenv that holds a packaged model and what it requires.

Each ``--case NAME=REQ[,REQ...]`` gets its own virtualenv with torch installed
first (the pinned CPU build, the same in every case), then ``pip install`` of
its requirements (wheels, source folders or names), resolving dependencies
from the package index. It reports the size torch alone takes, what the case
adds, the largest installed packages, and whether ``spacy.load(MODEL)`` works
offline there.

    python benchmarks/install_size.py --model en_bert_ner \\
        --case after=packages/en_bert_ner-0.1.0/dist/en_bert_ner-0.1.0-py3-none-any.whl,packages/en_bert_ner-0.1.0/dist/spacy_bert_ner-0.1.0-py3-none-any.whl \\
        --output metrics/install-size.json
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

REPO = Path(__file__).resolve().parent.parent
# the torch every case is installed with: constraints.txt's pin
TORCH = next(line.strip() for line in (REPO / "constraints.txt").read_text().splitlines() if line.startswith("torch"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from record import header, write  # noqa: E402


def _du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def measure(name: str, requirements: List[str], model: str, work: Path) -> Dict:
    env_dir = work / f"venv-{name}"
    subprocess.run([sys.executable, "-m", "venv", str(env_dir)], check=True)
    py = str(env_dir / "bin" / "python")
    subprocess.run([py, "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True, capture_output=True)
    subprocess.run([py, "-m", "pip", "install", "-q", TORCH], check=True, capture_output=True)
    torch_only = _du(env_dir)
    start = time.time()
    subprocess.run([py, "-m", "pip", "install", "-q", *requirements], check=True, capture_output=True)
    seconds = time.time() - start
    total = _du(env_dir)
    site = Path(
        subprocess.run(
            [py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True, check=True
        ).stdout.strip()
    )
    sizes = {p.name: _du(p) if p.is_dir() else p.stat().st_size for p in site.iterdir() if not p.name.endswith(".dist-info")}
    largest = dict(sorted(sizes.items(), key=lambda kv: -kv[1])[:15])
    packages = subprocess.run([py, "-m", "pip", "list", "--format=json"], capture_output=True, text=True, check=True).stdout
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    load = subprocess.run(
        [py, "-c", f"import spacy; print(spacy.load({model!r}).pipe_names)"], capture_output=True, text=True, env=env
    )
    return {
        "requirements": requirements,
        "total_mb": round(total / 1e6, 1),
        "torch_only_mb": round(torch_only / 1e6, 1),
        "added_mb": round((total - torch_only) / 1e6, 1),
        "largest_mb": {k: round(v / 1e6, 1) for k, v in largest.items()},
        "packages": sorted(p["name"] for p in json.loads(packages)),
        "install_seconds": round(seconds, 1),
        "loads_offline": load.returncode == 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="Package name of the model, for spacy.load")
    parser.add_argument("--case", action="append", required=True, help="NAME=REQ[,REQ...]")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="install-size-"))
    result = {**header("install_size", None), "model": args.model, "torch": TORCH, "cases": {}}
    try:
        for case in args.case:
            name, _, reqs = case.partition("=")
            result["cases"][name] = measure(name, reqs.split(","), args.model, work)
            c = result["cases"][name]
            print(
                f"{name}: {c['added_mb']} MB beside torch ({c['total_mb']} MB in all), "
                f"{len(c['packages'])} packages, loads offline: {c['loads_offline']}"
            )
            print("  largest:", ", ".join(f"{k} {v}" for k, v in c["largest_mb"].items()))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write(result, args.output)


if __name__ == "__main__":
    main()
