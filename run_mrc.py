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
import os

from utils import paddle_env

paddle_env.apply()  # before Paddle loads: it reads these settings once

from finetune import mrc, runner
from reader.mrc import MRCReader
from utils.errors import UsageError, run_cli
from utils.fileio import check_output_dir
from utils.finetune_args import build_parser


class MRCTask(runner.Task):
    best_metric = "f1"   # what --save_best follows (for_cn too: the CMRC 2018 F1)

    def check_args(self):
        args = self.args
        for name in ("train_set", "dev_set", "test_set"):
            if getattr(args, name) and "," in getattr(args, name):
                raise UsageError("--%s takes one file for reading comprehension" % name)
        runner.check_finetune_args(args, positive=("doc_stride", "max_query_length",
                                                   "max_answer_length", "n_best_size"))
        # checkpoints and the prediction files go there
        check_output_dir("--checkpoints", args.checkpoints)

    def make_reader(self):
        args = self.args
        return MRCReader(
            vocab_path=args.vocab_path, max_seq_len=args.max_seq_len,
            do_lower_case=args.do_lower_case, in_tokens=args.in_tokens,
            random_seed=args.random_seed, tokenizer=args.tokenizer, for_cn=args.for_cn,
            task_id=args.task_id, doc_stride=args.doc_stride,
            max_query_length=args.max_query_length, sp_model=args.sentence_piece_model)

    def check_inputs(self):
        """Every file is read into features (cached); the reader checks them as it goes."""
        for flag, path in runner.input_files(self.args):
            self.reader.load(path, is_training=flag == "train_set")
        if self.args.do_train:
            print("Num train questions: %d" % self.reader.get_num_questions(self.args.train_set))

    def make_model(self):
        return mrc.ErnieMRC(self.config)

    def loss_and_stats(self, forward, batch):
        return mrc.loss_and_stats(self.model, forward, batch, self.reader.pad_id,
                                  self.runtime.num_trainers)

    def log_line(self, head, means, speed):
        return head + ", ave loss: %f, speed: %f steps/s" % (means["loss"], speed)

    def evaluate(self, kind, path, steps, final):
        """Predict and score `path`: `<checkpoints>/<phase>_predictions.json`, the phase being
        `dev`/`test` after training, `<steps>_dev`/`<steps>_test` during it."""
        args, reader = self.args, self.reader
        examples, features = reader.load(path, is_training=False)
        batches = reader.data_generator(path, self.predict_batch_size, epoch=1, shuffle=False,
                                        phase=kind)()
        phase = kind if final else "%d_%s" % (steps, kind)
        metrics, line = mrc.evaluate(self.model, self.forward, batches, examples, features,
                                     phase, args.checkpoints, path, args.n_best_size,
                                     args.max_answer_length, args.do_lower_case, args.for_cn,
                                     has_answers=reader.has_answers(path))
        self.runtime.add_scalars("%s/%s" % (kind, os.path.basename(path)), metrics, steps)
        print(line, flush=True)
        return metrics

    def evaluate_dev(self, steps, epoch, final):
        return self.evaluate("dev", self.args.dev_set, steps, final)

    def predict_test(self, steps, epoch, final):
        self.evaluate("test", self.args.test_set, steps, final)


def main(argv):
    args = build_parser(__doc__.splitlines()[0]).parse_args(argv)
    return runner.run(MRCTask(args))


if __name__ == "__main__":
    run_cli(main)
