"""Padding, masks, batching and sharding shared by every reader.

Records are lists of token ids (and parallel id lists); batches are dicts of numpy arrays
of shape [B, L] (the 2019 [B, L, 1] without the trailing 1), int64 except `input_mask`.
"""
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
