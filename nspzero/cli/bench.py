"""`nspzero bench`: throughput of nspzero's paths vs a pad-to-max baseline, transformers' NLI pipeline and
(--peers) CTranslate2 and ONNX Runtime."""
from typing import Optional

import typer

from ..errors import UsageError
from .app import app


@app.command()
def bench(
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Benchmark this checkpoint instead of random weights."),
    config: Optional[str] = typer.Option(None, help="BERT config.json for the random model (default bert-base-chinese's shape)."),
    vocab: Optional[str] = typer.Option(None, help="vocab.txt for the random model (e.g. bert-base-chinese's)."),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", "-d", help="FewCLUE folder for real texts (else synthetic)."),
    tasks: str = typer.Option("tnews,iflytek", help="Label tasks whose texts and default prompts to use."),
    pairs: int = typer.Option(240, help="About this many pairs per task."),
    rounds: int = typer.Option(2, help="Interleaved timing rounds (the best round counts)."),
    max_length: int = typer.Option(128, help="Max tokens per pair."),
    batch_size: int = typer.Option(32, help="Pairs per forward pass."),
    dtypes: Optional[str] = typer.Option(None, help="Reduced precisions to compare, e.g. bfloat16,int8 (default: int8 "
                                                    "and the previous int8-dynamic, plus bfloat16 where the CPU has "
                                                    "native bf16)."),
    no_pipeline: bool = typer.Option(False, "--no-pipeline", help="Skip transformers' NLI pipeline baseline."),
    json_path: Optional[str] = typer.Option(None, "--json", help="Also write the figures as JSON here."),
    compile_model: bool = typer.Option(False, "--compile", help="Also time the torch.compile'd fp32 (and bf16) paths."),
    outliers: int = typer.Option(0, help="Give the random model this many large-magnitude hidden features, as trained "
                                         "BERTs have (reduced precision is harder on them)."),
    peers: bool = typer.Option(False, "--peers", help="Also run CTranslate2 (float32, int8_float32) and ONNX Runtime "
                                                      "(fp32, int8) on the same pairs, where installed "
                                                      "(pip install 'nspzero[peers]')."),
    shape: Optional[str] = typer.Option(None, help="Cost of a model size instead: base, large or 1.3B (random weights): "
                                                   "weights in memory, pairs/s (at most 32 pairs per dtype) and hours per FewCLUE "
                                                   "pass per dtype."),
) -> None:
    """Throughput of nspzero's paths vs a pad-to-max baseline and transformers' NLI pipeline, side by side."""
    if shape is not None:
        from ..bench_shapes import SHAPE_DTYPES, format_shape_table, measure_shape

        rows = measure_shape(shape, [d.strip() for d in dtypes.split(",")] if dtypes else SHAPE_DTYPES,
                             pairs=min(pairs, 32), max_length=max_length, batch_size=batch_size,
                             log=lambda m: typer.echo(m, err=True))
        typer.echo(format_shape_table(rows))
        return
    from ..bench import check_inputs, format_table, run_benchmark, save_json

    if pairs < 1 or rounds < 1:
        raise UsageError("--pairs and --rounds must be positive")
    if outliers < 0 or (outliers and model):
        raise UsageError("--outliers takes a count of 0 or more, for the random model only (not with --model)")
    check_inputs(config, vocab, data_dir)
    summary = run_benchmark(model=model, config_path=config, vocab_path=vocab, data_dir=data_dir,
                            tasks=[t.strip() for t in tasks.split(",") if t.strip()], pairs_per_task=pairs,
                            rounds=rounds, max_length=max_length, batch_size=batch_size,
                            include_pipeline=not no_pipeline,
                            dtypes=[d.strip() for d in dtypes.split(",")] if dtypes else None,
                            log=lambda m: typer.echo(m, err=True), compile=compile_model, peers=peers,
                            outliers=outliers)
    typer.echo(format_table(summary))
    if json_path:
        save_json(summary, json_path)
