"""SQuAD v1.1 scoring: exact match and token F1, the logic of the official v1.1 evaluation script.

    python -m utils.squad_eval dev.json predictions.json     # prints {"exact_match": .., "f1": ..}

* An answer is normalised by lower-casing, deleting every ASCII punctuation character
  (``string.punctuation``), deleting the articles a / an / the (whole words) and collapsing runs
  of whitespace.
* EM of a prediction is 1 when its normalised text equals a normalised gold answer.
* F1 compares the bags (multisets) of normalised whitespace tokens: precision = common /
  |prediction tokens|, recall = common / |gold tokens|, 0 when nothing is in common.
* Each question takes its best score over the gold answers; a question with no prediction
  scores 0 (a note goes to stderr). EM and F1 are averaged over all questions and given x100.

`run_mrc.py --for_cn false` prints these numbers; `eval_file` returns what it prints.
"""
import collections
import json
import re
import string
import sys

from utils.errors import DataError, run_cli

_PUNCT = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text):
    """Lower-case, drop punctuation, drop articles, collapse whitespace."""
    text = "".join(c for c in text.lower() if c not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match_score(prediction, ground_truth):
    return normalize_answer(prediction) == normalize_answer(ground_truth)


def f1_score(prediction, ground_truth):
    pred = normalize_answer(prediction).split()
    gold = normalize_answer(ground_truth).split()
    common = sum((collections.Counter(pred) & collections.Counter(gold)).values())
    if common == 0:
        return 0
    precision, recall = common / len(pred), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def metric_max_over_ground_truths(metric, prediction, ground_truths):
    return max(metric(prediction, gold) for gold in ground_truths)


def evaluate(dataset, predictions):
    """dataset: the "data" list of a SQuAD json; predictions: {question id: text}.

    Returns {"exact_match": %, "f1": %} over every question of the dataset."""
    total, em, f1 = 0, 0.0, 0.0
    for article in dataset:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                total += 1
                if qa["id"] not in predictions:
                    print("Unanswered question %s will receive score 0." % qa["id"],
                          file=sys.stderr)
                    continue
                golds = [a["text"] for a in qa["answers"]]
                prediction = predictions[qa["id"]]
                em += metric_max_over_ground_truths(exact_match_score, prediction, golds)
                f1 += metric_max_over_ground_truths(f1_score, prediction, golds)
    if total == 0:
        raise DataError("the dataset has no questions to score")
    return {"exact_match": 100.0 * em / total, "f1": 100.0 * f1 / total}


def load_json(path, what):
    """A dataset or predictions json, with one-line errors (shared with cmrc2018_eval)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise DataError("%s: %s not found" % (path, what)) from None
    except (ValueError, UnicodeDecodeError) as e:
        raise DataError("%s: %s is not json (%s)" % (path, what, str(e).splitlines()[0])) from None
    if what == "predictions" and not isinstance(data, dict):
        raise DataError("%s: predictions must be a json object {question id: answer}" % path)
    return data


def eval_file(dataset_file, prediction_file):
    """(EM, F1, (EM + F1) / 2, number of questions) for a SQuAD json and a predictions.json."""
    data = load_json(dataset_file, "dataset")
    predictions = load_json(prediction_file, "predictions")
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise DataError("%s: not a SQuAD json (no \"data\" list)" % dataset_file)
    scores = evaluate(data["data"], predictions)
    total = sum(len(p["qas"]) for a in data["data"] for p in a["paragraphs"])
    em, f1 = scores["exact_match"], scores["f1"]
    return em, f1, (em + f1) / 2, total


def score_parser(prog, description):
    """The command line of both scorers: DATASET.json PREDICTIONS.json."""
    from utils.args import ArgumentParser
    parser = ArgumentParser(prog=prog, description=description)
    parser.add_argument("dataset", help="the questions and gold answers (SQuAD v1.1 json)")
    parser.add_argument("predictions", help="a json object {question id: answer text}")
    return parser


def main(argv):
    parser = score_parser("python -m utils.squad_eval",
                          "Exact match and F1 of predictions, by the SQuAD v1.1 rules.")
    args = parser.parse_args(argv)
    data = load_json(args.dataset, "dataset")
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise DataError("%s: not a SQuAD json (no \"data\" list)" % args.dataset)
    if data.get("version") not in (None, "1.1"):
        print("Evaluation expects v-1.1, but got dataset with v-%s" % data["version"],
              file=sys.stderr)
    print(json.dumps(evaluate(data["data"], load_json(args.predictions, "predictions"))))
    return 0


if __name__ == "__main__":
    run_cli(main)
