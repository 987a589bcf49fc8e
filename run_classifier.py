"""Fine-tune ERNIE on sentence (pair) classification or regression, evaluate, predict.

    python run_classifier.py --do_train true --train_set train.tsv --dev_set dev.tsv \
        --vocab_path vocab.txt --ernie_config_path ernie_config.json \
        --init_pretraining_params params --num_labels 2 ...
"""
import os

from utils import paddle_env

paddle_env.apply()  # before Paddle loads: it reads these settings once

from finetune import classifier, runner
from finetune.metrics import METRIC_CHOICES
from reader.task_reader import ClassifyReader, check_label_map_ids
from utils.args import check_head_flags
from utils.errors import DataError, UsageError, run_cli
from utils.fileio import check_output_file
from utils.finetune_args import build_parser
from utils.progress import progress


def check_label_ids(records, path, num_labels):
    """Training and dev labels must index the --num_labels outputs (the loss needs them; test
    sets may carry the 2019 dummy label -1). Record i is line i + 2 of its file: read_tsv
    turns every line after the header into a row or fails."""
    for i, record in enumerate(records):
        if not 0 <= record.label < num_labels:
            raise DataError("%s:%d: label id %d is outside 0..%d (--num_labels %d)"
                            % (path, i + 2, record.label, num_labels - 1, num_labels))


def check_qids(records, path):
    """--metric acc_and_f1_and_mrr ranks the answers of each question: every dev record needs
    its question's id (a qid column)."""
    for i, record in enumerate(records):
        if record.qid in (None, ""):
            raise DataError("%s:%d: --metric acc_and_f1_and_mrr needs a qid on every line (a "
                            "'qid' column)" % (path, i + 2))


class ClassifierTask(runner.Task):
    validate_each_epoch = True

    def check_args(self):
        args = self.args
        runner.check_finetune_args(args, positive=("num_labels",),
                                   files=("diagnostic", "label_map_config"))
        check_head_flags(args)
        if args.metric not in METRIC_CHOICES:
            raise UsageError("--metric %r is not one of: %s"
                             % (args.metric, ", ".join(METRIC_CHOICES)))
        # --checkpoints, the --test_save prefixes, and the diagnostic predictions
        runner.check_finetune_outputs(args)
        if args.diagnostic:
            check_output_file("--diagnostic_save", self.diagnostic_save())

    def diagnostic_save(self):
        return self.args.diagnostic_save or self.args.diagnostic + ".pred"

    def make_reader(self):
        args = self.args
        return ClassifyReader(
            vocab_path=args.vocab_path, label_map_config=args.label_map_config,
            max_seq_len=args.max_seq_len, do_lower_case=args.do_lower_case,
            in_tokens=args.in_tokens, random_seed=args.random_seed, tokenizer=args.tokenizer,
            is_classify=args.is_classify, is_regression=args.is_regression,
            for_cn=args.for_cn, task_id=args.task_id, sp_model=args.sentence_piece_model)

    def check_inputs(self):
        args, reader = self.args, self.reader
        if reader.label_map is not None and not args.is_regression:
            check_label_map_ids(reader.label_map, args.label_map_config, args.num_labels)
        for flag, path in runner.input_files(args, "diagnostic"):
            if not reader.records(path):
                raise DataError("%s: no examples after the header line (--%s)" % (path, flag))
            if args.is_classify and flag in ("train_set", "dev_set"):
                check_label_ids(reader.records(path), path, args.num_labels)
            if flag == "dev_set" and args.metric == "acc_and_f1_and_mrr":
                check_qids(reader.records(path), path)

    def make_model(self):
        return classifier.ErnieClassifier(self.config, self.args.num_labels,
                                          self.args.is_regression)

    def loss_and_stats(self, forward, batch):
        return classifier.loss_and_stats(self.model, forward, batch)

    def log_line(self, head, means, speed):
        if self.args.is_regression:
            return head + ", ave loss: %f,  speed: %f steps/s" % (means["loss"], speed)
        return head + ", ave loss: %f, ave acc: %f, speed: %f steps/s" % (
            means["loss"], means["acc"], speed)

    def batches(self, path):
        """One pass over `path` in input order, with a progress bar."""
        size = self.predict_batch_size
        batches = self.reader.data_generator(path, size, epoch=1, shuffle=False)()
        return progress(batches, self.reader.count_batches(path, size), os.path.basename(path))

    def evaluate_dev(self, steps, epoch, final):
        results = []
        for path in self.args.dev_set.split(","):
            print("validation result of dataset %s:" % path)
            metrics, line = classifier.evaluate(self.model, self.forward, self.batches(path),
                                                "dev", self.args.metric)
            self.runtime.add_scalars("dev/" + os.path.basename(path), metrics, steps)
            print(line + ", file: %s, epoch: %d, steps: %d" % (path, epoch, steps), flush=True)
            results.append(metrics)
        return results[0]

    def predict_test(self, steps, epoch, final):
        for path, out in runner.test_outputs(self.args, epoch, steps):
            classifier.write_predictions(self.model, self.forward, self.batches(path), out)

    def final_outputs(self):
        if self.args.diagnostic:
            print("Final diagnostic")
            save = self.diagnostic_save()
            classifier.write_predictions(self.model, self.forward,
                                         self.batches(self.args.diagnostic), save)
            print("Done final diagnostic, saving to %s" % save)


def main(argv):
    args = build_parser(__doc__.splitlines()[0]).parse_args(argv)
    return runner.run(ClassifierTask(args))


if __name__ == "__main__":
    run_cli(main)
