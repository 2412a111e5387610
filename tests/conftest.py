"""Tiny random BERT models, built once per test session in a temp dir with a vocab the tests write."""
from __future__ import annotations

import logging
import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

CHARS = list("这是一则体育财经娱乐新闻科技军事教育汽车房产旅游国际农业电竞股票故事文化好差很东西不错次买的我他她它们你"
             "今天比赛球队赢了市场上涨公司发布手机电脑游戏玩家学校老师学生上文中指其是否相关论文软件类款篇"
             "严阵以待改朝换代不共戴天天南海北物归原主波谲云诡高视阔步一二三四五六七八九十")
WORDS = ["hello", "world", "good", "bad", "movie", "great", "terrible", "piece", "of", "work", "a", "the", "it", "is"]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list(dict.fromkeys(CHARS)) + WORDS + [",", ".", "!", "?", "，", "。"]


def build_model_dir(path, *, with_nsp: bool = True, seed: int = 0, max_position: int = 512,
                    hidden: int = 32, layers: int = 2, scale_nsp: float = 1.0,
                    initializer_range: float = 0.02) -> str:
    """Save a tiny random BERT (BertForPreTraining, or a head-less BertModel) plus its vocab."""
    from transformers import BertConfig, BertForPreTraining, BertModel, BertTokenizer

    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "vocab.txt"), "w", encoding="utf-8") as handle:
        handle.write("\n".join(VOCAB) + "\n")
    tokenizer = BertTokenizer.from_pretrained(str(path))
    config = BertConfig(vocab_size=len(VOCAB), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                        intermediate_size=hidden * 2, max_position_embeddings=max_position,
                        initializer_range=initializer_range)
    torch.manual_seed(seed)
    model = BertForPreTraining(config) if with_nsp else BertModel(config)
    if with_nsp and scale_nsp != 1.0:
        with torch.no_grad():  # make the NSP logits spread out, so argmaxes are decisive
            model.cls.seq_relationship.weight.mul_(scale_nsp)
    model.save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    return str(path)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> str:
    return build_model_dir(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def decisive_model_dir(tmp_path_factory) -> str:
    return build_model_dir(tmp_path_factory.mktemp("tiny-bert-decisive"), seed=1, scale_nsp=3.0,
                           initializer_range=0.2)


@pytest.fixture(scope="session")
def headless_model_dir(tmp_path_factory) -> str:
    return build_model_dir(tmp_path_factory.mktemp("tiny-bert-no-nsp"), with_nsp=False)


@pytest.fixture
def model_copy(model_dir, tmp_path) -> str:
    """A copy of the tiny model's folder that a test may change in place."""
    import shutil

    dest = tmp_path / "model"
    shutil.copytree(model_dir, dest)
    return str(dest)


@pytest.fixture(scope="session")
def clf(model_dir):
    from nspzero import NSPClassifier

    return NSPClassifier.from_pretrained(model_dir, device="cpu", max_length=64, batch_size=4)


@pytest.fixture(scope="session")
def reference(model_dir):
    """Unbatched reference: transformers' own tokenizer pair encoding + BertForNextSentencePrediction."""
    from transformers import BertForNextSentencePrediction, BertTokenizer

    tokenizer = BertTokenizer.from_pretrained(model_dir)
    model = BertForNextSentencePrediction.from_pretrained(model_dir).eval()

    def score(a: str, b: str, position_ids=None, max_length: int = 512) -> float:
        enc = tokenizer(a, b, return_tensors="pt", truncation="longest_first", max_length=max_length)
        kwargs = dict(enc)
        if position_ids is not None:
            kwargs["position_ids"] = torch.tensor([position_ids])
        with torch.no_grad():
            logits = model(**kwargs).logits
        return float(torch.softmax(logits, -1)[0, 0])

    score.tokenizer = tokenizer
    return score


def run_cli(argv, capsys):
    """Run the CLI in-process; returns (exit code, stdout, stderr)."""
    from nspzero.cli import main

    code = 0
    try:
        main(argv)
    except SystemExit as exc:
        code = exc.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(autouse=True)
def _restore_nspzero_logger():
    """cli.main() installs a stderr handler on the 'nspzero' logger and turns propagation off;
    undo that after each test so tests do not leak logging state into each other (caplog)."""
    logger = logging.getLogger("nspzero")
    saved = (list(logger.handlers), logger.propagate, logger.level)
    yield
    logger.handlers[:] = saved[0]
    logger.propagate, logger.level = saved[1], saved[2]


@pytest.fixture(scope="session", autouse=True)
def _user_cache_in_a_temp_dir(tmp_path_factory):
    """The user cache (ONNX exports for int8, file-hash memo) of this session: never the user's ~/.cache."""
    old = os.environ.get("NSPZERO_CACHE_DIR")
    os.environ["NSPZERO_CACHE_DIR"] = str(tmp_path_factory.mktemp("nspzero-cache"))
    yield
    if old is None:
        os.environ.pop("NSPZERO_CACHE_DIR", None)
    else:
        os.environ["NSPZERO_CACHE_DIR"] = old


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread_per_session():
    """Tiny models score fastest on one thread; on a busy 2-core machine two OpenMP threads make
    them many times slower. (Tests of thread counts set their own.)"""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Score on one thread for a module (restored afterwards): on a busy 2-core machine two
    OpenMP threads make the tiny model many times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def nspzero_caplog(caplog, monkeypatch):
    """caplog on the 'nspzero' logger, whatever an earlier cli.main() did to its handlers."""
    logger = logging.getLogger("nspzero")
    monkeypatch.setattr(logger, "propagate", True)
    monkeypatch.setattr(logger, "handlers", [])
    caplog.set_level(logging.WARNING, logger="nspzero")
    return caplog


def one_line(exc_info, *needles) -> str:
    """The message of a raised nspzero error: one line, holding every needle."""
    message = str(exc_info.value)
    assert "\n" not in message, message
    for needle in needles:
        assert needle in message, message
    return message


def bounded_call(fn, *args, timeout: float, **kwargs):
    """fn(*args, **kwargs) in a thread; the test fails (never hangs) past `timeout` seconds: every Ray
    run in the tests goes through it."""
    from concurrent.futures import ThreadPoolExecutor, TimeoutError as FutureTimeout

    pool = ThreadPoolExecutor(max_workers=1)
    future = pool.submit(fn, *args, **kwargs)
    try:
        return future.result(timeout=timeout)
    except FutureTimeout:
        pytest.fail(f"{getattr(fn, '__name__', fn)} did not finish within {timeout} s (a Ray job stalled?)")
    finally:
        pool.shutdown(wait=False)
