"""Text -> tokens -> ids, as the 2019 ERNIE toolkit did it.

Contents, top to bottom:

* `convert_to_unicode`, `printable_text`: bytes/str helpers.
* `load_vocab`: read a vocabulary file (`token<TAB>id` lines, or one token a line).
* `BasicTokenizer`: clean the text, isolate CJK characters, split on whitespace,
  lower-case and strip accents, split off punctuation.
* `WordpieceTokenizer`: greedy longest-match-first sub-word split (`##` marks a continuation).
* `FullTokenizer`: Basic then Wordpiece, plus token <-> id conversion. This is what the
  readers use; it gives the same ids as BERT's uncased/cased tokenizer.
* `CharTokenizer`: lower-case, split on " " only, then Wordpiece.
* `SentencepieceTokenizer`: pieces from a sentencepiece model, ids from a vocab or the model.
* `tokenize_chinese_chars`: the MRC-evaluation splitter (each CJK character and each
  whitespace character its own element).
* `make_tokenizer`: the `--tokenizer` flag value -> a tokenizer instance.

Bad vocabulary / model files raise `utils.errors.DataError` naming the file (and the line);
a bad `--tokenizer` choice raises `utils.errors.UsageError`.
"""
import collections
import os
import unicodedata

from utils.errors import DataError, UsageError, where

UNK_TOKEN = "[UNK]"

TOKENIZER_CHOICES = ("FullTokenizer", "CharTokenizer", "SentencepieceTokenizer")


# --------------------------------------------------------------------------------------------
# str / bytes helpers
# --------------------------------------------------------------------------------------------

def convert_to_unicode(text):
    """Return `text` as str: str is returned as is, bytes are decoded as UTF-8 (invalid
    bytes dropped, as 2019 did). Anything else raises ValueError."""
    if isinstance(text, str):
        return text
    if isinstance(text, (bytes, bytearray)):
        return bytes(text).decode("utf-8", "ignore")
    raise ValueError("expected str or bytes, got %s" % type(text).__name__)


def printable_text(text):
    """Text fit for print/logging; on Python 3 this is the same as `convert_to_unicode`."""
    return convert_to_unicode(text)


# --------------------------------------------------------------------------------------------
# vocabulary
# --------------------------------------------------------------------------------------------

def load_vocab(path):
    """Read a vocabulary file and return an OrderedDict token -> id, in file order.

    Two layouts are accepted, line by line (each line is stripped, then split on TAB):
      * `token<TAB>id`  -> the given id (the Chinese ERNIE `vocab.txt`);
      * `token`         -> the 0-based line number is the id (BERT's `vocab.txt`);
      * more than two fields -> reading stops there (as in 2019).
    Blank lines carry no token (their line number is still counted).

    Raises DataError naming the file (and line) if the file is missing or unreadable, a
    line is not UTF-8, an id is not an integer, a token appears twice (2019 silently let
    the later line win, shifting ids), an id is negative or given to two tokens (they
    would index no row, or share one), or no token was read at all.
    """
    path = str(path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise DataError("%s: vocabulary file not found" % where(path)) from None
    except OSError as e:
        raise DataError("%s: cannot read vocabulary file: %s"
                        % (where(path), e.strerror or e)) from None

    if raw.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte-order mark is not part of the token
        raw = raw[3:]

    vocab = collections.OrderedDict()
    first_seen = {}
    id_seen = {}    # id -> (token, line): two tokens with one id would share an embedding
    # bytes.splitlines breaks on \n, \r\n and \r only: the same lines text-mode reading gives.
    for number, raw_line in enumerate(raw.splitlines()):
        line_no = number + 1
        try:
            line = raw_line.decode("utf-8")
        except UnicodeDecodeError as e:
            raise DataError("%s: not valid UTF-8 (byte %d of the line)"
                            % (where(path, line_no), e.start + 1)) from None
        fields = line.strip().split("\t")
        if len(fields) > 2:
            break
        token = fields[0].strip()
        if not token and len(fields) == 1:
            continue
        if len(fields) == 2:
            try:
                index = int(fields[1])
            except ValueError:
                raise DataError("%s: id %r of token %r is not an integer"
                                % (where(path, line_no), fields[1], token)) from None
        else:
            index = number
        if token in vocab:
            raise DataError("%s: token %r appears again (first at line %d)"
                            % (where(path, line_no), token, first_seen[token]))
        if index < 0:
            raise DataError("%s: id %d of token %r is negative (ids index the embedding "
                            "rows, from 0)" % (where(path, line_no), index, token))
        if index in id_seen:
            other, other_line = id_seen[index]
            raise DataError("%s: id %d of token %r is already the id of %r (line %d)"
                            % (where(path, line_no), index, token, other, other_line))
        vocab[token] = index
        first_seen[token] = line_no
        id_seen[index] = (token, line_no)

    if not vocab:
        raise DataError("%s: vocabulary file is empty" % where(path))
    return vocab


def _invert(vocab):
    """id -> token for a token -> id map."""
    return {index: token for token, index in vocab.items()}


def _whitespace_split(text):
    """Strip `text` and split it on any run of whitespace; "" gives []."""
    text = text.strip()
    return text.split() if text else []


# --------------------------------------------------------------------------------------------
# character classes (the BERT definitions)
# --------------------------------------------------------------------------------------------

# CJK Unified Ideographs and their extensions plus the compatibility blocks. Hangul, kana
# and CJK punctuation are deliberately NOT in here: they go through the normal path.
_CJK_RANGES = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)

# ASCII characters that are neither letters, digits nor space: "!" .. "/", ":" .. "@",
# "[" .. "`", "{" .. "~". BERT counts them all as punctuation (e.g. "$", "^", "`").
_ASCII_PUNCT = frozenset(
    chr(c) for lo, hi in ((33, 47), (58, 64), (91, 96), (123, 126)) for c in range(lo, hi + 1))


def _is_cjk(char):
    """True for a CJK ideograph (one of `_CJK_RANGES`)."""
    cp = ord(char)
    return any(lo <= cp <= hi for lo, hi in _CJK_RANGES)


def _is_whitespace(char):
    """Space, tab, newline, carriage return, or any Unicode space separator (Zs)."""
    return char in " \t\n\r" or unicodedata.category(char) == "Zs"


def _is_control(char):
    """A control (Cc) or format (Cf) character, except tab/newline/CR (those are whitespace)."""
    if char in "\t\n\r":
        return False
    return unicodedata.category(char) in ("Cc", "Cf")


def _is_punctuation(char):
    """ASCII non-alphanumeric symbols, or any Unicode punctuation category (P*).

    Symbols outside ASCII (emoji, currency signs, math: categories S*) are NOT punctuation,
    so they stay glued to the neighbouring letters.
    """
    return char in _ASCII_PUNCT or unicodedata.category(char).startswith("P")


# --------------------------------------------------------------------------------------------
# BasicTokenizer
# --------------------------------------------------------------------------------------------

class BasicTokenizer(object):
    """Split raw text into words and punctuation (no vocabulary involved).

    `tokenize(text)` takes str (or UTF-8 bytes) and returns a list of str:
      1. drop NUL, U+FFFD and control/format characters, turn whitespace into " ";
      2. put spaces around every CJK ideograph;
      3. split on whitespace;
      4. if `do_lower_case`: lower-case, decompose (NFD) and drop non-spacing marks (Mn);
      5. split every punctuation character off as its own token.
    """

    def __init__(self, do_lower_case=True):
        self.do_lower_case = do_lower_case

    def tokenize(self, text):
        text = convert_to_unicode(text)
        text = self._clean(text)
        text = self._space_out_cjk(text)
        tokens = []
        for word in _whitespace_split(text):
            if self.do_lower_case:
                word = self._strip_accents(word.lower())
            tokens.extend(self._split_punctuation(word))
        # accent stripping can leave whitespace-only or empty pieces: split once more
        return _whitespace_split(" ".join(tokens))

    @staticmethod
    def _clean(text):
        """Remove NUL, U+FFFD and control characters; map every whitespace to " "."""
        out = []
        for char in text:
            if char == "\x00" or char == "\ufffd" or _is_control(char):
                continue
            out.append(" " if _is_whitespace(char) else char)
        return "".join(out)

    @staticmethod
    def _space_out_cjk(text):
        """Surround each CJK ideograph with spaces so it becomes a word of its own."""
        return "".join(" %s " % char if _is_cjk(char) else char for char in text)

    @staticmethod
    def _strip_accents(word):
        """NFD-decompose `word` and drop the non-spacing marks (category Mn): "é" -> "e"."""
        return "".join(char for char in unicodedata.normalize("NFD", word)
                       if unicodedata.category(char) != "Mn")

    @staticmethod
    def _split_punctuation(word):
        """"don't!" -> ["don", "'", "t", "!"]: each punctuation char alone, the runs between
        kept."""
        pieces = []
        run = []
        for char in word:
            if _is_punctuation(char):
                if run:
                    pieces.append("".join(run))
                    run = []
                pieces.append(char)
            else:
                run.append(char)
        if run:
            pieces.append("".join(run))
        return pieces


# --------------------------------------------------------------------------------------------
# WordpieceTokenizer
# --------------------------------------------------------------------------------------------

class WordpieceTokenizer(object):
    """Split words into vocabulary pieces, greedy longest match first.

    `tokenize(text)` takes text already split by BasicTokenizer (words separated by
    whitespace) and returns a list of vocabulary tokens: "unaffable" -> ["un", "##aff",
    "##able"]. A word that cannot be covered completely by vocabulary pieces, or that has
    more than `max_input_chars_per_word` characters, becomes a single `unk_token`.
    """

    def __init__(self, vocab, unk_token=UNK_TOKEN, max_input_chars_per_word=100):
        self.vocab = vocab
        self.unk_token = unk_token
        self.max_input_chars_per_word = max_input_chars_per_word

    def tokenize(self, text):
        text = convert_to_unicode(text)
        tokens = []
        for word in _whitespace_split(text):
            tokens.extend(self._split_word(word))
        return tokens

    def _split_word(self, word):
        """Pieces of one word, or [unk_token]."""
        if len(word) > self.max_input_chars_per_word:
            return [self.unk_token]
        pieces = []
        start = 0
        while start < len(word):
            prefix = "##" if start > 0 else ""
            # try the longest remaining substring first, shrinking from the right
            for end in range(len(word), start, -1):
                candidate = prefix + word[start:end]
                if candidate in self.vocab:
                    pieces.append(candidate)
                    start = end
                    break
            else:
                return [self.unk_token]
        return pieces


# --------------------------------------------------------------------------------------------
# full tokenizers
# --------------------------------------------------------------------------------------------

class _VocabMixin(object):
    """Token <-> id conversion shared by the tokenizers below.

    Needs `self.vocab` (token -> id), `self.inv_vocab` (id -> token), `self.unk_token` and
    `self.vocab_file` (for error messages).
    """

    def convert_tokens_to_ids(self, tokens):
        """List of tokens -> list of ints; a token missing from the vocab gets the unk id."""
        vocab = self.vocab
        unk_id = None
        ids = []
        for token in tokens:
            index = vocab.get(token)
            if index is None:
                if unk_id is None:
                    unk_id = self._unk_id()
                index = unk_id
            ids.append(index)
        return ids

    def convert_ids_to_tokens(self, ids):
        """List of ints -> list of tokens; an id missing from the vocab raises KeyError."""
        return [self.inv_vocab[int(index)] for index in ids]

    def _unk_id(self):
        if self.unk_token not in self.vocab:
            raise DataError("%s: has no %s token, cannot map unknown tokens"
                            % (where(self.vocab_file), self.unk_token))
        return self.vocab[self.unk_token]


class FullTokenizer(_VocabMixin):
    """BERT's tokenizer: BasicTokenizer then WordpieceTokenizer, over `vocab_file`.

    Attributes: `vocab` (OrderedDict token -> id), `inv_vocab` (id -> token).
    `tokenize(text)` -> list of vocabulary tokens ("[UNK]" for what cannot be covered).
    """

    def __init__(self, vocab_file, do_lower_case=True):
        self.vocab_file = str(vocab_file)
        self.vocab = load_vocab(vocab_file)
        self.inv_vocab = _invert(self.vocab)
        self.unk_token = UNK_TOKEN
        self.do_lower_case = do_lower_case
        self.basic_tokenizer = BasicTokenizer(do_lower_case=do_lower_case)
        self.wordpiece_tokenizer = WordpieceTokenizer(vocab=self.vocab, unk_token=UNK_TOKEN)

    def tokenize(self, text):
        tokens = []
        for word in self.basic_tokenizer.tokenize(text):
            tokens.extend(self.wordpiece_tokenizer.tokenize(word))
        return tokens


class CharTokenizer(_VocabMixin):
    """Lower-case, split on single " " only (no CJK or punctuation splitting), Wordpiece.

    Because nothing splits a run of characters, an unspaced string that Wordpiece cannot
    cover completely becomes ONE "[UNK]" (2019 issue #437). 2019 lower-cased whatever
    `do_lower_case` said; here `do_lower_case=False` keeps the case (the default is the same).
    """

    def __init__(self, vocab_file, do_lower_case=True):
        self.vocab_file = str(vocab_file)
        self.vocab = load_vocab(vocab_file)
        self.inv_vocab = _invert(self.vocab)
        self.unk_token = UNK_TOKEN
        self.do_lower_case = do_lower_case
        self.wordpiece_tokenizer = WordpieceTokenizer(vocab=self.vocab, unk_token=UNK_TOKEN)

    def tokenize(self, text):
        text = convert_to_unicode(text)
        if self.do_lower_case:
            text = text.lower()
        tokens = []
        for piece in text.split(" "):
            tokens.extend(self.wordpiece_tokenizer.tokenize(piece))
        return tokens


class SentencepieceTokenizer(_VocabMixin):
    """Pieces from a sentencepiece model; ids from `vocab_file` or from the model itself.

    `model_file`: a trained sentencepiece `.model`. `vocab_file` (optional): an ERNIE
    vocabulary (either layout); its ids are used and pieces not in it become "[UNK]".
    Without `vocab_file` the model's own pieces and ids are used and pieces the model does
    not know become its unknown piece (usually "<unk>", id `unk_id()`).
    `tokenize(text)` lower-cases first if `do_lower_case`, returns a list of tokens that are
    all in `vocab` (or the unknown token).
    """

    def __init__(self, model_file, vocab_file=None, do_lower_case=True):
        import sentencepiece

        self.model_file = str(model_file)
        if not os.path.isfile(self.model_file):
            raise DataError("%s: sentencepiece model not found" % where(self.model_file))
        self.sp_model = sentencepiece.SentencePieceProcessor()
        try:
            self.sp_model.Load(self.model_file)
        except (OSError, RuntimeError) as e:
            raise DataError("%s: not a sentencepiece model (%s)"
                            % (where(self.model_file), " ".join(str(e).split()))) from None
        self.do_lower_case = do_lower_case

        if vocab_file is not None:
            self.vocab_file = str(vocab_file)
            self.vocab = load_vocab(vocab_file)
            self.unk_token = UNK_TOKEN
        else:
            self.vocab_file = self.model_file
            self.vocab = collections.OrderedDict(
                (self.sp_model.IdToPiece(i), i) for i in range(self.sp_model.GetPieceSize()))
            unk_id = self.sp_model.unk_id()
            self.unk_token = self.sp_model.IdToPiece(unk_id) if unk_id >= 0 else UNK_TOKEN
        self.inv_vocab = _invert(self.vocab)

    def tokenize(self, text):
        text = convert_to_unicode(text)
        if self.do_lower_case:
            text = text.lower()
        return [piece if piece in self.vocab else self.unk_token
                for piece in self.sp_model.EncodeAsPieces(text)]


# --------------------------------------------------------------------------------------------
# MRC evaluation splitter
# --------------------------------------------------------------------------------------------

# the whitespace that breaks runs in `tokenize_chinese_chars` (the Aug-2019 definition)
_MRC_WHITESPACE = frozenset(" \t\r\n\u202f")


def tokenize_chinese_chars(text):
    """Split `text` (str) into a list of str for MRC answer comparison.

    Each CJK ideograph is its own element, each whitespace character (space, tab, CR, LF,
    U+202F) is its own element, and every maximal run of other characters is one element:
    "ERNIE 是 ok的" -> ["ERNIE", " ", "是", " ", "ok", "的"]. Joining the list gives `text` back.
    """
    out = []
    run = []
    for char in text:
        if _is_cjk(char) or char in _MRC_WHITESPACE:
            if run:
                out.append("".join(run))
                run = []
            out.append(char)
        else:
            run.append(char)
    if run:
        out.append("".join(run))
    return out


# --------------------------------------------------------------------------------------------
# --tokenizer flag
# --------------------------------------------------------------------------------------------

def make_tokenizer(name, vocab_path, do_lower_case=True, sp_model=None):
    """The `--tokenizer` flag value -> a tokenizer instance.

    `name`: one of TOKENIZER_CHOICES. `vocab_path`: the `--vocab_path` file (optional for
    SentencepieceTokenizer, which then uses the model's own ids). `sp_model`: the
    `--sentence_piece_model` file, required for SentencepieceTokenizer.
    Raises UsageError for an unknown name or a missing sp model, DataError for bad files.
    """
    if name == "FullTokenizer":
        return FullTokenizer(vocab_path, do_lower_case=do_lower_case)
    if name == "CharTokenizer":
        return CharTokenizer(vocab_path, do_lower_case=do_lower_case)
    if name == "SentencepieceTokenizer":
        if not sp_model:
            raise UsageError("--tokenizer SentencepieceTokenizer needs --sentence_piece_model")
        return SentencepieceTokenizer(sp_model, vocab_file=vocab_path, do_lower_case=do_lower_case)
    raise UsageError("--tokenizer %r is not one of: %s" % (name, ", ".join(TOKENIZER_CHOICES)))
