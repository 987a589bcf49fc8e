"""--is_classify and --is_regression: --is_regression true alone asks for a regression (the
classification default yields to it), in run_classifier.py and predict_classifier.py alike;
both true, or both false, is refused in one line."""
import pytest

from ernie_testkit import (
    Env,
    add_classifier_head,
    check_failure,
    predict_classifier_argv,
    run_classifier_argv,
    run_entry,
)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    e = Env(tmp_path_factory.mktemp("heads_flags"))
    e.regr_train = e.write("regr_train.tsv", "label\ttext_a\n0.5\t好的很\n-1.25\t质量差\n")
    e.regr_params = e.params_copy("params_reg1", add_classifier_head(1))
    return e


def run(name, argv, cwd):
    cwd.mkdir(parents=True, exist_ok=True)
    return run_entry(name, argv, cwd)


def config_value(stdout, name):
    """The value print_arguments printed for `name`."""
    return next(line.split(": ", 1)[1] for line in stdout.splitlines()
                if line.startswith(name + ": "))


@pytest.mark.slow
def test_run_classifier_regression_without_is_classify(env, tmp_path):
    code, out, err = run("run_classifier", run_classifier_argv(
        env, is_regression="true", num_labels="1", train_set=env.regr_train, skip_steps="1",
        checkpoints=tmp_path / "ckpt"), tmp_path / "cwd")
    assert code == 0, err[-2000:]
    assert config_value(out, "is_classify") == "False"
    # the regression head's log line: a loss and no accuracy
    assert "ave loss: " in out and "ave acc" not in out, out[-2000:]


@pytest.mark.parametrize("given", [dict(is_classify="true", is_regression="true"),
                                   dict(is_classify="false")])
@pytest.mark.parametrize("entry", ["run_classifier", "predict_classifier"])
def test_both_heads_or_none_refused(env, tmp_path, entry, given):
    make = run_classifier_argv if entry == "run_classifier" else predict_classifier_argv
    code, _, err = run(entry, make(env, **given), tmp_path)
    check_failure(code, err, 2, ["exactly one of --is_classify and --is_regression"], tmp_path)


@pytest.mark.slow
def test_predict_classifier_takes_is_classify_as_run_classifier_does(env, tmp_path):
    outputs = {}
    for name, given in (("regression_only", dict(is_regression="true")),
                        ("both_flags", dict(is_classify="false", is_regression="true"))):
        out_file = tmp_path / (name + ".tsv")
        code, out, err = run("predict_classifier", predict_classifier_argv(
            env, init_checkpoint=env.regr_params, num_labels="1", output_file=out_file,
            save_inference_model_path=tmp_path / "inference", **given), tmp_path / name)
        assert code == 0, err[-2000:]
        assert config_value(out, "is_classify") == "False"
        outputs[name] = out_file.read_text()
    # one score and the score as the label, per input; the same whichever flags said so
    assert outputs["both_flags"] == outputs["regression_only"]
    assert [len(line.split("\t")) for line in outputs["both_flags"].splitlines()] == [2, 2]

    # the exported model folder is a regression folder: --is_classify true contradicts it
    folder = next((tmp_path / "inference").iterdir())
    code, _, err = run("predict_classifier", predict_classifier_argv(
        env, init_checkpoint=folder, is_classify="true"), tmp_path / "folder_contradicted")
    check_failure(code, err, 2, ["--is_classify true contradicts the model folder"],
                  tmp_path / "folder_contradicted")
    code, _, err = run("predict_classifier", predict_classifier_argv(
        env, init_checkpoint=folder, is_classify="false",
        output_file=tmp_path / "from_folder.tsv"), tmp_path / "from_folder")
    assert code == 0, err[-2000:]
    assert (tmp_path / "from_folder.tsv").read_text() == outputs["both_flags"]
