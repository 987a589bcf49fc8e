"""Prediction through an exported Paddle Inference program, as predict_classifier.py,
predict_sequence_labeling.py, ernie_encoder.py and the Python API (serving/api.py) do it: where
the prediction scripts export a checkpoint (inference_model_dir; the export itself is
serving.folder's), and predicting records in batches of similar length (run_in_length_order)."""
import os

from reader.batching import length_sorted_order, restore_order
from utils.progress import progress


def inference_model_dir(args):
    """<save_inference_model_path>/<checkpoint folder name>_inference_model: where the
    prediction scripts export --init_checkpoint."""
    name = os.path.basename(os.path.normpath(args.init_checkpoint))
    return os.path.join(args.save_inference_model_path, name + "_inference_model")


def run_in_length_order(predictor, records, batch_size, pad_batch, per_example, quiet=False):
    """Predict `records` in batches of similar length (less padding), results in input order.

    predictor.run(feed) -> outputs; pad_batch(records) -> feed dict;
    per_example(outputs, feed) -> one result per record of the batch. `quiet`: no progress
    bar (the Python API, the server)."""
    order = length_sorted_order([len(r.token_ids) for r in records])
    results = []
    starts = range(0, len(order), batch_size)
    for start in (starts if quiet else progress(starts, len(starts), "predict")):
        feed = pad_batch([records[i] for i in order[start:start + batch_size]])
        results.extend(per_example(predictor.run(feed), feed))
    return restore_order(results, order)
