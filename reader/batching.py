"""Padding, masks, batching, sharding and the epoch loop shared by every reader.

Records are lists of token ids (and parallel id lists); batches are dicts of numpy arrays
of shape [B, L] (the 2019 [B, L, 1] without the trailing 1), int64 except `input_mask`.
"""
import itertools

import numpy as np


def pad_batch_data(insts, pad_idx=0, dtype="int64"):
    """Right-pad a list of id lists to the longest one: [B, L]."""
    max_len = max(len(inst) for inst in insts)
    out = np.full((len(insts), max_len), pad_idx, dtype=dtype)
    for i, inst in enumerate(insts):
        out[i, :len(inst)] = inst
    return out


def input_mask(insts):
    """float32 [B, L]: 1 at real tokens, 0 at padding."""
    max_len = max(len(inst) for inst in insts)
    lens = np.array([len(inst) for inst in insts])
    return (np.arange(max_len)[None, :] < lens[:, None]).astype("float32")


def seq_lens(insts):
    """int64 [B]: the real length of every sequence ([CLS] and [SEP] included)."""
    return np.array([len(inst) for inst in insts], dtype="int64")


def encoder_inputs(records, pad_id=0, task_id=0):
    """The five encoder inputs for records that have token_ids, sent_ids and pos_ids."""
    token_ids = [r.token_ids for r in records]
    src = pad_batch_data(token_ids, pad_id)
    return {
        "src_ids": src,
        "sent_ids": pad_batch_data([r.sent_ids for r in records], pad_id),
        "pos_ids": pad_batch_data([r.pos_ids for r in records], pad_id),
        "task_ids": np.full_like(src, task_id),
        "input_mask": input_mask(token_ids),
    }


def batch_records(records, batch_size, in_tokens=False, length=len):
    """Group records in order, the 2019 way.

    in_tokens: `batch_size` is a padded-token budget; a record joins while
    (count + 1) * max_len <= batch_size. Otherwise at most `batch_size` records a batch.
    A record longer than the whole budget still forms a batch of its own.
    """
    batch, max_len = [], 0
    for record in records:
        n = length(record)
        if in_tokens:
            fits = (len(batch) + 1) * max(max_len, n) <= batch_size
        else:
            fits = len(batch) < batch_size
        if batch and not fits:
            yield batch
            batch, max_len = [], 0
        batch.append(record)
        max_len = max(max_len, n)
    if batch:
        yield batch


def shard_batches(batches, trainer_id=0, num_trainers=1):
    """Trainer i takes the i-th batch of every run of `num_trainers` consecutive batches, and
    only complete runs are used (as 2019 fed its devices), so every trainer takes the same
    number of steps and N trainers with batch b see what one trainer with batch N*b sees."""
    if num_trainers <= 1:
        yield from batches
        return
    group = []
    for batch in batches:
        group.append(batch)
        if len(group) == num_trainers:
            yield group[trainer_id]
            group = []


def token_count(record):
    """The batching length of a record that has token_ids."""
    return len(record.token_ids)


def epoch_batches(epoch_items, num_epochs, batch_size, in_tokens=False, length=token_count,
                  trainer_id=0, num_trainers=1, rng=None, start=None, cut_epochs=True):
    """The epoch loop of every reader: the batches of `num_epochs` passes (None: endless)
    over the data, dealt to trainers, each with a position from which to resume.

    `epoch_items(epoch)` returns the items of pass `epoch` (0-based) in reading order; it is
    called when the pass begins and may draw that order, and anything else, from `rng`.
    Items are grouped by `batch_records` and the groups dealt by `shard_batches`:
      cut_epochs=True   pass by pass: a pass ends with a short batch, and its last run of
                        fewer than `num_trainers` batches is dropped (the fine-tuning readers);
      cut_epochs=False  over the whole stream: batches run on across pass boundaries (the
                        pretraining readers).

    Yields (records, position, examples). `examples` counts the items of the batches dealt
    so far to all trainers, through this batch's run: in the pass (cut_epochs) or in the
    stream. `position` is {"epoch": e, "batch": k} for this trainer's k-th batch of pass e,
    plus, with cut_epochs, "rng": the state of `rng` when pass e began (None without an rng),
    or else "batches": this trainer's batches since the stream began.

    `start`, a position yielded by an earlier run, continues right after its batch with what
    the uninterrupted run reads: a pass is drawn again from its "rng" state; a stream, whose
    passes share batches, is read again from the beginning (so the reader must be as new)
    and its first "batches" batches are skipped."""
    if not cut_epochs:
        yield from _stream_batches(epoch_items, num_epochs, batch_size, in_tokens, length,
                                   trainer_id, num_trainers, start)
        return
    first, skip = (start["epoch"], start["batch"]) if start else (0, 0)
    if start and rng is not None:
        rng.set_state(decode_rng_state(start["rng"]))
    passes = itertools.count(first) if num_epochs is None else range(first, num_epochs)
    for epoch in passes:
        rng_state = None if rng is None else encode_rng_state(rng.get_state())
        seen = [0]
        batches = _counted(batch_records(epoch_items(epoch), batch_size, in_tokens, length),
                           seen)
        for k, batch in enumerate(shard_batches(batches, trainer_id, num_trainers), 1):
            if epoch == first and k <= skip:
                continue
            yield batch, {"epoch": epoch, "batch": k, "rng": rng_state}, seen[0]


def _stream_batches(epoch_items, num_epochs, batch_size, in_tokens, length, trainer_id,
                    num_trainers, start):
    """epoch_batches with cut_epochs=False."""
    reading = [0]     # the pass being read; batch_records reads one item past a batch

    def stream():
        for epoch in itertools.count() if num_epochs is None else range(num_epochs):
            reading[0] = epoch
            yield from epoch_items(epoch)

    seen = [0]
    batches = _counted(batch_records(stream(), batch_size, in_tokens, length), seen)
    epoch, k = None, 0
    for n, batch in enumerate(shard_batches(batches, trainer_id, num_trainers), 1):
        if reading[0] != epoch:
            epoch, k = reading[0], 0
        k += 1
        if start and n <= start["batches"]:
            continue
        yield batch, {"epoch": epoch, "batch": k, "batches": n}, seen[0]


def _counted(batches, seen):
    """The batches unchanged; seen[0] counts their items so far."""
    for batch in batches:
        seen[0] += len(batch)
        yield batch


def length_sorted_order(lengths):
    """Indices that sort by length (stable), for inference batching; `restore_order` undoes it."""
    return np.argsort(np.asarray(lengths), kind="stable")


def restore_order(values, order):
    """values[i] belongs to input order[i]: return them in input order."""
    out = [None] * len(order)
    for value, index in zip(values, order):
        out[index] = value
    return out


def encode_rng_state(state):
    """numpy RandomState.get_state() as json-friendly data (for resumable checkpoints)."""
    name, keys, pos, has_gauss, cached = state
    return [name, [int(k) for k in keys], int(pos), int(has_gauss), float(cached)]


def decode_rng_state(data):
    name, keys, pos, has_gauss, cached = data
    return (name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached)
