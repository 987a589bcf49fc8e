"""ernie_encoder.py says, in one notice line on stderr, how many inputs it cut to
--max_seq_len (2019 cut them silently); inputs that fit, exactly at the limit too, are not
counted."""
import pytest

from ernie_testkit import Env, encoder_argv, run_entry


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return Env(tmp_path_factory.mktemp("encoder_cut"))


def notices(env, tmp_path, name, content):
    """The notice lines of ernie_encoder.py at --max_seq_len 16 on a data set of `content`."""
    data = env.write(name, content)
    cwd = tmp_path / name
    cwd.mkdir()
    code, _, err = run_entry("ernie_encoder", encoder_argv(
        env, data_set=data, output_dir=tmp_path / (name + "_out")), cwd)
    assert code == 0, err[-2000:]
    assert "Traceback" not in err
    return [line for line in err.splitlines() if line.startswith("notice: ") and "cut" in line]


@pytest.mark.slow
def test_notice_counts_the_inputs_cut(env, tmp_path):
    # max_seq_len 16: 14 tokens of one text fit with [CLS] and [SEP]; 13 of a pair with three
    fit_single, long_single = "好的很质量差" * 2 + "好的", "好的很质量差" * 3
    fit_pair, long_pair = ("好的很质量差好", "坏的不这个手"), ("好的很质量差好", "坏的不这个手机")
    assert notices(env, tmp_path, "single.tsv", "text_a\n%s\n%s\n%s\n好\n" % (
        fit_single, long_single, long_single)) == [
        "notice: 2 of 4 inputs were longer than --max_seq_len 16 tokens ([CLS] and [SEP] "
        "included) and were cut to it"]
    assert notices(env, tmp_path, "pairs.tsv", "text_a\ttext_b\n%s\t%s\n%s\t%s\n" % (
        fit_pair + long_pair)) == [
        "notice: 1 of 2 inputs were longer than --max_seq_len 16 tokens ([CLS] and [SEP] "
        "included) and were cut to it"]
    assert notices(env, tmp_path, "fits.tsv", "text_a\n%s\n好\n" % fit_single) == []
