"""Prediction through an exported Paddle Inference program, as predict_classifier.py,
predict_sequence_labeling.py and ernie_encoder.py do it: load parameters into a model and
export it (export_checkpoint), then predict records in batches of similar length
(run_in_length_order)."""
import os
import shutil

from model.ernie import encoder_input_spec
from reader.batching import length_sorted_order, restore_order
from utils.checkpoint import init_checkpoint, init_pretraining_params
from utils.inference import export
from utils.progress import progress


def inference_model_dir(args):
    """<save_inference_model_path>/<checkpoint folder name>_inference_model: where the
    prediction scripts export --init_checkpoint."""
    name = os.path.basename(os.path.normpath(args.init_checkpoint))
    return os.path.join(args.save_inference_model_path, name + "_inference_model")


def export_checkpoint(model, path, prefix, config, serving=None, label_map_config=None,
                      encoder_only=False):
    """Load the parameters at `path` into `model` and export serving(model) (the model itself
    when serving is None) as <prefix>.json + <prefix>.pdiparams, taking the encoder inputs of
    `config`; a label map is copied next to them as label_map.json. Returns the prefix.

    encoder_only: load the encoder parameters only (a pretrained model); otherwise every
    parameter the model has, its task head included, must come from `path`."""
    if encoder_only:
        init_pretraining_params(model, path)
    else:
        init_checkpoint(model, path, training=False)
    layer = serving(model) if serving is not None else model
    prefix = export(layer, prefix, encoder_input_spec(config))
    if label_map_config:
        shutil.copyfile(label_map_config,
                        os.path.join(os.path.dirname(prefix), "label_map.json"))
    return prefix


def run_in_length_order(predictor, records, batch_size, pad_batch, per_example):
    """Predict `records` in batches of similar length (less padding), results in input order.

    predictor.run(feed) -> outputs; pad_batch(records) -> feed dict;
    per_example(outputs, feed) -> one result per record of the batch."""
    order = length_sorted_order([len(r.token_ids) for r in records])
    results = []
    starts = range(0, len(order), batch_size)
    for start in progress(starts, len(starts), "predict"):
        feed = pad_batch([records[i] for i in order[start:start + batch_size]])
        results.extend(per_example(predictor.run(feed), feed))
    return restore_order(results, order)
