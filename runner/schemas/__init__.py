"""JSON Schemas of the tool's files: cell.schema.json (one cell result), run.json (run.schema.json) and the plan
(plan.schema.json: `plan --json`, and run.json's `plan`). The README's "Result files" section describes the fields.

validate() returns readable problems instead of raising: `report` shows them in its "problems" list, so a file
from another version or a hand edit is named, not a traceback.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

import jsonschema

KINDS = ("cell", "run", "plan")


@functools.cache
def _validator(kind: str) -> jsonschema.protocols.Validator:
    schema = json.loads(resources.files(__package__).joinpath(f"{kind}.schema.json").read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def check(kind: str, data: Any, source: str) -> tuple[list[str], set[str]]:
    """('<source>: <where>: <what>' per problem, at most 5, most relevant first; the top-level keys that are wrong,
    which a reader drops so the renderers never see a value of another shape)."""
    errors = sorted(_validator(kind).iter_errors(data), key=jsonschema.exceptions.relevance)
    out = []
    for e in errors[:5]:
        where = "/".join(str(p) for p in e.absolute_path) or "(top level)"
        out.append(f"{source}: {where}: {e.message} (schema: runner/schemas/{kind}.schema.json)")
    return out, {str(e.absolute_path[0]) for e in errors if e.absolute_path}


def validate(kind: str, data: Any, source: str) -> list[str]:
    """The problems of check(); [] when data fits the schema."""
    return check(kind, data, source)[0]
