"""The Python API over a model folder (serving.folder): load once, predict many times.

    from utils import paddle_env; paddle_env.apply()   # optional: the scripts' speed settings
    import serving.api
    model = serving.api.load("my_model")               # checks the manifest's checksums
    model.classify(["这个手机不错", ("text a", "text b")])
    # [{"label": "pos", "probs": {"neg": 0.1, "pos": 0.9}}, ...]   regress: [{"score": 0.3}]
    model.tag(["张\\x02三\\x02好"])                    # [[("张", "B-PER"), ("三", "I-PER"), ...]]
    model.answer([{"question": "...", "context": "..."}])   # [{"text": span, "score": prob}]
    model.encode(["text"], pooling="cls")   # [{"pooled": [H], "tokens": [L_i, H]}]
    model.predict(items)                    # the folder's own task, as the HTTP server calls it

Every method takes a non-empty list and returns one result per item, in order; items are
tokenized as the batch scripts tokenize a line of their input files (the folder's tokenizer
settings) and predicted in batches of similar length. The results are those of
predict_classifier.py, predict_sequence_labeling.py, run_mrc.py's nbest file and
ernie_encoder.py for the same inputs. Bad input (an empty list, an item that is not text,
an empty text, a text without tokens: only control or zero-width characters) raises
ValueError with a one-line message.

Importing this module changes nothing in the process; Paddle is loaded by `load`, which keeps
the root logger's level and handlers as they were (Paddle's import sets them) and silences the
warning that Paddle's import gives when ccache, a compiler cache, is not installed.
"""
import json
import logging
import numbers
import os
import sys
import threading
import warnings

import numpy as np

from serving.folder import read_manifest

TASK_METHOD = {"classify": "classify", "regress": "classify", "tag": "tag", "mrc": "answer",
               "encode": "encode"}


def load(folder, num_threads=None, batch_size=32, predictor=True, precision="fp32"):
    """The model in a model folder, ready to predict (on CPU, `num_threads` math threads;
    default all cores; at most `batch_size` model inputs a batch). Raises
    utils.errors.DataError (one line, naming the file) for a folder whose files are missing or
    changed, and ValueError for a batch_size or num_threads that is not a positive integer.
    `predictor=False` loads its tokenizer and settings only (token_count, not predict; no
    Paddle): the server's when a worker process predicts.
    `precision`: "fp32", "bf16" or "int8" (as the prediction scripts' --precision; a CPU
    without the instructions runs fp32 after a notice on stderr). int8 runs the folder's int8
    programs, which `python -m serving.export --precision int8 --calibration_set FILE` (or a
    prediction script run with --precision int8 on the folder) adds."""
    return Model(str(folder), num_threads=num_threads, batch_size=batch_size,
                 predictor=predictor, precision=precision)


def _import_paddle():
    """Import Paddle, leaving the process' logging as it was: Paddle's import gives the root
    logger a handler and the level INFO, which would make every library's INFO messages
    appear, and warns that ccache is missing, which matters only to compiling C++ extensions,
    which inference does not do."""
    if "paddle" in sys.modules:
        return
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="No ccache found", category=UserWarning)
            import paddle  # noqa: F401
    finally:
        root.setLevel(level)
        root.handlers[:] = handlers


def _check_count(name, value):
    """batch_size and num_threads: a positive integer, checked at load, not at the first
    prediction (where 0 or "2" would fail inside the batching)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError("%s must be a positive integer, got %r" % (name, value))
    return int(value)


def task_reader(task, manifest, files):
    """The batch scripts' reader of `task` with the settings of `manifest` (a model folder's,
    or serving.folder.ExportPlan's before the folder is written); `files`: {name in the
    folder: path} of the files it reads (vocab.txt, label_map.json, the sentencepiece
    model)."""
    tok, task_id = manifest["tokenizer"], manifest.get("task_id", 0)
    common = dict(max_seq_len=tok["max_seq_len"], do_lower_case=tok["do_lower_case"],
                  tokenizer=tok["tokenizer"], task_id=task_id,
                  sp_model=files.get(tok["sentence_piece_model"]))
    vocab, label_map = files["vocab.txt"], files.get("label_map.json")
    if task in ("classify", "regress"):
        from reader.task_reader import ClassifyReader
        return ClassifyReader(vocab, label_map_config=label_map, is_inference=True,
                              for_cn=tok["for_cn"], is_classify=task == "classify",
                              is_regression=task == "regress", **common)
    if task == "tag":
        from reader.task_reader import SequenceLabelReader
        return SequenceLabelReader(vocab, label_map_config=label_map, is_inference=True,
                                   **common)
    if task == "mrc":
        from reader.mrc import MRCReader
        mrc = manifest["mrc"]
        return MRCReader(vocab, for_cn=tok["for_cn"], doc_stride=mrc["doc_stride"],
                         max_query_length=mrc["max_query_length"], **common)
    from reader.task_reader import ExtractEmbeddingReader
    return ExtractEmbeddingReader(vocab, **common)


def _check_items(items, what):
    if isinstance(items, (str, bytes, dict)) or not isinstance(items, (list, tuple)):
        raise ValueError("expected a list of %s, got %s" % (what, type(items).__name__))
    if not items:
        raise ValueError("expected a non-empty list of %s" % what)


def _text(value, index, name="text"):
    if not isinstance(value, str):
        raise ValueError("item %d: %s must be a string, got %s"
                         % (index, name, type(value).__name__))
    if not value.strip():
        raise ValueError("item %d: %s is empty" % (index, name))
    return value


class Model(object):
    """A loaded model folder. Attributes: task, labels (names of the output ids, or None),
    max_seq_len, hidden_size, folder, manifest, precision (what runs). Thread-safe: one
    prediction runs at a time."""

    def __init__(self, folder, num_threads=None, batch_size=32, predictor=True,
                 precision="fp32"):
        from utils.args import PRECISIONS
        if precision not in PRECISIONS:
            raise ValueError("precision must be one of %s, got %r"
                             % (", ".join(PRECISIONS), precision))
        self.batch_size = _check_count("batch_size", batch_size)
        self.num_threads = None if num_threads is None else \
            _check_count("num_threads", num_threads)
        self.folder = folder
        self.manifest = read_manifest(folder)
        self.task = self.manifest["task"]
        self.labels = self.manifest["labels"]
        self.max_seq_len = self.manifest["tokenizer"]["max_seq_len"]
        with open(os.path.join(folder, "ernie_config.json"), encoding="utf-8") as f:
            self.hidden_size = int(json.load(f)["hidden_size"])
        self._lock = threading.Lock()
        self._reader = self._make_reader(self.task)
        self._predictor = None
        self.precision = precision  # what runs: set again when the predictor loads
        if predictor:
            _import_paddle()
            from utils.inference import cpu_precision
            self.precision = cpu_precision(precision, what="precision")
            if self.precision == "int8" and "int8" not in self.manifest:
                from utils.errors import DataError
                raise DataError("%s: no int8 program in this model folder; add one with python "
                                "-m serving.export ... --precision int8 --calibration_set FILE"
                                % folder)
            self._predictor = self._load_predictor("task")
        self._encoder = self._predictor if self.task == "encode" else None
        self._encode_reader = self._reader if self.task == "encode" else None

    def _path(self, name):
        return os.path.join(self.folder, name)

    @property
    def reader(self):
        """The batch scripts' reader of the folder's task, with the folder's settings."""
        return self._reader

    def _load_predictor(self, which):
        """The Predictor of the folder's "task" or "encoder" program at self.precision."""
        _import_paddle()  # a model loaded with predictor=False has not imported Paddle yet
        from utils.inference import Predictor
        programs = self.manifest["int8"]["programs"] if self.precision == "int8" else \
            self.manifest["programs"]
        return Predictor(self._path(programs[which]), use_cuda=False,
                         num_threads=self.num_threads, precision=self.precision)

    def __repr__(self):
        return "<serving.api.Model %s task=%s>" % (self.folder, self.task)

    # ---- readers: the batch scripts' own, with the folder's settings ------------------------
    def _make_reader(self, task):
        return task_reader(task, self.manifest,
                           {name: self._path(name) for name in self.manifest["files"]})

    def _need(self, *tasks):
        if self.task not in tasks:
            raise ValueError("%s is a %s model; this call needs a %s model"
                             % (self.folder, self.task, " or ".join(tasks)))

    def _run(self, predictor, records, pad_batch, per_example):
        from finetune.predict import run_in_length_order
        with self._lock:
            return run_in_length_order(predictor, records, self.batch_size, pad_batch,
                                       per_example, quiet=True)

    # ---- items -> records ------------------------------------------------------------------
    def _pair_record(self, reader, item, index):
        if isinstance(item, (tuple, list)):
            if len(item) != 2:
                raise ValueError("item %d: a pair is (text_a, text_b), got %d texts"
                                 % (index, len(item)))
            row = {"text_a": _text(item[0], index, "text_a"),
                   "text_b": _text(item[1], index, "text_b")}
        else:
            row = {"text_a": _text(item, index)}
        record = reader.build_record(row, "<input>", index)
        # a text of control or zero-width characters only is not empty, but tokenizes to
        # nothing: the model would predict from [CLS] [SEP] alone
        if "text_b" not in row:
            if len(record.token_ids) == 2:
                raise ValueError("item %d: the text has no tokens" % index)
            return record
        a_ids = record.sent_ids.count(0) - 2  # [CLS] text_a [SEP]
        b_ids = len(record.sent_ids) - a_ids - 3  # text_b [SEP]
        for name, count in (("text_a", a_ids), ("text_b", b_ids)):
            # none left may also be the cut to max_seq_len of a model of a few tokens
            if count == 0 and not reader.tokenizer.tokenize(reader.clean_text(row[name])):
                raise ValueError("item %d: %s has no tokens" % (index, name))
        return record

    def _tag_example(self, item, index):
        is_list = isinstance(item, (tuple, list))
        if is_list:
            for k, token in enumerate(item):
                _text(token, index, "token %d" % k)
                if "\x02" in token:
                    raise ValueError("item %d: token %d %r contains \\x02, which separates "
                                     "tokens" % (index, k, token))
            # joined by \x02, with an empty last token: a line that has \x02 is split at
            # \x02 only, so a token with spaces stays one token (a list of one token has no
            # \x02 otherwise and would be split at its spaces); the empty token is dropped
            text = "\x02".join(list(item) + [""])
        else:
            text = _text(item, index)
        from utils.errors import DataError
        try:
            example = self._reader.build_example({"text_a": text}, "<input>", index)
        except DataError as e:
            raise ValueError("item %d: %s" % (index, str(e).split(": ", 1)[-1])) from None
        if is_list:
            example = example._replace(tokens=example.tokens[:-1],
                                       first_piece=example.first_piece[:-1])
        if not example.piece_ids:  # see _pair_record; each token would be labelled O
            raise ValueError("item %d: %s" % (index, "no token has any vocabulary pieces (each "
                                              "tokenizes to nothing)" if is_list
                                              else "the text has no tokens"))
        return example

    def _mrc_features(self, item, index, next_id):
        if not isinstance(item, dict):
            raise ValueError("item %d: expected {\"question\": ..., \"context\": ...}, got %s"
                             % (index, type(item).__name__))
        question = _text(item.get("question"), index, "question")
        context = _text(item.get("context"), index, "context")
        reader = self._reader
        example = reader._build_example(str(index), question, context, [], False)
        if not example.sub_tokens:
            raise ValueError("item %d: the context has no tokens" % index)
        features = reader._build_features(example, index, False, next_id, "<input>")
        if features[0].doc_offset == 2:  # [CLS] [SEP]: see _pair_record
            raise ValueError("item %d: the question has no tokens" % index)
        return example, features

    def token_count(self, item):
        """How many tokens `item` becomes ([CLS] and [SEP] included; all windows of a long
        input): what the server's batcher groups requests by. ValueError for a bad item."""
        if self.task in ("classify", "regress", "encode"):
            return len(self._pair_record(self._reader, item, 0).token_ids)
        if self.task == "tag":
            example = self._tag_example(item, 0)
            return sum(len(r.token_ids) for _, _, r in self._reader.window_records(example))
        _, features = self._mrc_features(item, 0, 0)
        return sum(len(f.token_ids) for f in features)

    # ---- the tasks ---------------------------------------------------------------------------
    def classify(self, texts):
        """texts: [str or (text_a, text_b)] -> [{"label": name, "probs": {name: p}}], or
        [{"score": float}] for a regression model."""
        self._need("classify", "regress")
        _check_items(texts, "texts or (text_a, text_b) pairs")
        records = [self._pair_record(self._reader, t, i) for i, t in enumerate(texts)]
        rows = self._run(self._predictor, records, self._reader.pad_batch,
                         lambda outputs, feed: list(outputs[0]))
        if self.task == "regress":
            return [{"score": float(row[0])} for row in rows]
        return [{"label": self.labels[int(np.argmax(row))],
                 "probs": {name: float(p) for name, p in zip(self.labels, row)}}
                for row in rows]

    def tag(self, texts):
        """texts: [str (tokens joined by \\x02, or by spaces when there is no \\x02, as a line
        of predict_sequence_labeling.py's input) or [token, ...]] -> [[(token, label), ...]],
        one label per token; long inputs are predicted in windows.

        A token of a list is kept whole, as a token of a \\x02-joined line is: one that
        contains spaces ("王 五") is tokenized into several pieces and takes the label of its
        first. A token may not contain \\x02 (it separates the tokens of a line). ValueError
        for a text or list that has no token at all (only control or zero-width
        characters)."""
        from finetune.sequence_label import predict_labels
        self._need("tag")
        _check_items(texts, "texts")
        examples = [self._tag_example(t, i) for i, t in enumerate(texts)]
        with self._lock:
            preds = predict_labels(self._reader, examples, self._predictor, self.batch_size,
                                   quiet=True)
        return [list(zip(ex.tokens, labels)) for ex, labels in zip(examples, preds)]

    def answer(self, items):
        """items: [{"question": str, "context": str}] -> [{"text": the best span of the
        context, "score": its probability among the n-best spans}], as run_mrc.py's
        nbest_predictions.json gives them."""
        from finetune.mrc import RawResult, decode
        from reader.mrc import FIRST_UNIQUE_ID
        self._need("mrc")
        _check_items(items, "{\"question\", \"context\"} objects")
        examples, features, next_id = [], [], FIRST_UNIQUE_ID
        for i, item in enumerate(items):
            example, feats = self._mrc_features(item, i, next_id)
            examples.append(example)
            features.extend(feats)
            next_id += len(feats)

        def per_feature(outputs, feed):
            start, end = outputs
            lengths = feed["input_mask"].sum(axis=1).astype("int64").reshape(-1)
            return [(start[k, :n].tolist(), end[k, :n].tolist()) for k, n in enumerate(lengths)]

        logits = self._run(self._predictor, features, self._reader.pad_batch, per_feature)
        results = [RawResult(f.unique_id, s, e) for f, (s, e) in zip(features, logits)]
        tok, mrc = self.manifest["tokenizer"], self.manifest["mrc"]
        _, nbest = decode(examples, features, results, mrc["n_best_size"],
                          mrc["max_answer_length"], tok["do_lower_case"], tok["for_cn"])
        return [{"text": nbest[ex.qas_id][0]["text"],
                 "score": float(nbest[ex.qas_id][0]["probability"])} for ex in examples]

    def encode(self, texts, pooling="cls"):
        """texts: [str or (text_a, text_b)] -> [{"pooled": [H], "tokens": [L_i, H]}]: the
        encoder's output at every real token ([CLS] and [SEP] included; spaces are kept, as
        ernie_encoder.py keeps them), and either its pooled [CLS] output (pooling="cls", what
        ernie_encoder.py writes to cls_emb.npy) or the mean of `tokens` (pooling="mean")."""
        if pooling not in ("cls", "mean"):
            raise ValueError("pooling must be \"cls\" or \"mean\", got %r" % (pooling,))
        _check_items(texts, "texts or (text_a, text_b) pairs")
        # a task folder makes its encoder's reader and loads the encoder on the first call;
        # the texts are checked in between, so that bad ones fail without the load
        if self._encode_reader is None:
            with self._lock:
                if self._encode_reader is None:
                    self._encode_reader = self._make_reader("encode")
        reader = self._encode_reader
        records = [self._pair_record(reader, t, i) for i, t in enumerate(texts)]
        if self._encoder is None:
            with self._lock:
                if self._encoder is None:
                    self._encoder = self._load_predictor("encoder")

        def per_example(outputs, feed):
            seq_out, pooled = outputs
            return [(pooled[i], seq_out[i, :n]) for i, n in enumerate(feed["seq_lens"])]

        results = self._run(self._encoder, records, reader.pad_batch, per_example)
        return [{"pooled": (pooled if pooling == "cls" else tokens.mean(axis=0)).copy(),
                 "tokens": tokens.copy()} for pooled, tokens in results]

    def predict(self, items):
        """The folder's own task over `items` (classify, tag, answer or encode)."""
        return getattr(self, TASK_METHOD[self.task])(items)
