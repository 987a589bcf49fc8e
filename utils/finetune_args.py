"""Flags shared by run_classifier.py, run_sequence_labeling.py and run_mrc.py (2019 names and
defaults; new flags are marked as ours in their help)."""
from utils.args import IS_CLASSIFY_DEFAULT, ArgumentGroup, ArgumentParser, resolve_is_classify


class FinetuneParser(ArgumentParser):
    """Resolves the flags whose default depends on another flag (--is_classify) as it parses,
    so that every script, and the configuration they print, sees the value used."""

    def parse_known_args(self, args=None, namespace=None):
        parsed, rest = super().parse_known_args(args, namespace)
        return resolve_is_classify(parsed), rest


def build_parser(description):
    parser = FinetuneParser(description=description)

    model_g = ArgumentGroup(parser, "model", "model config and parameters.")
    model_g.add_arg("ernie_config_path", str, None, "The ernie_config.json of the model.")
    model_g.add_arg("init_checkpoint", str, None,
                    "Checkpoint to start from: parameters, and optimizer state when present.")
    model_g.add_arg("init_pretraining_params", str, None,
                    "Pretrained encoder parameters to fine-tune from (heads start fresh); "
                    "ignored when --init_checkpoint is given.")
    model_g.add_arg("checkpoints", str, "checkpoints",
                    "Directory for checkpoints (step_N) and outputs.")
    model_g.add_arg("resume", str, None,
                    "(ours) auto: continue from the latest complete checkpoint in --checkpoints.")
    model_g.add_arg("keep_checkpoint_max", int, 0,
                    "(ours) Keep only the newest N step_N checkpoints in --checkpoints, deleting "
                    "older ones after each save; 0 keeps them all (as in 2019).")
    model_g.add_arg("save_best", bool, False,
                    "(ours) After each evaluation of the first --dev_set whose metric improved, "
                    "save <checkpoints>/best: --metric's first value for classification (acc; "
                    "corr for pearson_and_spearman; matthews_corrcoef), f1 for sequence "
                    "labelling and reading comprehension.")
    model_g.add_arg("is_classify", bool, None, "Classification head (softmax over --num_labels).",
                    default_text=IS_CLASSIFY_DEFAULT)
    model_g.add_arg("is_regression", bool, False, "Regression head (one score, squared error).")
    model_g.add_arg("task_id", int, 0,
                    "Task id fed to the task embedding (used when the config sets use_task_id).")

    train_g = ArgumentGroup(parser, "training", "optimisation and schedule.")
    train_g.add_arg("epoch", int, 3, "Passes over the training set.")
    train_g.add_arg("learning_rate", float, 5e-5, "Peak learning rate.")
    train_g.add_arg("lr_scheduler", str, "linear_warmup_decay",
                    "Learning-rate schedule after warmup.",
                    choices=["linear_warmup_decay", "noam_decay"])
    train_g.add_arg("weight_decay", float, 0.01,
                    "Decoupled weight decay (not on layer norms and biases).")
    train_g.add_arg("warmup_proportion", float, 0.1,
                    "Share of the training steps spent in linear warmup; 0 keeps the LR constant.")
    train_g.add_arg("save_steps", int, 10000, "Save a checkpoint every this many steps.")
    train_g.add_arg("validation_steps", int, 1000,
                    "Evaluate the dev sets and predict the test sets every this many steps "
                    "(classification also at each new epoch).")
    train_g.add_arg("use_fp16", bool, False, "fp16 mixed precision (GPU).")
    train_g.add_arg("use_bf16", bool, False, "(ours) bf16 mixed precision on CPUs that have it.")
    train_g.add_arg("loss_scaling", float, None,
                    "(v2.0 flag) Static fp16 loss scale: with --use_fp16 on a GPU the loss is "
                    "multiplied by it and the gradients divided by it, with no dynamic "
                    "scaling; elsewhere a notice says it has no effect.")
    train_g.add_arg("use_dynamic_loss_scaling", bool, True,
                    "Adjust the fp16 loss scale on overflow.")
    train_g.add_arg("init_loss_scaling", float, 102400, "Initial fp16 loss scale.")
    train_g.add_arg("incr_every_n_steps", int, 100,
                    "Grow the loss scale after this many finite steps.")
    train_g.add_arg("decr_every_n_nan_or_inf", int, 2,
                    "Shrink the loss scale after this many steps with inf/nan gradients.")
    train_g.add_arg("incr_ratio", float, 2.0, "Loss-scale growth factor.")
    train_g.add_arg("decr_ratio", float, 0.8, "Loss-scale shrink factor.")
    train_g.add_arg("test_save", str, "./checkpoints/test_result",
                    "Prefix of the test prediction files (comma-separated, one per --test_set).")
    train_g.add_arg("metric", str, "simple_accuracy",
                    "Dev metric: simple_accuracy, acc_and_f1, matthews_corrcoef, "
                    "pearson_and_spearman or acc_and_f1_and_mrr.")

    log_g = ArgumentGroup(parser, "logging", "what is printed.")
    log_g.add_arg("skip_steps", int, 10, "Print the training log line every this many steps.")
    log_g.add_arg("verbose", bool, False, "Also print the learning rate.")
    log_g.add_arg("use_visualdl", bool, False,
                  "(ours) Also write loss and dev metrics for VisualDL to <checkpoints>/visualdl.")

    data_g = ArgumentGroup(parser, "data", "Data files, vocabulary and batching.")
    data_g.add_arg("tokenizer", str, "FullTokenizer",
                   "FullTokenizer, CharTokenizer or SentencepieceTokenizer.")
    data_g.add_arg("sentence_piece_model", str, None,
                   "(ours) SentencePiece model file for --tokenizer SentencepieceTokenizer.")
    data_g.add_arg("train_set", str, None, "Training TSV.")
    data_g.add_arg("test_set", str, None, "Path to test data (comma-separated for several).")
    data_g.add_arg("dev_set", str, None, "Path to validation data (comma-separated for several).")
    data_g.add_arg("vocab_path", str, None, "vocab.txt of the model.")
    data_g.add_arg("max_seq_len", int, 512, "Longest input in tokens, [CLS] and [SEP] included.")
    data_g.add_arg("batch_size", int, 32,
                   "Examples per batch and card (tokens with --in_tokens).")
    data_g.add_arg("predict_batch_size", int, None,
                   "Batch size for evaluation and prediction (default: --batch_size).")
    data_g.add_arg("in_tokens", bool, False,
                   "Count --batch_size in padded tokens instead of examples.")
    data_g.add_arg("do_lower_case", bool, True,
                   "Lower-case and strip accents (uncased vocabularies).")
    data_g.add_arg("random_seed", int, None, "Seed for shuffling, dropout and initialisation.")
    data_g.add_arg("label_map_config", str, None, "json mapping label names to ids.")
    data_g.add_arg("num_labels", int, 2, "Number of classes.")
    data_g.add_arg("diagnostic", str, None, "GLUE diagnostic TSV to predict after training.")
    data_g.add_arg("diagnostic_save", str, None, "Where to write the diagnostic predictions.")
    data_g.add_arg("max_query_length", int, 64, "Question tokens kept (reading comprehension).")
    data_g.add_arg("max_answer_length", int, 100,
                   "Longest answer in tokens (reading comprehension).")
    data_g.add_arg("doc_stride", int, 128,
                   "Stride in tokens between windows over a long context.")
    data_g.add_arg("n_best_size", int, 20,
                   "Candidates kept per question in nbest_predictions.json.")
    data_g.add_arg("chunk_scheme", str, "IOB", "Tagging scheme of the labels.",
                   choices=["IO", "IOB", "IOE", "IOBES"])

    run_type_g = ArgumentGroup(parser, "run_type", "what to run and where.")
    run_type_g.add_arg("use_cuda", bool, True, "Run on GPU.")
    run_type_g.add_arg("use_fast_executor", bool, False,
                       "If set, use fast parallel executor (accepted; no effect in Paddle 3).")
    run_type_g.add_arg("num_iteration_per_drop_scope", int, 10,
                       "Iteration intervals to drop scope (accepted; no effect in Paddle 3).")
    run_type_g.add_arg("do_train", bool, True, "Train.")
    run_type_g.add_arg("do_val", bool, True, "Evaluate on --dev_set.")
    run_type_g.add_arg("do_test", bool, True, "Predict --test_set.")
    run_type_g.add_arg("use_multi_gpu_test", bool, False,
                       "(accepted; evaluation runs on trainer 0).")
    run_type_g.add_arg("metrics", bool, True,
                       "(accepted; no effect: 2019 defined it but never read it).")
    run_type_g.add_arg("shuffle", bool, True, "Shuffle the training set every epoch.")
    run_type_g.add_arg("for_cn", bool, True, "Chinese data: remove spaces from the text columns.")
    run_type_g.add_arg("is_distributed", bool, False,
                       "(accepted) distribution comes from paddle.distributed.launch.")
    run_type_g.add_arg("to_static", bool, True,
                       "(ours) Run the model as a static graph; false runs eagerly, for debugging.")
    parser.add_argument("--enable_ce", action="store_true",
                        help="After the run, print the 2019 continuous-evaluation lines "
                             "kpis<TAB>NAME_card<N><TAB>VALUE: train_duration, train_loss and "
                             "train_acc (second-to-last train log line), and the final dev "
                             "metrics of the first --dev_set (dev_<metric>).")
    return parser
