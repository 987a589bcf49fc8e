"""ERNIE 2.0 continual multi-task pretraining: the json config, each task's data and loss, and
the run (train.py --multitask_config FILE). The model, its heads and their parameter names:
model/multitask.py.

2019 released no code for this; this is our design, following the ERNIE 2.0 paper. Training
is continual: the config lists stages, each stage names the tasks it trains with a sampling
weight; later stages add tasks while earlier ones keep training. Every step samples one task
of the current stage by weight, runs one batch of it and updates the encoder and that task's
head (one AdamW over all parameters; a head keeps its optimizer state while other tasks run,
and gets no update while its task does not: FreshGradOptimizer). Losses are softmax cross
entropy, averaged over the examples (over the labelled tokens for token tasks, over the
masked tokens for the masked LM).

  | kind | data | classes |
  |---|---|---|
  | knowledge_masking | 2019 gz file list, word/phrase/entity masking | vocabulary |
  | next_sentence | 2019 gz file list | 2 |
  | capitalization | document text | 2 |
  | token_document_relation | document text | 2 |
  | sentence_reordering | document text | Σ n! for n ≤ max_segments |
  | sentence_distance | document text | 3 |
  | sentence_pair | labelled TSV `text_a, text_b, label` | `num_labels` |

(`discourse_relation` and `ir_relevance` are other names of the sentence_pair kind.)

Config (relative paths are taken from FILE's folder):

    {"tasks": [
        {"name": "knowledge_masking", "data": "pd/train_filelist"},
        {"name": "sentence_reordering", "data": "pd/documents.txt", "max_segments": 3},
        {"name": "ir_relevance", "kind": "sentence_pair", "data": "pd/ir.tsv", "num_labels": 2}],
     "stages": [
        {"steps": 1000, "tasks": {"knowledge_masking": 1.0}},
        {"steps": 2000, "tasks": {"knowledge_masking": 2, "sentence_reordering": 1,
                                  "ir_relevance": 1}}]}

Task keys: `name` (letters, digits, `_`), `kind` (default: the name), `data`, `task_id`
(default: the task's index), and optionally `batch_size`, `in_tokens`, `max_seq_len`
(default: the flags), `max_segments` (sentence_reordering, 1..3, default 3), `num_labels`,
`label_map_config`, `for_cn` (sentence_pair), `do_lower_case`.

Log lines, every --skip_steps, one per task that ran since the previous line:
    stage: %d, step: %d, task: %s, loss: %f, acc: %f, task_steps: %d, speed: %f steps/s
(the masked LM adds `ppl: %f`). A checkpoint `<checkpoints>/stage_<s>_step_<n>` is saved at
the end of every stage, besides the usual step_N ones (--keep_checkpoint_max deletes old
step_N ones only). Both record where the run is (the stage
and the step in it, the task sampler's random state, the batches each task's reader has given)
besides the optimizer and random state, so `--resume auto` continues a killed run exactly; a
checkpoint of another config (a later stage plan, an added task) gives parameters only.
"""
import collections
import hashlib
import json
import math
import os
import re

import numpy as np
import paddle
import paddle.nn.functional as F

from model.ernie import check_against_config, feed, input_spec
from model.multitask import MLM_KINDS, TOKEN_KINDS, ErnieMultiTask, head_name, task_input_names
from pretraining.runner import export_model_dir, replay, synchronized
from reader.batching import decode_rng_state, encode_rng_state
from reader.documents import DocumentTaskReader, read_documents
from reader.pretraining import ErnieDataReader
from reader.task_reader import ClassifyReader
from tokenization import FullTokenizer, load_vocab
from utils import loop
from utils.amp import amp_from_args
from utils.checkpoint import ADAM_SLOTS, MANIFEST_FILE, init_checkpoint
from utils.errors import DataError, UsageError
from utils.optimization import make_optimizer
from utils.resume import check_checkpoint_folder, check_resumed_run, restore_training
from utils.runtime import compile_model

FILELIST_KINDS = ("knowledge_masking", "next_sentence")
DOCUMENT_KINDS = ("capitalization", "token_document_relation", "sentence_reordering",
                  "sentence_distance")
PAIR_ALIASES = ("sentence_pair", "discourse_relation", "ir_relevance")
KINDS = FILELIST_KINDS + DOCUMENT_KINDS + PAIR_ALIASES
TASK_KEYS = ("name", "kind", "data", "task_id", "batch_size", "in_tokens", "max_seq_len",
             "max_segments", "num_labels", "label_map_config", "for_cn", "do_lower_case")
STAGE_KEYS = ("steps", "tasks")


# ----------------------------------------------------------------------------------------------
# config

class Task(object):
    """One task of the config, with its defaults filled in."""

    def __init__(self, spec, index, source, base_dir):
        unknown = sorted(set(spec) - set(TASK_KEYS))
        if unknown:
            raise UsageError("%s: task %d has unknown key(s) %s (known: %s)"
                             % (source, index, ", ".join(unknown), ", ".join(TASK_KEYS)))
        self.name = spec.get("name")
        if not isinstance(self.name, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*",
                                                              self.name):
            raise UsageError("%s: task %d needs a name of letters, digits and '_', got %r"
                             % (source, index, self.name))
        self.kind = spec.get("kind", self.name)
        if self.kind not in KINDS:
            raise UsageError("%s: task %s: unknown kind %r (one of %s)"
                             % (source, self.name, self.kind, ", ".join(KINDS)))
        if self.kind in PAIR_ALIASES:
            self.kind = "sentence_pair"
        self.data = spec.get("data")
        if not isinstance(self.data, str) or not self.data:
            raise UsageError("%s: task %s needs \"data\" (a file path)" % (source, self.name))
        self.data = _resolve(self.data, base_dir)
        if not os.path.exists(self.data):
            raise UsageError("%s: task %s: data %s does not exist" % (source, self.name,
                                                                      self.data))
        if os.path.isdir(self.data):
            raise UsageError("%s: task %s: data %s is a folder, not a file"
                             % (source, self.name, self.data))
        self.task_id = spec.get("task_id", index)
        self.batch_size = spec.get("batch_size")
        self.in_tokens = spec.get("in_tokens")
        self.max_seq_len = spec.get("max_seq_len")
        self.max_segments = spec.get("max_segments", 3)
        self.for_cn = spec.get("for_cn", True)
        self.do_lower_case = spec.get("do_lower_case", True)
        self.label_map_config = spec.get("label_map_config")
        if self.label_map_config:
            self.label_map_config = _resolve(self.label_map_config, base_dir)
        for key in ("task_id", "batch_size", "max_seq_len", "max_segments", "num_labels"):
            value = spec.get(key)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                      or value < (0 if key == "task_id" else 1)):
                raise UsageError("%s: task %s: %s must be a %s integer, got %r"
                                 % (source, self.name, key,
                                    "non-negative" if key == "task_id" else "positive", value))
        if self.kind == "sentence_reordering" and not 1 <= self.max_segments <= 3:
            raise UsageError("%s: task %s: max_segments must be 1, 2 or 3, got %d"
                             % (source, self.name, self.max_segments))
        self.num_labels = spec.get("num_labels")
        fixed = {"next_sentence": 2, "capitalization": 2, "token_document_relation": 2,
                 "sentence_distance": 3,
                 "sentence_reordering": sum(math.factorial(n)
                                            for n in range(1, self.max_segments + 1))}
        if self.kind in fixed:
            if self.num_labels not in (None, fixed[self.kind]):
                raise UsageError("%s: task %s: a %s task has %d classes, not num_labels %d"
                                 % (source, self.name, self.kind, fixed[self.kind],
                                    self.num_labels))
            self.num_labels = fixed[self.kind]
        elif self.kind == "sentence_pair" and self.num_labels is None:
            raise UsageError("%s: task %s: a sentence_pair task needs num_labels"
                             % (source, self.name))

    @property
    def head_name(self):
        return head_name(self.name, self.kind)

    @property
    def metric(self):
        return "ppl" if self.kind in MLM_KINDS else None


class Stage(object):
    def __init__(self, spec, index, tasks, source):
        unknown = sorted(set(spec) - set(STAGE_KEYS))
        if unknown:
            raise UsageError("%s: stage %d has unknown key(s) %s (known: steps, tasks)"
                             % (source, index, ", ".join(unknown)))
        self.steps = spec.get("steps")
        if not isinstance(self.steps, int) or isinstance(self.steps, bool) or self.steps <= 0:
            raise UsageError("%s: stage %d: steps must be a positive integer, got %r"
                             % (source, index, self.steps))
        weights = spec.get("tasks")
        if isinstance(weights, list):
            weights = {name: 1.0 for name in weights}
        if not isinstance(weights, dict) or not weights:
            raise UsageError("%s: stage %d: tasks must map task names to sampling weights"
                             % (source, index))
        for name, weight in weights.items():
            if name not in tasks:
                raise UsageError("%s: stage %d names task %r, which is not among the tasks (%s)"
                                 % (source, index, name, ", ".join(tasks)))
            if (not isinstance(weight, (int, float)) or isinstance(weight, bool)
                    or not math.isfinite(weight) or weight <= 0):
                raise UsageError("%s: stage %d: the weight of %s must be a positive number, "
                                 "got %r" % (source, index, name, weight))
        self.names = list(weights)
        total = float(sum(weights.values()))
        self.probs = np.array([weights[n] / total for n in self.names])


def _resolve(path, base_dir):
    return path if os.path.isabs(path) else os.path.normpath(os.path.join(base_dir, path))


class MultiTaskConfig(object):
    """The json config: `tasks` (name -> Task, in order) and `stages` (list of Stage)."""

    def __init__(self, path):
        self.source = str(path)
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            raise UsageError("%s: multi-task config not found" % path) from None
        except (ValueError, UnicodeDecodeError) as e:
            raise DataError("%s: not a json multi-task config (%s)"
                            % (path, str(e).splitlines()[0])) from None
        if not isinstance(data, dict) or not isinstance(data.get("tasks"), list) \
                or not isinstance(data.get("stages"), list):
            raise UsageError("%s: a multi-task config is a json object with \"tasks\" (a list) "
                             "and \"stages\" (a list)" % path)
        unknown = sorted(set(data) - {"tasks", "stages", "comment"})
        if unknown:
            raise UsageError("%s: unknown key(s) %s" % (path, ", ".join(unknown)))
        base_dir = os.path.dirname(os.path.abspath(path))
        self.tasks = collections.OrderedDict()
        for index, spec in enumerate(data["tasks"]):
            if not isinstance(spec, dict):
                raise UsageError("%s: task %d is not a json object" % (path, index))
            task = Task(spec, index, self.source, base_dir)
            if task.name in self.tasks:
                raise UsageError("%s: two tasks are named %s" % (path, task.name))
            self.tasks[task.name] = task
        for kind in FILELIST_KINDS:
            same = [t.name for t in self.tasks.values() if t.kind == kind]
            if len(same) > 1:
                raise UsageError("%s: tasks %s are all %s tasks; their heads would share the "
                                 "2019 parameter names: keep one" % (path, ", ".join(same),
                                                                     kind))
        if not data["stages"]:
            raise UsageError("%s: \"stages\" is empty" % path)
        self.stages = [Stage(s if isinstance(s, dict) else {}, i + 1, self.tasks, self.source)
                       for i, s in enumerate(data["stages"])]
        used = set(n for s in self.stages for n in s.names)
        for name in self.tasks:
            if name not in used:
                print("WARNING: %s: task %s is in no stage; it is not trained" % (path, name))
        seen = []
        for index, stage in enumerate(self.stages, 1):
            dropped = [n for n in seen if n not in stage.names]
            if dropped:
                print("WARNING: %s: stage %d drops %s, trained in an earlier stage (continual "
                      "multi-task learning keeps earlier tasks training)"
                      % (path, index, ", ".join(dropped)))
            seen += [n for n in stage.names if n not in seen]

    @property
    def total_steps(self):
        return sum(s.steps for s in self.stages)


# ----------------------------------------------------------------------------------------------
# data and loss

def make_task_reader(task, args, cfg, runtime, tokenizer_cache, document_cache):
    """(reader, a function returning a fresh batch generator for `task`: endless() calls it
    again whenever its batches end). Tokenizers and documents read are shared through the two
    caches (dicts), as several tasks read one file."""
    batch_size = task.batch_size or args.batch_size
    in_tokens = args.in_tokens if task.in_tokens is None else task.in_tokens
    max_seq_len = task.max_seq_len or args.max_seq_len
    if max_seq_len > cfg["max_position_embeddings"]:
        raise UsageError("task %s: max_seq_len %d is longer than max_position_embeddings %d"
                         % (task.name, max_seq_len, cfg["max_position_embeddings"]))
    if task.kind in FILELIST_KINDS:
        reader = ErnieDataReader(
            task.data, args.vocab_path, batch_size=batch_size, max_seq_len=max_seq_len,
            epoch=args.epoch, voc_size=cfg["vocab_size"], in_tokens=in_tokens,
            generate_neg_sample=args.generate_neg_sample and task.kind == "next_sentence",
            random_seed=args.random_seed, strict_data=args.strict_data,
            trainer_id=runtime.trainer_id, num_trainers=runtime.num_trainers,
            task_id=task.task_id, sent_types=cfg.sent_types,
            max_position=cfg["max_position_embeddings"])
        return reader, reader.data_generator()
    if task.kind == "sentence_pair":
        reader = ClassifyReader(args.vocab_path, label_map_config=task.label_map_config,
                                max_seq_len=max_seq_len, do_lower_case=task.do_lower_case,
                                in_tokens=in_tokens, random_seed=args.random_seed,
                                for_cn=task.for_cn, task_id=task.task_id)
        records = reader.records(task.data)
        if not records:
            raise DataError("%s: no examples after the header line (task %s)"
                            % (task.data, task.name))
        top = max(r.label for r in records)
        if top >= task.num_labels or min(r.label for r in records) < 0:
            raise DataError("%s: labels go up to %d but task %s has num_labels %d"
                            % (task.data, top, task.name, task.num_labels))
        return reader, reader.data_generator(
            task.data, batch_size, epoch=10 ** 9, shuffle=True, phase="train",
            trainer_id=runtime.trainer_id, num_trainers=runtime.num_trainers)
    key = (args.vocab_path, task.do_lower_case)
    if key not in tokenizer_cache:
        tokenizer_cache[key] = FullTokenizer(args.vocab_path, do_lower_case=task.do_lower_case)
    tokenizer = tokenizer_cache[key]
    if (task.data, key) not in document_cache:
        document_cache[(task.data, key)] = read_documents(task.data, tokenizer)
    reader = DocumentTaskReader(
        task.kind, task.data, tokenizer, max_seq_len=max_seq_len, batch_size=batch_size,
        in_tokens=in_tokens, random_seed=args.random_seed, task_id=task.task_id,
        sent_types=cfg.sent_types, max_segments=task.max_segments,
        trainer_id=runtime.trainer_id, num_trainers=runtime.num_trainers,
        docs=document_cache[(task.data, key)])
    return reader, reader.data_generator()


def endless(make_generator):
    """Batches of a generator function, started again whenever it ends."""
    while True:
        empty = True
        for batch in make_generator():
            empty = False
            yield batch
        if empty:
            raise DataError("a task's data gives no batch at all")


def task_loss(task, logits, batch):
    """(mean loss, accuracy) of one task's batch, as tensors."""
    logits = logits.astype("float32")
    if task.kind in MLM_KINDS:
        labels = paddle.to_tensor(batch["mask_label"])
    else:
        labels = paddle.to_tensor(batch["labels"])
    if task.kind in TOKEN_KINDS:
        # Paddle's reduction="mean" with ignore_index divides by all positions: divide by the
        # labelled ones ourselves
        per_token = F.cross_entropy(logits, labels.unsqueeze(-1), ignore_index=-1,
                                    reduction="none").squeeze(-1)
        valid = (labels != -1).astype("float32")
        count = paddle.clip(valid.sum(), min=1.0)
        hit = (paddle.argmax(logits, axis=-1) == labels).astype("float32") * valid
        return (per_token * valid).sum() / count, hit.sum() / count
    loss = F.cross_entropy(logits, labels).mean()
    return loss, (paddle.argmax(logits, axis=-1) == labels).astype("float32").mean()


# ----------------------------------------------------------------------------------------------
# the run

def check_task_ids(cfg, tasks, source):
    if not cfg.use_task_id:
        print("WARNING: %s does not set use_task_id: no task embedding, tasks are told apart by "
              "their heads only (ERNIE 2.0 feeds each task's id; set \"use_task_id\": true and "
              "\"task_type_vocab_size\")" % source)
        return
    for task in tasks.values():
        if task.task_id >= cfg["task_type_vocab_size"]:
            raise UsageError("task %s has task_id %d but task_type_vocab_size is %d in %s"
                             % (task.name, task.task_id, cfg["task_type_vocab_size"], source))


def multitask_identity(mt, args, runtime):
    """What a multi-task run's batch streams and learning-rate plan depend on (its checkpoints
    record it; --resume auto requires it unchanged): the config's tasks and stages (a digest,
    data paths resolved), the reader flags, the seed and the plan."""
    plan = {"tasks": [{k: v for k, v in sorted(vars(t).items())} for t in mt.tasks.values()],
            "stages": [{"steps": s.steps, "tasks": [[n, float(p)] for n, p in
                                                    zip(s.names, s.probs)]}
                       for s in mt.stages]}
    digest = hashlib.sha256(json.dumps(plan, sort_keys=True).encode("utf-8")).hexdigest()
    return {"multitask_config": "%s (tasks and stages sha256 %s)"
                                % (os.path.abspath(args.multitask_config), digest[:16]),
            "batch_size": args.batch_size, "in_tokens": args.in_tokens,
            "max_seq_len": args.max_seq_len, "epoch": args.epoch,
            "random_seed": args.random_seed, "generate_neg_sample": args.generate_neg_sample,
            "num_trainers": runtime.num_trainers, "warmup_steps": args.warmup_steps,
            "learning_rate": args.learning_rate, "lr_scheduler": args.lr_scheduler,
            "weight_decay": args.weight_decay}


def train_multitask(args, cfg, runtime):
    """Run the stages of --multitask_config; returns the number of steps taken.

    A checkpoint of this run (same multitask_identity) given to --init_checkpoint, or found
    by --resume auto, continues it exactly: parameters, optimizer state, step, random state,
    and the data position (`train_state.json`): the stage and the step within it, the task
    sampler's random state and how many batches each task's reader has given (its stream is
    replayed to there). Any other checkpoint gives parameters only (new heads start fresh)."""
    mt = MultiTaskConfig(args.multitask_config)
    print("ERNIE 2.0 multi-task pretraining start")
    cfg.print_config()
    check_against_config(args, cfg, load_vocab(args.vocab_path))
    check_task_ids(cfg, mt.tasks, args.ernie_config_path)
    for name, task in mt.tasks.items():
        print("task %s: kind %s, task_id %d, %d classes, head %s, data %s"
              % (name, task.kind, task.task_id, task.num_labels or 0, task.head_name,
                 task.data))
    for index, stage in enumerate(mt.stages, 1):
        print("stage %d: %d steps, tasks %s" % (index, stage.steps, ", ".join(
            "%s (%.3f)" % (n, p) for n, p in zip(stage.names, stage.probs))))

    model = ErnieMultiTask(cfg, mt.tasks, weight_sharing=args.weight_sharing)
    if args.init_checkpoint:
        init_checkpoint(model, args.init_checkpoint)
    for name, task in mt.tasks.items():
        model.set_task_forward(name, compile_model(
            model.task_forward(name), args.to_static,
            input_spec(task_input_names(task.kind))))
    # every task's step goes through the model's forward, so that DataParallel sees it
    dispatch = (paddle.DataParallel(model, find_unused_parameters=True)
                if runtime.num_trainers > 1 else model)

    total = mt.total_steps
    optimizer, lr = make_optimizer(model.parameters(), args.learning_rate, args.warmup_steps,
                                   total, args.weight_decay, args.lr_scheduler)
    optimizer = FreshGradOptimizer(optimizer)
    identity = multitask_identity(mt, args, runtime)
    check_resumed_run(args, identity)
    resumed = None
    # our checkpoints only: a 2019 one gives parameters (its step count is another plan's)
    if args.init_checkpoint and os.path.isfile(os.path.join(args.init_checkpoint,
                                                            MANIFEST_FILE)):
        resumed = restore_training(args.init_checkpoint, optimizer, lr, identity)
    start_step = resumed["step"] if resumed else 0
    check_checkpoint_folder(args, identity, start_step)
    print("Device count: %d" % runtime.num_trainers)
    print("Num train steps: %d (the stages' sum; --num_train_steps is not used), warmup "
          "steps: %d" % (total, args.warmup_steps))

    tokenizers, documents, streams = {}, {}, {}
    for name, task in mt.tasks.items():   # read every task's data now: errors show up early
        _, gen = make_task_reader(task, args, cfg, runtime, tokenizers, documents)
        streams[name] = endless(gen)
    rng = np.random.RandomState(args.random_seed)   # the same task sequence on every trainer
    state = {"stage": 0}
    # where the run is: the stage and the steps done in it, the sampler's state, the batches
    # each task's stream has given (what a checkpoint saves, and a resumed run restores)
    position = {"stage": 1, "stage_step": 0, "task_batches": {name: 0 for name in mt.tasks}}
    if resumed:
        saved = resumed["data_position"]
        rng.set_state(decode_rng_state(saved["sampler"]))
        for name, count in sorted(saved["task_batches"].items()):
            replay(streams[name], count)
        position.update(stage=saved["stage"], stage_step=saved["stage_step"],
                        task_batches=dict(saved["task_batches"]))
        print("resuming: stage %d after its step %d; replayed the batches already trained on "
              "(%s)" % (saved["stage"], saved["stage_step"], ", ".join(
                  "%s %d" % kv for kv in saved["task_batches"].items() if kv[1])))

    def train_state():
        return dict(identity, data_position=dict(
            position, sampler=encode_rng_state(rng.get_state()),
            task_batches=dict(position["task_batches"])))

    def task_batches():
        done, begin = start_step, 0
        for index, stage in enumerate(mt.stages, 1):
            end = begin + stage.steps
            if end <= done:             # finished before this run began
                begin = end
                continue
            if done == begin:
                if index > 1 and runtime.is_main:   # the previous stage's last step is applied
                    loop.save_or_stop(model, optimizer, os.path.join(
                        args.checkpoints, "stage_%d_step_%d" % (index - 1, done)),
                        dict(train_state(), step=done))
                print("stage %d begins at step %d: %s" % (index, done, ", ".join(stage.names)),
                      flush=True)
            else:
                print("stage %d continues at step %d (step %d of it): %s"
                      % (index, done, done - begin, ", ".join(stage.names)), flush=True)
            state["stage"] = index
            for _ in range(done - begin, stage.steps):
                name = stage.names[rng.choice(len(stage.names), p=stage.probs)]
                batch = next(streams[name])
                position["stage"], position["stage_step"] = index, done - begin + 1
                position["task_batches"][name] += 1
                yield name, batch
                done += 1
            begin = end

    def loss_and_stats(item):
        name, batch = item
        task = mt.tasks[name]
        logits = dispatch(name, *feed(batch, task_input_names(task.kind)))
        loss, acc = task_loss(task, logits, batch)
        return loss, {"n:" + name: 1.0, "loss:" + name: float(loss), "acc:" + name: float(acc)}

    def log_line(steps, means, speed):
        lines = ["current learning_rate:%f" % means["learning_rate"]]
        for name, task in mt.tasks.items():
            n = means.get("n:" + name, 0.0)
            if not n:
                continue
            loss = means["loss:" + name] / n
            extra = ", ppl: %f" % math.exp(min(loss, 700)) if task.metric == "ppl" else ""
            lines.append("stage: %d, step: %d, task: %s, loss: %f%s, acc: %f, task_steps: %d, "
                         "speed: %f steps/s" % (state["stage"], steps, name, loss, extra,
                                                means["acc:" + name] / n,
                                                int(round(n * args.skip_steps)), speed))
        return "\n".join(lines)

    batches = synchronized(task_batches(), runtime)
    # looked up at call time (loop.train_loop), so a test can wrap it
    steps = loop.train_loop(model, optimizer, lr, batches, loss_and_stats, args, runtime,
                            log_line, amp=amp_from_args(args, runtime), start_step=start_step,
                            train_state=train_state)
    if runtime.is_main and steps:
        loop.save_or_stop(model, optimizer, os.path.join(
            args.checkpoints, "stage_%d_step_%d" % (len(mt.stages), steps)),
            dict(train_state(), step=steps))
    if args.export_model_dir and runtime.is_main:
        export_model_dir(model, args, cfg)
    print("multi-task pretraining finished after %d steps" % steps)
    return steps


class FreshGradOptimizer(object):
    """Clears gradients to None rather than zero, so a head whose task did not run this step
    gets no update (no momentum drift, no weight decay) from the shared optimizer.

    Its state holds the Adam accumulators of every parameter, those of a head that has not
    been updated yet as Paddle creates them on a first update (zero moments, beta powers at
    beta). Paddle's own state has only the accumulators created so far: restored from a
    checkpoint that lacked a head's, it stopped at that head's first update ("should in state
    dict"), and a checkpoint saved after a restore lost the restored accumulators of every
    head whose task had not run again since."""

    def __init__(self, optimizer):
        self._optimizer = optimizer

    def clear_grad(self, set_to_zero=False):
        self._optimizer.clear_grad(set_to_zero=False)

    def _fresh_state(self):
        opt = self._optimizer
        state = {}
        for p in opt._parameter_list:
            fresh = (np.zeros(p.shape, "float32"), np.zeros(p.shape, "float32"),
                     np.array([opt._beta1], "float32"), np.array([opt._beta2], "float32"))
            for slot, value in zip(ADAM_SLOTS, fresh):
                state["%s_%s_0" % (p.name, slot)] = value
        return state

    def state_dict(self):
        state = self._optimizer.state_dict()
        # restored accumulators of parameters not updated since (Paddle keeps them aside)
        for key, value in self._optimizer._accumulators_holder.items():
            state.setdefault(key, value)
        for key, value in self._fresh_state().items():
            state.setdefault(key, value)
        return state

    def set_state_dict(self, state_dict):
        state = dict(state_dict)
        for key, value in self._fresh_state().items():
            state.setdefault(key, value)
        self._optimizer.set_state_dict(state)

    def __getattr__(self, name):
        return getattr(self._optimizer, name)
