"""Non-neural baseline for the chnsenticorp stand-in: char 1-3-gram TF-IDF + logistic regression.

    python benchmarks/sentiment_baseline.py --data_dir DIR

``DIR/chnsenticorp/{train,dev,test}.tsv`` as written by ``python -m tools.prepare_data sentiment``.
C is chosen on dev accuracy (ties -> the smaller C); the last line printed is
``baseline char-ngram logistic regression: dev acc 0.xxxx, test acc 0.xxxx``.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from reader import task_reader  # noqa: E402
from utils.args import ArgumentParser  # noqa: E402
from utils.errors import DataError, UsageError, run_cli, where  # noqa: E402

C_GRID = (0.25, 1.0, 4.0, 16.0, 64.0)


def read_tsv(path):
    """(labels, texts) from a `label<TAB>text_a` file with a header line."""
    if not os.path.isfile(path):
        raise UsageError("%s: no such file (run `python -m tools.prepare_data sentiment`)" % path)
    rows = task_reader.read_tsv(path, required=("label", "text_a"))
    for lineno, row in rows:
        if row["label"] not in ("0", "1"):
            raise DataError("%s: label must be 0 or 1, got %r"
                            % (where(path, lineno), row["label"]))
    if not rows:
        raise DataError("%s: no examples" % path)
    return [int(row["label"]) for _, row in rows], [row["text_a"] for _, row in rows]


def main(argv=None):
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data_dir", required=True)
    args = p.parse_args(argv)

    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score

    d = os.path.join(args.data_dir, "chnsenticorp")
    y_tr, x_tr = read_tsv(os.path.join(d, "train.tsv"))
    y_dev, x_dev = read_tsv(os.path.join(d, "dev.tsv"))
    y_te, x_te = read_tsv(os.path.join(d, "test.tsv"))
    print("train %d, dev %d, test %d examples" % (len(x_tr), len(x_dev), len(x_te)))

    vec = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), min_df=2, sublinear_tf=True)
    f_tr = vec.fit_transform(x_tr)
    f_dev, f_te = vec.transform(x_dev), vec.transform(x_te)
    print("features: %d char 1-3-grams (min_df 2)" % f_tr.shape[1])

    best = None
    for c in C_GRID:
        clf = LogisticRegression(C=c, max_iter=5000, solver="liblinear")
        clf.fit(f_tr, y_tr)
        acc = accuracy_score(y_dev, clf.predict(f_dev))
        print("  C=%g: dev acc %.4f" % (c, acc))
        if best is None or acc > best[0]:
            best = (acc, c, clf)
    dev_acc, c, clf = best
    test_acc = accuracy_score(y_te, clf.predict(f_te))
    print("chosen C=%g" % c)
    print("baseline char-ngram logistic regression: dev acc %.4f, test acc %.4f"
          % (dev_acc, test_acc))
    return 0


if __name__ == "__main__":
    run_cli(main)
