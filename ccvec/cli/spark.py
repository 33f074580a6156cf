"""`ccvec spark features`: the feature job on Apache Spark (optional extra `ccvec[spark]`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ccvec.cli.common import app, console

spark_app = typer.Typer(help="Feature extraction on an Apache Spark cluster (pip install 'ccvec[spark]').")
app.add_typer(spark_app, name="spark")


@spark_app.command("features")
def features_command(
    source: Annotated[
        str,
        typer.Argument(
            help="A folder, a CSV/JSONL manifest, or a Parquet/TSV catalog dump (Openverse columns)."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Output folder (a features dataset; appended to).")],
    master: Annotated[
        str | None,
        typer.Option(help="Spark master URL (spark://host:7077, yarn, local[4]). Default: local[*]."),
    ] = None,
    partitions: Annotated[
        int | None,
        typer.Option(min=1, help="Spark partitions for the image work. Default: the cluster's cores."),
    ] = None,
    onnx: Annotated[
        Path | None,
        typer.Option(help="A non-default ONNX model file (with --spec). Default: EfficientNet-Lite0."),
    ] = None,
    spec: Annotated[Path | None, typer.Option(help="The model spec JSON for --onnx.")] = None,
) -> None:
    """pHash + embedding of every image of SOURCE not yet in OUT, on Spark; load with `ccvec load OUT`."""
    from ccvec import spark
    from ccvec.errors import CcvecError, counted

    if (onnx is None) != (spec is None):
        raise CcvecError("--onnx and --spec go together")
    model = spark.model_from_files(onnx, spec) if onnx and spec else None
    summary = spark.run_features(spark.FeatureJob(source, out, master, partitions, model))
    not_images = f", {counted(summary.not_images, 'file')} not images" if summary.not_images else ""
    console.print(
        f"features {summary.features:,}, errors {summary.errors:,}, skipped {summary.skipped:,} "
        f"(already in {out}){not_images} of {summary.candidates:,} in {summary.seconds:.1f}s; "
        f"load with: ccvec load {out}"
    )
    if summary.warnings:
        console.print(
            f"{counted(summary.warnings, 'row')} will be stored with changes (text cut, invalid characters "
            "replaced): listed by `ccvec errors` after the load"
        )
