"""nspzero.tiny_model / `nspzero tiny-model`: a random tiny BERT folder that runs every command offline."""
import json

from conftest import run_cli as run


def test_tiny_model_folder_runs_classify_and_says_its_scores_mean_nothing(tmp_path, capsys):
    out = tmp_path / "tiny"
    code, _, err = run(["tiny-model", str(out)], capsys)
    assert code == 0 and "MEANINGLESS" in err
    assert {p.name for p in out.iterdir()} >= {"config.json", "model.safetensors", "vocab.txt", "NOTE.txt"}
    assert "RANDOM weights" in (out / "NOTE.txt").read_text(encoding="utf-8")
    code, stdout, err = run(["classify", "-m", str(out), "-l", "体育,财经", "皇马客场三比一取胜", "hello world"], capsys)
    assert code == 0, err
    rows = [json.loads(line) for line in stdout.splitlines()]
    assert [set(r["scores"]) for r in rows] == [{"体育", "财经"}] * 2
    assert "nspzero: warning:" in err and "RANDOM weights" in err and "meaningless" in err


def test_every_chinese_character_and_ascii_piece_is_in_the_vocab(tmp_path):
    from transformers import BertTokenizer

    from nspzero.tiny_model import write_tiny_model

    folder = write_tiny_model(tmp_path / "tiny", seed=1)
    tokenizer = BertTokenizer.from_pretrained(str(folder))
    tokens = tokenizer.tokenize("皇马客场三比一取胜 Hello, world! 龘")
    assert "[UNK]" not in tokens and tokens[:2] == ["皇", "马"] and "##l" in tokens


def test_an_existing_folder_is_never_overwritten(tmp_path, capsys):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    code, _, err = run(["tiny-model", str(tmp_path / "taken")], capsys)
    assert code == 2 and "nothing is overwritten" in err
    assert (tmp_path / "taken" / "keep.txt").read_text() == "mine"


def test_every_command_on_a_random_weights_model_says_so(tmp_path, capsys):
    """export-onnx (and loading its export), eval's results.json, results.md and report.html all name the
    random weights, as classify does; a trained folder's outputs say nothing of the kind (see below)."""
    import pytest

    pytest.importorskip("onnxruntime")
    from fewclue_fixture import write_fewclue

    tiny = tmp_path / "tiny"
    assert run(["tiny-model", str(tiny)], capsys)[0] == 0
    code, _, err = run(["export-onnx", str(tmp_path / "onnx"), "-m", str(tiny), "--no-int8"], capsys)
    assert code == 0 and "RANDOM weights" in err and "meaningless" in err, err
    code, _, err = run(["classify", "-m", str(tmp_path / "onnx"), "-l", "体育,财经", "皇马客场三比一取胜"], capsys)
    assert code == 0 and "RANDOM weights" in err, err
    data = write_fewclue(tmp_path / "data", n=4)
    out = tmp_path / "eval"
    code, _, err = run(["eval", "-m", str(tiny), "-d", str(data), "--tasks", "eprstmt", "-o", str(out),
                        "--max-length", "32", "--report"], capsys)
    assert code == 0, err
    assert json.loads((out / "results.json").read_text(encoding="utf-8"))["random_weights"] is True
    assert "RANDOM weights" in (out / "results.md").read_text(encoding="utf-8")
    assert 'data-testid="random-weights"' in (out / "report.html").read_text(encoding="utf-8")


def test_a_trained_folder_is_not_called_random(model_dir, tmp_path, capsys):
    from fewclue_fixture import write_fewclue

    data = write_fewclue(tmp_path / "data", n=4)
    out = tmp_path / "eval"
    code, _, err = run(["eval", "-m", model_dir, "-d", str(data), "--tasks", "eprstmt", "-o", str(out),
                        "--max-length", "32", "--report"], capsys)
    assert code == 0 and "RANDOM" not in err, err
    assert json.loads((out / "results.json").read_text(encoding="utf-8"))["random_weights"] is False
    assert "RANDOM" not in (out / "results.md").read_text(encoding="utf-8")
    assert "random-weights" not in (out / "report.html").read_text(encoding="utf-8")
