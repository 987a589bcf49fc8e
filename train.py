"""ERNIE pretraining: ERNIE 1.0 masked LM (knowledge masking) + next sentence, or the ERNIE 2.0
continual multi-task framework.

    python train.py --train_filelist data/train_filelist --valid_filelist data/valid_filelist \
        --vocab_path config/vocab.txt --ernie_config_path config/ernie_config.json \
        --in_tokens true --batch_size 8192 --max_seq_len 512 --num_train_steps 1000000 ...
    python train.py --multitask_config config/ernie2_multitask_demo.json ...   (ERNIE 2.0)
    python train.py --do_test true --test_filelist data/test_filelist --init_checkpoint CKPT

Log lines: those of 2019 (pretraining/masked_lm.py lists them); for ERNIE 2.0 one per task
(pretraining/multitask.py, which also describes the json config). Checkpoints go to
<checkpoints>/step_N every --save_steps and after the last step.
"""
from utils import paddle_env

paddle_env.apply()  # before Paddle loads: it reads these settings once

from model.ernie import ErnieConfig
from pretraining import masked_lm, multitask
from pretraining.runner import check_pretrain_args
from utils.args import print_arguments
from utils.errors import UsageError, run_cli
from utils.pretrain_args import build_parser
from utils.resume import hold_checkpoints, resolve_resume
from utils.runtime import Runtime, set_seed


def main(argv):
    args = build_parser(__doc__.splitlines()[0]).parse_args(argv)
    print_arguments(args)
    check_pretrain_args(args)
    runtime = Runtime(args.use_cuda)
    set_seed(args.random_seed)
    config = ErnieConfig(args.ernie_config_path)
    if args.resume and args.do_test:
        raise UsageError("--resume auto continues a pretraining run; with --do_test give "
                         "--init_checkpoint instead")
    resolve_resume(args)
    if args.do_test:
        masked_lm.test(args, config, runtime)
        return 0
    # one training run at a time in --checkpoints; only trainer 0 writes there
    with hold_checkpoints(args.checkpoints, runtime.is_main):
        if args.multitask_config:
            multitask.train_multitask(args, config, runtime)
        else:
            masked_lm.train(args, config, runtime)
    return 0


if __name__ == "__main__":
    run_cli(main)
