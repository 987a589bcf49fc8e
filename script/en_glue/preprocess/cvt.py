"""Turn a raw GLUE download into the TSVs run_classifier.py reads (header line, then rows).

    python script/en_glue/preprocess/cvt.py GLUE_DIR [OUT_DIR=./glue_data_processed]

train/dev files become `text_a[, text_b], label` (column order as 2019 wrote them); test files
keep the GLUE id as `qid` and get the dummy label -1. MNLI goes to MNLI/train.tsv, MNLI/m/
(matched) and MNLI/mm/ (mismatched); the AX diagnostic set to MNLI/diagnostic.tsv.
"""
import os
import sys

# the repository root, for utils.fileio (the script runs from anywhere, by path)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))

from utils.fileio import atomic_path  # noqa: E402

MNLI_LABELS = {"contradiction": "0", "neutral": "1", "entailment": "2"}
ENTAIL_LABELS = {"entailment": "1", "not_entailment": "0"}
# what convert() looks for, each a path under GLUE_DIR
TASK_PATHS = [("CoLA",), ("SST-2",), ("MRPC",), ("STS-B",), ("QQP",), ("MNLI",), ("QNLI",),
              ("RTE",), ("WNLI",), ("diagnostic", "diagnostic.tsv")]


class BadInput(Exception):
    """GLUE_DIR is not what the download holds: the message says what and where."""


def rows(path, skip_header=True):
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().split("\n")
    except UnicodeDecodeError as e:
        raise BadInput("%s: not UTF-8 text (byte %d)" % (path, e.start)) from None
    lines = [ln.rstrip("\r") for ln in lines if ln.strip()]
    return [ln.split("\t") for ln in (lines[1:] if skip_header else lines)]


def write(path, header, records):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write("\t".join(header) + "\n")
        for r in records:
            f.write("\t".join(r) + "\n")
    print("%s: %d rows" % (path, len(records)))


def convert(glue, out):
    def src(*parts):
        return os.path.join(glue, *parts)

    def dst(*parts):
        return os.path.join(out, *parts)

    def present(*parts):
        found = os.path.exists(src(*parts))
        if not found:
            print("skip %s: not found" % src(*parts))
        return found

    if not any(os.path.exists(src(*parts)) for parts in TASK_PATHS):
        raise BadInput("%s holds none of the GLUE tasks (%s); is it the raw GLUE download "
                      "folder?" % (glue, ", ".join(parts[0] for parts in TASK_PATHS)))
    if present("CoLA"):
        for split in ("train", "dev"):
            write(dst("CoLA", split + ".tsv"), ["label", "text_a"],
                  [[f[1], f[3]] for f in rows(src("CoLA", split + ".tsv"), skip_header=False)])
        write(dst("CoLA", "test.tsv"), ["qid", "text_a", "label"],
              [f + ["-1"] for f in rows(src("CoLA", "test.tsv"))])
    if present("SST-2"):
        for split in ("train", "dev"):
            write(dst("SST-2", split + ".tsv"), ["label", "text_a"],
                  [[f[1], f[0]] for f in rows(src("SST-2", split + ".tsv")) if len(f) == 2])
        write(dst("SST-2", "test.tsv"), ["qid", "text_a", "label"],
              [f + ["-1"] for f in rows(src("SST-2", "test.tsv"))])
    if present("MRPC"):
        for split in ("train", "dev"):
            write(dst("MRPC", split + ".tsv"), ["text_a", "text_b", "label"],
                  [[f[3], f[4], f[0]] for f in rows(src("MRPC", split + ".tsv"))])
        write(dst("MRPC", "test.tsv"), ["qid", "text_a", "text_b", "label"],
              [[f[0], f[3], f[4], "-1"] for f in rows(src("MRPC", "test.tsv"))])
    if present("STS-B"):
        for split in ("train", "dev"):
            write(dst("STS-B", split + ".tsv"), ["text_a", "text_b", "label"],
                  [[f[7], f[8], f[9]] for f in rows(src("STS-B", split + ".tsv"))])
        write(dst("STS-B", "test.tsv"), ["qid", "text_a", "text_b", "label"],
              [[f[0], f[7], f[8], "-1"] for f in rows(src("STS-B", "test.tsv"))])
    if present("QQP"):
        for split in ("train", "dev"):
            write(dst("QQP", split + ".tsv"), ["text_a", "text_b", "label"],
                  [[f[3], f[4], f[5]] for f in rows(src("QQP", split + ".tsv"))
                   if len(f) == 6 and f[5] != ""])
        write(dst("QQP", "test.tsv"), ["qid", "text_a", "text_b", "label"],
              [f + ["-1"] for f in rows(src("QQP", "test.tsv"))])
    if present("MNLI"):
        write(dst("MNLI", "train.tsv"), ["text_a", "text_b", "label"],
              [[f[8], f[9], MNLI_LABELS[f[-1]]] for f in rows(src("MNLI", "train.tsv"))])
        for part, suffix in (("m", "matched"), ("mm", "mismatched")):
            write(dst("MNLI", part, "dev.tsv"), ["text_a", "text_b", "label"],
                  [[f[8], f[9], MNLI_LABELS[f[-1]]]
                   for f in rows(src("MNLI", "dev_%s.tsv" % suffix))])
            write(dst("MNLI", part, "test.tsv"), ["qid", "text_a", "text_b", "label"],
                  [[f[0], f[8], f[9], "-1"] for f in rows(src("MNLI", "test_%s.tsv" % suffix))])
    for task in ("QNLI", "RTE"):
        if present(task):
            for split in ("train", "dev"):
                write(dst(task, split + ".tsv"), ["text_a", "text_b", "label"],
                      [[f[1], f[2], ENTAIL_LABELS[f[3]]] for f in rows(src(task, split + ".tsv"))])
            write(dst(task, "test.tsv"), ["qid", "text_a", "text_b", "label"],
                  [[f[0], f[1], f[2], "-1"] for f in rows(src(task, "test.tsv"))])
    if present("WNLI"):
        for split in ("train", "dev"):
            write(dst("WNLI", split + ".tsv"), ["text_a", "text_b", "label"],
                  [[f[1], f[2], f[3]] for f in rows(src("WNLI", split + ".tsv"))])
        write(dst("WNLI", "test.tsv"), ["qid", "text_a", "text_b", "label"],
              [[f[0], f[1], f[2], "-1"] for f in rows(src("WNLI", "test.tsv"))])
    if present("diagnostic", "diagnostic.tsv"):
        write(dst("MNLI", "diagnostic.tsv"), ["qid", "text_a", "text_b", "label"],
              [f[:3] + ["-1"] for f in rows(src("diagnostic", "diagnostic.tsv"))])


def main(argv):
    if len(argv) not in (1, 2):
        print("usage: cvt.py GLUE_DIR [OUT_DIR]  (GLUE_DIR must be the raw GLUE folder)",
              file=sys.stderr)
        return 2
    if not os.path.isdir(argv[0]):
        print("error: %s: %s (GLUE_DIR must be the raw GLUE download)"
              % (argv[0], "not a folder" if os.path.exists(argv[0]) else "no such folder"),
              file=sys.stderr)
        return 2
    try:
        convert(argv[0], argv[1] if len(argv) == 2 else "glue_data_processed")
    except BadInput as e:
        print("error: %s" % e, file=sys.stderr)
        return 1
    except (IndexError, KeyError) as e:
        print("error: unexpected GLUE row layout (%r); is GLUE_DIR the raw download?" % (e,),
              file=sys.stderr)
        return 1
    except OSError as e:
        # a task folder without one of its files, an unreadable file, a full disk: the files
        # written so far are whole and the one being written is removed (atomic_path)
        print("error: %s: %s" % (e.filename or argv[0], e.strerror or e), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
