"""Fine-tune ERNIE on span-extraction reading comprehension (SQuAD-format DRCD, CMRC 2018, SQuAD).

    python run_mrc.py --do_train true --train_set train.json --dev_set dev.json \
        --vocab_path vocab.txt --ernie_config_path ernie_config.json \
        --init_pretraining_params params --max_seq_len 512 --doc_stride 128 ...

Every --validation_steps steps (and once after training) the dev and test files are predicted
and scored: `<checkpoints>/<steps>_dev_predictions.json` during training, `dev_...`/`test_...`
at the end, each with its `_nbest_predictions.json`. The log line names the phase as 2019 did:
`[100_dev evaluation] em: ..., f1: ..., avg: ..., question_num: ..., elapsed time: ...` during
training, `[dev evaluation] ...` after `Final validation result:` (`[test evaluation]` after
`Final test result:`). `--for_cn true` scores with the CMRC 2018 logic, `--for_cn false` with the
SQuAD v1.1 logic; a test file without gold answers is predicted but not scored. Unlike 2019
(which retrained forever), the run ends when training ends; `--resume auto` continues a
stopped run from the latest complete checkpoint in --checkpoints exactly where it stopped.
Every input file is read and checked before training starts, so a bad file stops the run with
nothing written.
"""
import time

from utils import paddle_env

paddle_env.apply()  # before Paddle loads: it reads these settings once

from utils.errors import UsageError, run_cli

from finetune import mrc
from model.ernie import ErnieConfig, encoder_input_spec
from reader.mrc import MRCReader
from utils.amp import amp_from_args
from utils.args import print_arguments
from utils.fileio import check_output_dir
from utils.finetune_args import build_parser
from finetune.runner import check_against_config, check_finetune_args, prepare_training
from utils.checkpoint import init_model_params, resolve_resume
from utils.loop import print_ce_kpis, train_loop
from utils.runtime import Runtime, compile_model, set_seed


def check_args(args):
    for name in ("train_set", "dev_set", "test_set"):
        if getattr(args, name) and "," in getattr(args, name):
            raise UsageError("--%s takes one file for reading comprehension" % name)
    check_finetune_args(args, positive=("doc_stride", "max_query_length",
                                        "max_answer_length", "n_best_size"))
    # checkpoints and the prediction files go there: checked before any work, creating nothing
    check_output_dir("--checkpoints", args.checkpoints)


def main(argv):
    args = build_parser(__doc__.splitlines()[0]).parse_args(argv)
    print_arguments(args)
    resolve_resume(args)
    check_args(args)
    runtime = Runtime(args.use_cuda)
    set_seed(args.random_seed)

    config = ErnieConfig(args.ernie_config_path)
    config.print_config()
    reader = MRCReader(
        vocab_path=args.vocab_path, max_seq_len=args.max_seq_len,
        do_lower_case=args.do_lower_case, in_tokens=args.in_tokens,
        random_seed=args.random_seed, tokenizer=args.tokenizer, for_cn=args.for_cn,
        task_id=args.task_id, doc_stride=args.doc_stride,
        max_query_length=args.max_query_length, sp_model=args.sentence_piece_model)
    check_against_config(args, config, reader.tokenizer.vocab)

    # read and check every input file before any work starts (features are cached)
    eval_sets = []
    if args.do_train:
        reader.load(args.train_set, is_training=True)
    if args.do_val:
        eval_sets.append(("dev", args.dev_set))
    if args.do_test:
        if args.test_set:
            eval_sets.append(("test", args.test_set))
        else:
            print("--do_test is true but no --test_set is given: nothing to predict.")
    for _, path in eval_sets:
        reader.load(path, is_training=False)

    model = mrc.ErnieMRC(config)
    init_model_params(model, args, training=args.do_train)
    forward = compile_model(model, args.to_static, encoder_input_spec(config))
    predict_batch_size = args.predict_batch_size or args.batch_size

    def evaluate(kind, path, phase):
        examples, features = reader.load(path, is_training=False)
        batches = reader.data_generator(path, predict_batch_size, epoch=1, shuffle=False,
                                        phase=kind)()
        metrics, line = mrc.evaluate(model, forward, batches, examples, features, phase,
                                     args.checkpoints, path, args.n_best_size,
                                     args.max_answer_length, args.do_lower_case, args.for_cn,
                                     has_answers=reader.has_answers(path))
        print(line, flush=True)
        return metrics

    train_start = time.time()
    if args.do_train:
        print("Num train questions: %d" % reader.get_num_questions(args.train_set))
        num_features, optimizer, lr, batches, loop_kwargs = prepare_training(
            args, runtime, reader, model.parameters())
        train_forward = runtime.wrap(forward)

        def log_line(steps, means, speed):
            return ("epoch: %d, progress: %d/%d, step: %d, ave loss: %f, speed: %f steps/s"
                    % (reader.current_epoch, reader.current_example, num_features, steps,
                       means["loss"], speed))

        def validate(steps):
            if not runtime.is_main:
                return
            for kind, path in eval_sets:
                evaluate(kind, path, "%d_%s" % (steps, kind))

        def loss_and_stats(batch):
            batch = mrc.pad_to_common_length(batch, reader.pad_id, runtime.num_trainers)
            return mrc.loss_and_stats(model, train_forward, batch)

        train_loop(model, optimizer, lr, batches, loss_and_stats,
                   args, runtime, log_line, validate, amp=amp_from_args(args, runtime),
                   **loop_kwargs)

    train_seconds = time.time() - train_start
    if runtime.is_main:
        final = {}
        for kind, path in eval_sets:
            print("Final validation result:" if kind == "dev" else "Final test result:")
            final[kind] = evaluate(kind, path, kind)
        if args.enable_ce:
            print_ce_kpis(runtime, train_seconds, final.get("dev"))
    return 0


if __name__ == "__main__":
    run_cli(main)
