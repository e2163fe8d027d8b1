#!/usr/bin/env bash
# One recipe experiment: train on WikiANN-en (or DATASET), evaluate on its test split.
#   scripts/run_experiment.sh NAME CONFIG STEPS [extra spacy-train overrides...]
# Writes training/exp-NAME/{model-best,train-log.jsonl,test-metrics.json}. The
# corpus must exist (spacy project run convert). Set OMP_NUM_THREADS to share the CPU.
set -euo pipefail
name=$1 config=$2 steps=$3
shift 3
dataset=${DATASET:-wikiann-en}
out=training/exp-$name
mkdir -p "$out"
start=$(date +%s)
python -m spacy train "configs/$config" --output "$out" \
  --paths.train "corpus/$dataset/train.spacy" --paths.dev "corpus/$dataset/dev.spacy" \
  --paths.train_log "$out/train-log.jsonl" \
  --training.max_steps "$steps" --training.optimizer.learn_rate.total_steps "$steps" "$@" > "$out/train.log" 2>&1
end=$(date +%s)
spacy-bert-ner evaluate "$out/model-best" "corpus/$dataset/test.spacy" --output "$out/test-metrics.json" \
  --train-log "$out/train-log.jsonl" --config-name "$config" \
  --command "scripts/run_experiment.sh $name $config $steps $*" > "$out/evaluate.log" 2>&1
python - "$out/test-metrics.json" "$((end - start))" <<'PY'
import json, sys
p, secs = sys.argv[1], int(sys.argv[2])
m = json.load(open(p)); m["workflow_seconds"] = secs; json.dump(m, open(p, "w"), indent=2)
PY
echo "$name: train ${steps} steps in $((end - start)) s; test F1 $(python -c "import json;print(round(100*json.load(open('$out/test-metrics.json'))['ents_f'],2))")"
