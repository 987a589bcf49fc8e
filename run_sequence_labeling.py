"""Fine-tune ERNIE on sequence labelling (NER), evaluate chunk F1, predict the test set.

    python run_sequence_labeling.py --do_train true --train_set msra_ner/train.tsv \
        --dev_set msra_ner/dev.tsv --test_set msra_ner/test.tsv \
        --label_map_config msra_ner/label_map.json --num_labels 7 --chunk_scheme IOB \
        --vocab_path vocab.txt --ernie_config_path ernie_config.json \
        --init_pretraining_params params ...

Data: a header `text_a<TAB>label`, then one example a line, tokens and labels each joined by
\\x02 (or by spaces in a line without \\x02). With --do_test, every evaluation of --test_set
also writes `<test_save>.<epoch>.<steps>`: the tokens joined by \\x02, a tab, the predicted
labels joined by \\x02, one per input token (long inputs are predicted whole, in windows).
"""
import os

from utils import paddle_env

paddle_env.apply()  # before Paddle loads: it reads these settings once

from finetune import runner, sequence_label
from finetune.metrics import chunk_f1, extract_chunks
from reader.task_reader import SequenceLabelReader
from utils.errors import DataError, UsageError, run_cli
from utils.finetune_args import build_parser


class SequenceLabelTask(runner.Task):
    validate_each_epoch = False  # 2019 validated it every --validation_steps only
    best_metric = "f1"           # what --save_best follows

    def check_args(self):
        runner.check_finetune_args(self.args, required=("label_map_config",),
                                   positive=("num_labels",), files=("label_map_config",))
        runner.check_finetune_outputs(self.args)

    def make_reader(self):
        args = self.args
        return SequenceLabelReader(
            vocab_path=args.vocab_path, label_map_config=args.label_map_config,
            max_seq_len=args.max_seq_len, do_lower_case=args.do_lower_case,
            in_tokens=args.in_tokens, random_seed=args.random_seed, tokenizer=args.tokenizer,
            task_id=args.task_id, sp_model=args.sentence_piece_model)

    def check_inputs(self):
        """--num_labels must be the size of the label map, and every label must mean something
        under --chunk_scheme (checked now, not after training); every file has examples."""
        args, reader = self.args, self.reader
        if len(reader.label_map) != args.num_labels:
            raise UsageError("%s has %d labels but --num_labels is %d"
                             % (args.label_map_config, len(reader.label_map), args.num_labels))
        for label in reader.id2label:
            try:
                extract_chunks([label], args.chunk_scheme)
            except UsageError as e:
                raise UsageError("%s: %s" % (args.label_map_config, e)) from None
        for flag, path in runner.input_files(args):
            if not reader.examples(path):
                raise DataError("%s: no examples after the header line (--%s)" % (path, flag))

    def make_model(self):
        return sequence_label.ErnieSequenceLabeler(self.config, self.args.num_labels)

    def loss_and_stats(self, forward, batch):
        return sequence_label.loss_and_stats(self.model, forward, batch, self.reader.id2label,
                                             self.args.chunk_scheme, self.runtime.num_trainers)

    def log_line(self, head, means, speed):
        precision, recall, f1 = chunk_f1(
            means["num_label"], means["num_infer"], means["num_correct"])
        return head + (", loss: %f, f1: %f, precision: %f, recall: %f, speed: %f steps/s"
                       % (means["loss"], f1, precision, recall, speed))

    def evaluate(self, path, phase, steps, epoch):
        """Chunk F1 of `path` with the 2019 line; returns (metrics, predicted labels)."""
        metrics, line, preds = sequence_label.evaluate(
            self.reader, self.reader.examples(path),
            sequence_label.EagerRunner(self.model, self.forward), self.predict_batch_size,
            self.args.chunk_scheme, phase)
        self.runtime.add_scalars("%s/%s" % (phase, os.path.basename(path)), metrics, steps)
        print(line + ", file: %s, epoch: %d, steps: %d" % (path, epoch, steps), flush=True)
        return metrics, preds

    def evaluate_dev(self, steps, epoch, final):
        return [self.evaluate(path, "dev", steps, epoch)[0]
                for path in self.args.dev_set.split(",")][0]

    def predict_test(self, steps, epoch, final):
        for path, out in runner.test_outputs(self.args, epoch, steps):
            _, preds = self.evaluate(path, "test", steps, epoch)
            sequence_label.write_predictions(out, self.reader.examples(path), preds)


def main(argv):
    args = build_parser(__doc__.splitlines()[0]).parse_args(argv)
    return runner.run(SequenceLabelTask(args))


if __name__ == "__main__":
    run_cli(main)
