"""Every SQL example in the README and docs/ runs as written, on a database with images, a graph,
clusters, scores and an experiment (each example in a transaction that is rolled back)."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
import pytest

from ccvec import abtest, graph, neardup, scores
from ccvec.load import LoadOptions, load
from ccvec.models import registry

from .images import write_photos
from .tiny_model import build_tiny_model, tiny_spec

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SQL_BLOCK = re.compile(r"^( *)```sql\n(.*?)^\1```", re.S | re.M)


def sql_examples() -> list[tuple[str, str]]:
    found = []
    for doc in DOCUMENTS:
        for number, match in enumerate(SQL_BLOCK.finditer(doc.read_text()), 1):
            code = "\n".join(line.removeprefix(match.group(1)) for line in match.group(2).splitlines())
            found.append((f"{doc.name}#{number}", code))
    return found


EXAMPLES = sql_examples()


@pytest.fixture()
def populated(conn: psycopg.Connection, tmp_path: Path) -> psycopg.Connection:
    model = "tiny-docs"
    registry.add_model(conn, build_tiny_model(tmp_path / "m.onnx"), tiny_spec(model))
    write_photos(tmp_path / "p", ("chelsea", "coffee", "astronaut", "rocket", "camera", "horse"))
    load(str(tmp_path / "p"), LoadOptions(model=model, workers=0))
    neardup.dedup(conn, model=model)
    graph.build(conn, 3, model)
    graph.cluster(conn, 0.35)
    scores.refresh(conn)
    abtest.create(conn, "clusters-v1", 0.5, 0.2, "default")
    conn.execute("CREATE TABLE public.image (LIKE ccvec.image)")  # docs/catalog.md's existing catalog
    conn.commit()
    yield conn
    conn.rollback()
    conn.execute("DROP TABLE IF EXISTS public.image")
    conn.commit()


def test_docs_have_sql_examples() -> None:
    names = {name.split("#")[0] for name, _ in EXAMPLES}
    assert {"neardup.md", "graph.md", "catalog.md", "ab-testing.md", "report.md"} <= names


def test_every_sql_example_runs(populated: psycopg.Connection) -> None:
    conn, failed = populated, []
    for name, code in EXAMPLES:
        try:
            for statement in (s for s in code.split(";\n") if s.strip()):
                conn.execute(statement)
        except psycopg.Error as exc:
            failed.append(f"{name}: {str(exc).splitlines()[0]}")
        finally:
            conn.rollback()
    assert failed == []
