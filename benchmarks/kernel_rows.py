"""Paddle's own CPU kernels against oneDNN's, by the rows of a batch: where rows_for_onednn
(utils/inference.py) comes from.

    python benchmarks/kernel_rows.py [--shapes small,base] [--threads 1] [--texts 256]

For each shape it exports a classify model folder with random weights (the 2019 Chinese
vocabulary, max_seq_len 128), then predicts real reviews in batches of 1 to 32 rows, as the
server's batcher makes them: texts of similar length together, a different length from one
call to the next (a random order of the length-sorted batches). It prints milliseconds per
text of the same fp32 program on Paddle's own kernels (MKL's sgemm) and on oneDNN's, and on
oneDNN's once more with every batch run twice in a row and the second run timed: a shape it has
set up before, what a server could reach at best by padding its batches to a few shapes.
"""
import argparse
import os
import random
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from benchmarks.common import cpu_description, export_random_folder, review_texts  # noqa: E402
from utils import paddle_env  # noqa: E402

paddle_env.apply()  # before Paddle loads

ROWS = (1, 2, 4, 8, 16, 32)


def ms_per_text(predictor, batches, texts):
    predictor.run(batches[0])  # the first call of a predictor sets it up
    start = time.perf_counter()
    for batch in batches:
        predictor.run(batch)
    return (time.perf_counter() - start) / texts * 1000


def ms_per_text_seen(predictor, batches, texts):
    """ms_per_text with every batch run once untimed first: its shape set up already."""
    spent = 0.0
    for batch in batches:
        predictor.run(batch)
        start = time.perf_counter()
        predictor.run(batch)
        spent += time.perf_counter() - start
    return spent / texts * 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="small,base")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--texts", type=int, default=256, help="texts per measurement")
    args = parser.parse_args()
    import serving.api
    from utils.inference import Predictor
    texts = review_texts(2000)
    print("%s; %d thread%s; ms per text" % (cpu_description(), args.threads,
                                            "s" * (args.threads > 1)))
    print("\n| shape | rows | Paddle's kernels | oneDNN | oneDNN, shape seen before |\n"
          "|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as workdir:
        for shape in args.shapes.split(","):
            folder = os.path.join(workdir, shape)
            export_random_folder(shape, folder, workdir, 128)
            model = serving.api.load(folder, predictor=False)
            prefix = os.path.join(folder, model.manifest["programs"]["task"])
            records = [model.reader.build_record({"text_a": t}, "<input>", i)
                       for i, t in enumerate(texts)]
            own = Predictor(prefix, num_threads=args.threads, use_mkldnn=False)
            onednn = Predictor(prefix, num_threads=args.threads, onednn_min_rows=1)
            for rows in ROWS:
                rng = random.Random(rows)
                chosen = sorted(rng.sample(records, args.texts), key=lambda r: len(r.token_ids))
                batches = [model.reader.pad_batch(chosen[i:i + rows])
                           for i in range(0, len(chosen), rows)]
                rng.shuffle(batches)
                print("| %s | %d | %.2f | %.2f | %.2f |" % (
                    shape, rows, ms_per_text(own, batches, args.texts),
                    ms_per_text(onednn, batches, args.texts),
                    ms_per_text_seen(onednn, batches, args.texts)), flush=True)


if __name__ == "__main__":
    main()
