# Shared by benchmarks/knowledge_masking.sh and benchmarks/ernie2_continual.sh (sourced, with
# $OUT, $PYTHON and $SENT_EPOCH set): the task data, the one vocabulary and People's Daily
# pretraining data, the small model's config, and the fine-tuning settings every model of
# those benchmarks gets (benchmarks/small_ernie.py reads the fine-tuning logs back).

prepare_data() {  # $OUT/task_data, $OUT/vocab/vocab.txt, $OUT/people_daily (built once)
    DATA=$OUT/task_data
    [ -f "$OUT/.done_data" ] && return 0
    "$PYTHON" -m tools.prepare_data sentiment --output_dir "$DATA"
    "$PYTHON" -m tools.prepare_data ner --output_dir "$DATA"
    "$PYTHON" -m tools.prepare_data mrc --output_dir "$DATA"
    tail -n +2 "$DATA/chnsenticorp/train.tsv" | cut -f2 > "$OUT/reviews.txt"
    mkdir -p "$OUT/vocab"
    # one vocabulary for every model: People's Daily and the training reviews
    "$PYTHON" -m tools.pretrain_data vocab --output "$OUT/vocab/vocab.txt" --people_daily \
        --input "$OUT/reviews.txt" --min_count 3
    # the NER dev and test sentences stay out of the pretraining text
    "$PYTHON" -m tools.pretrain_data people_daily --output_dir "$OUT/people_daily" \
        --vocab_path "$OUT/vocab/vocab.txt" --max_seq_len 128 \
        --exclude_sentences "$DATA/msra_ner/dev.tsv" "$DATA/msra_ner/test.tsv"
    touch "$OUT/.done_data"
}

model_dir() {  # model_dir NAME [EXTRA_JSON]: a MODEL_PATH folder (vocab, config; params/ later)
    mkdir -p "$OUT/$1"
    cp "$OUT/vocab/vocab.txt" "$OUT/$1/vocab.txt"
    cat > "$OUT/$1/ernie_config.json" <<EOF
{"attention_probs_dropout_prob": 0.1, "hidden_act": "relu", "hidden_dropout_prob": 0.1,
 "hidden_size": 128, "initializer_range": 0.02, "max_position_embeddings": 513,
 "num_attention_heads": 4, "num_hidden_layers": 4, "type_vocab_size": 2,${2:-}
 "vocab_size": $(grep -c . "$OUT/vocab/vocab.txt")}
EOF
    # pretraining runs without dropout (20% faster); fine-tuning uses the config's 0.1
    sed 's/_dropout_prob": 0.1/_dropout_prob": 0.0/g' "$OUT/$1/ernie_config.json" \
        > "$OUT/$1/pretrain_config.json"
}

finetune() {  # finetune MODEL TASK [SEED]: TASK sentiment, ner or mrc; seed 1 logs to TASK.log
    seed=${3:-1}
    log="$OUT/$1/$2.log"
    [ "$seed" = 1 ] || log="$OUT/$1/$2_seed$seed.log"
    ckpt="$OUT/$1/ckpt_$2_seed$seed"
    [ -f "$log.done" ] && return 0
    init="$OUT/$1/params"
    [ -d "$init" ] || init=""    # a model that was never pretrained starts from random
    case $2 in
    sentiment)
        MODEL_PATH="$OUT/$1" TASK_DATA_PATH="$DATA" sh script/zh_task/ernie_base/run_ChnSentiCorp.sh \
            --init_pretraining_params "$init" --epoch "$SENT_EPOCH" --max_seq_len 128 --batch_size 32 \
            --learning_rate 3e-4 --warmup_proportion 0.1 --validation_steps 100000 \
            --save_steps 100000 --skip_steps 100 --checkpoints "$ckpt" --random_seed "$seed" \
            > "$log" 2>&1 ;;
    ner)
        MODEL_PATH="$OUT/$1" TASK_DATA_PATH="$DATA" sh script/zh_task/ernie_base/run_msra_ner.sh \
            --init_pretraining_params "$init" --epoch 1 --max_seq_len 64 --batch_size 32 \
            --learning_rate 1e-3 --warmup_proportion 0.1 --validation_steps 100000 \
            --save_steps 100000 --skip_steps 100 --checkpoints "$ckpt" --random_seed "$seed" \
            --test_save "$OUT/$1/ner_test_seed$seed" > "$log" 2>&1 ;;
    mrc)
        "$PYTHON" run_mrc.py --use_cuda false --for_cn true --do_train true --do_val true \
            --do_test true --vocab_path "$OUT/$1/vocab.txt" \
            --ernie_config_path "$OUT/$1/ernie_config.json" --init_pretraining_params "$init" \
            --train_set "$DATA/pd_qa/train.json" --dev_set "$DATA/pd_qa/dev.json" \
            --test_set "$DATA/pd_qa/test.json" --max_seq_len 128 --doc_stride 64 \
            --max_query_length 32 --batch_size 32 --epoch 2 --learning_rate 1e-3 \
            --warmup_proportion 0.1 --validation_steps 100000 --save_steps 100000 \
            --skip_steps 100 --checkpoints "$ckpt" --random_seed "$seed" > "$log" 2>&1 ;;
    esac || { tail -n 5 "$log"; exit 1; }
    touch "$log.done"
}
