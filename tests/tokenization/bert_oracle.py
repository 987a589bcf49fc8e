"""The tokenizer oracle: transformers.BertTokenizer (imported by name by the parity tests)."""
import pytest


def bert_oracle(vocab_path, do_lower_case=True):
    """transformers.BertTokenizer over a one-token-a-line vocab (skips if transformers is
    absent)."""
    transformers = pytest.importorskip("transformers")
    return transformers.BertTokenizer(str(vocab_path), do_lower_case=do_lower_case,
                                      tokenize_chinese_chars=True)
