"""Flags of train.py (2019 `pretrain_args.py` names and defaults, the Aug-2019 AMP flags;
flags marked (ours) are new)."""
from utils.args import ArgumentGroup, ArgumentParser


def build_parser(description="ERNIE pretraining"):
    parser = ArgumentParser(description=description)

    model_g = ArgumentGroup(parser, "model", "model and checkpoint configuration.")
    model_g.add_arg("ernie_config_path", str, "./config/ernie_config.json",
                    "Path to the json file for ernie model config.")
    model_g.add_arg("init_checkpoint", str, None,
                    "Init checkpoint to resume training from (parameters; heads included).")
    model_g.add_arg("checkpoints", str, "checkpoints", "Path to save checkpoints.")
    model_g.add_arg("resume", str, None,
                    "(ours) auto: continue from the latest complete checkpoint in --checkpoints "
                    "(parameters, optimizer state, step; the data stream is replayed to the "
                    "same place).")
    model_g.add_arg("keep_checkpoint_max", int, 0,
                    "(ours) Keep only the newest N step_N checkpoints in --checkpoints, deleting "
                    "older ones after each save; 0 keeps them all (as in 2019). The multi-task "
                    "end-of-stage checkpoints stage_S_step_N are always kept.")
    model_g.add_arg("save_best", bool, False,
                    "(ours) After each validation (--valid_filelist) whose loss is lower than "
                    "before, save <checkpoints>/best (not for --multitask_config runs, which "
                    "do not validate).")
    model_g.add_arg("weight_sharing", bool, True,
                    "If set, share the weights between the word embedding and the masked LM.")
    model_g.add_arg("export_model_dir", str, None,
                    "(ours) After training, write a MODEL_PATH folder there: params/ (the 2019 "
                    "one-file-per-parameter layout, heads included), vocab.txt and "
                    "ernie_config.json, ready for --init_pretraining_params.")
    model_g.add_arg("generate_neg_sample", bool, False,
                    "If set, randomly generate negative next-sentence samples (the data then "
                    "holds positive pairs only).")

    train_g = ArgumentGroup(parser, "training", "training options.")
    train_g.add_arg("epoch", int, 100, "Number of epochs for training.")
    train_g.add_arg("learning_rate", float, 0.0001, "Learning rate used to train with warmup.")
    train_g.add_arg("lr_scheduler", str, "linear_warmup_decay",
                    "scheduler of learning rate.", choices=["linear_warmup_decay", "noam_decay"])
    train_g.add_arg("weight_decay", float, 0.01, "Weight decay rate for L2 regularizer.")
    train_g.add_arg("num_train_steps", int, 1000000, "Total steps to perform pretraining.")
    train_g.add_arg("warmup_steps", int, 5000, "Total steps to perform warmup when pretraining.")
    train_g.add_arg("save_steps", int, 10000, "The steps interval to save checkpoints.")
    train_g.add_arg("validation_steps", int, 1000,
                    "The steps interval to evaluate model performance.")
    train_g.add_arg("use_fp16", bool, False,
                    "Whether to use fp16 mixed precision training (GPU; ignored on CPU).")
    train_g.add_arg("use_bf16", bool, False, "(ours) bf16 mixed precision on CPUs that have it.")
    train_g.add_arg("loss_scaling", float, None,
                    "(v2.0 flag) Static fp16 loss scale: with --use_fp16 on a GPU the loss is "
                    "multiplied by it and the gradients divided by it, with no dynamic "
                    "scaling; elsewhere a notice says it has no effect.")
    train_g.add_arg("use_dynamic_loss_scaling", bool, True,
                    "Whether to use dynamic loss scaling (fp16).")
    train_g.add_arg("init_loss_scaling", float, 102400,
                    "Loss scaling factor for mixed precision training, only valid when use_fp16 "
                    "is enabled.")
    train_g.add_arg("incr_every_n_steps", int, 100,
                    "Increases loss scaling every n consecutive steps with finite gradients.")
    train_g.add_arg("decr_every_n_nan_or_inf", int, 2,
                    "Decreases loss scaling every n accumulated steps with nan or inf gradients.")
    train_g.add_arg("incr_ratio", float, 2.0,
                    "The multiplier to use when increasing the loss scaling.")
    train_g.add_arg("decr_ratio", float, 0.8,
                    "The less-than-one-multiplier to use when decreasing the loss scaling.")
    train_g.add_arg("multitask_config", str, None,
                    "(ours) ERNIE 2.0 continual multi-task pretraining: a json file of tasks and "
                    "stages (see pretraining/multitask.py); replaces --train_filelist.")

    log_g = ArgumentGroup(parser, "logging", "logging related.")
    log_g.add_arg("skip_steps", int, 10, "The steps interval to print loss.")
    log_g.add_arg("verbose", bool, False, "Whether to output verbose log.")

    data_g = ArgumentGroup(parser, "data", "Data paths, vocab paths and data processing options")
    data_g.add_arg("train_filelist", str, "", "Path to training filelist.")
    data_g.add_arg("valid_filelist", str, "", "Path to valid filelist.")
    data_g.add_arg("test_filelist", str, "", "Path to test filelist.")
    data_g.add_arg("vocab_path", str, "./config/vocab.txt", "Vocabulary path.")
    data_g.add_arg("max_seq_len", int, 512, "Number of words of the longest seqence.")
    data_g.add_arg("batch_size", int, 16,
                   "Total examples' number in batch for training; counted in tokens with "
                   "--in_tokens true (must then be > 100).")
    data_g.add_arg("in_tokens", bool, True,
                   "If set, the batch size will be the maximum number of tokens in one batch; "
                   "otherwise, it will be the maximum number of examples in one batch.")
    data_g.add_arg("random_seed", int, 1,
                   "(ours, the Aug 2019 reader's seed) Seed for data order, masking and "
                   "initialisation.")
    data_g.add_arg("strict_data", bool, False,
                   "(ours) Stop at the first malformed data line instead of reporting and "
                   "skipping it.")

    run_type_g = ArgumentGroup(parser, "run_type", "running type options.")
    run_type_g.add_arg("is_distributed", bool, False,
                       "(accepted) distribution comes from paddle.distributed.launch.")
    run_type_g.add_arg("use_cuda", bool, True, "If set, use GPU for training.")
    run_type_g.add_arg("use_fast_executor", bool, False,
                       "If set, use fast parallel executor (accepted; no effect in Paddle 3).")
    run_type_g.add_arg("num_iteration_per_drop_scope", int, 1,
                       "Iteration intervals to drop scope (accepted; no effect in Paddle 3).")
    run_type_g.add_arg("do_test", bool, False, "Whether to perform evaluation on test data set.")
    run_type_g.add_arg("to_static", bool, True,
                       "(ours) Run the model as a static graph; false runs eagerly, for debugging.")
    return parser
