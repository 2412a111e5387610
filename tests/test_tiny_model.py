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
