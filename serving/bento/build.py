"""``driftloop bento build``: a fitted scikit-learn-compatible model -> a smoke-tested Bento.

Steps: load the model (joblib or pickle) and check it has ``predict``; read the reference data
(CSV or Parquet, with pyarrow) to learn the feature columns and their types; save the model in
the BentoML model store; generate a record-style service (see :mod:`.template`); build the Bento
offline (no dependency locking, nothing downloaded) declaring the packages the service needs at
the versions the model was trained with (:mod:`.requirements`), so ``bentoml containerize`` or
a fresh virtualenv can run it; serve it on a free loopback port and check that it answers a
sample of the reference rows exactly as the model does in this process.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from driftloop.errors import ConfigurationError, DatasetError
from driftloop.extras import needs_extra
from driftloop.serving.bento.requirements import driftloop_wheel, model_requirements
from driftloop.serving.bento.smoke import smoke_test
from driftloop.serving.bento.template import FeatureSpec, render_service

__all__ = ["BentoBuild", "Progress", "build_bento", "read_reference"]

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``, called as each step of the build starts and ends."""

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[a-z0-9]([a-z0-9_.\-]{0,61}[a-z0-9])?$")


@dataclass
class BentoBuild:
    """What was built: tags, files and the smoke test's figures."""

    name: str
    bento_tag: str
    model_tag: str
    bento_path: str
    features: list[str]
    requirements: list[str] = field(default_factory=list)
    wheels: list[str] = field(default_factory=list)
    smoke: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-able view."""
        return dict(self.__dict__)


def _pyarrow_type(arrow_type: Any) -> str:
    import pyarrow.types as pt

    if pt.is_boolean(arrow_type):
        return "bool"
    if pt.is_integer(arrow_type):
        return "int"
    if pt.is_floating(arrow_type) or pt.is_decimal(arrow_type):
        return "float"
    return "str"


def read_reference(path: str | Path) -> tuple[list[FeatureSpec], list[dict[str, Any]]]:
    """Columns (name, type) and rows of a CSV or Parquet file (:class:`DatasetError` if bad)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    source = Path(path)
    if not source.is_file():
        raise DatasetError(f"reference data {str(source)!r} does not exist")
    try:
        if source.suffix.lower() in {".parquet", ".pq"}:
            table = pq.read_table(source)
        else:
            table = pacsv.read_csv(source)
    except (pa.ArrowException, OSError) as exc:
        raise DatasetError(f"cannot read reference data {str(source)!r}: {exc}") from exc
    if table.num_rows == 0:
        raise DatasetError(f"reference data {str(source)!r} has no rows")
    specs = [FeatureSpec(f.name, _pyarrow_type(f.type)) for f in table.schema]
    return specs, table.to_pylist()


def _load_model(path: str | Path) -> tuple[Any, dict[str, str]]:
    """The model and the versions it was pickled with, where the pickle records them."""
    import warnings

    with needs_extra("bento", "loading a model for `driftloop bento build`"):
        import joblib

    source = Path(path)
    if not source.is_file():
        raise ConfigurationError(f"model file {str(source)!r} does not exist")
    trained: dict[str, str] = {}
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = joblib.load(source)
    except Exception as exc:  # joblib/pickle raise anything from a foreign file
        raise ConfigurationError(f"cannot load model {str(source)!r}: {exc}") from exc
    for warning in caught:
        # scikit-learn stores its version in every estimator's pickle and warns on a mismatch:
        # the Bento must carry the version the model was trained with, not this one.
        original = getattr(warning.message, "original_sklearn_version", None)
        if original:
            trained["scikit-learn"] = str(original)
            log.warning(
                "model %s was trained with scikit-learn %s; the Bento pins that version",
                source,
                original,
            )
    if not callable(getattr(model, "predict", None)):
        raise ConfigurationError(
            f"model {str(source)!r} ({type(model).__name__}) has no predict() method"
        )
    return model, trained


def _features(
    model: Any, specs: list[FeatureSpec], label_column: str | None
) -> tuple[list[FeatureSpec], bool]:
    by_name = {s.name: s for s in specs}
    if label_column is not None and label_column not in by_name:
        raise DatasetError(f"label column {label_column!r} is not in the reference data")
    names_in = getattr(model, "feature_names_in_", None)
    if names_in is not None:
        missing = [str(n) for n in names_in if str(n) not in by_name]
        if missing:
            raise DatasetError(f"reference data lacks the model's features {missing}")
        return [by_name[str(n)] for n in names_in], True
    chosen = [s for s in specs if s.name != label_column]
    expected = getattr(model, "n_features_in_", None)
    if expected is not None and expected != len(chosen):
        raise DatasetError(
            f"the model expects {expected} features but the reference data has {len(chosen)} "
            f"columns {[s.name for s in chosen]}; name the label with --label-column"
        )
    return chosen, False


def build_bento(
    model_path: str | Path,
    reference: str | Path,
    name: str,
    *,
    label_column: str | None = None,
    capture: bool = False,
    smoke_rows: int = 20,
    smoke: bool = True,
    timeout: float = 120.0,
    wheel: str | Path | None = None,
    progress: Progress | None = None,
) -> BentoBuild:
    """Save the model, generate the service, build the Bento and smoke-test it.

    Uses the BentoML home of this process (``BENTOML_HOME``). ``wheel``: a Driftloop wheel to
    put in the Bento when ``capture`` is on (default: built from the source checkout when
    Driftloop runs from one; otherwise the Bento requires ``driftloop==<this version>`` from the
    package index). Raises :class:`ConfigurationError` / :class:`DatasetError` naming a bad
    input, ``RuntimeError`` when the built Bento does not answer like the model.
    """
    step = progress or (lambda _stage, _done, _total: None)
    if not _NAME.match(name):
        raise ConfigurationError(
            f"bento name {name!r} must be lowercase letters, digits, '-', '_' or '.'"
        )
    step("loading the model and the reference", 0, 1)
    model, trained = _load_model(model_path)
    specs, rows = read_reference(reference)
    features, frame_input = _features(model, specs, label_column)
    step("loading the model and the reference", 1, 1)
    started = time.perf_counter()
    packages = model_requirements(model, frame_input=frame_input, trained=trained)

    with needs_extra("bento", "`driftloop bento build`"):
        import bentoml
        import joblib

    step("saving the model in the BentoML store", 0, 1)
    with bentoml.models.create(
        name,
        labels={"driftloop": "bento-build"},
        metadata={"features": [f.name for f in features], "source": str(model_path)},
    ) as saved:
        joblib.dump(model, saved.path_of("model.pkl"))
    model_tag = str(saved.tag)
    step("saving the model in the BentoML store", 1, 1)

    workdir = Path(tempfile.mkdtemp(prefix=f"driftloop-bento-{name}-"))
    wheels: list[str] = []
    try:
        if capture:
            step("building the Driftloop wheel for capture", 0, 1)
            found = Path(wheel) if wheel is not None else driftloop_wheel(workdir / "wheels")
            if found is not None:
                if not found.is_file():
                    raise ConfigurationError(f"wheel {str(found)!r} does not exist")
                # BentoML 1.4 (bento v2) takes wheels as project files listed by relative path.
                (workdir / "wheels").mkdir(exist_ok=True)
                if found.parent != workdir / "wheels":
                    shutil.copy2(found, workdir / "wheels" / found.name)
                wheels.append(found.name)
                packages.append(f"./wheels/{found.name}")
            else:
                import driftloop

                packages.append(f"driftloop=={driftloop.__version__}")
            step("building the Driftloop wheel for capture", 1, 1)
        step("building the Bento", 0, 1)
        (workdir / "service.py").write_text(
            render_service(
                name=name,
                model_tag=model_tag,
                features=features,
                frame_input=frame_input,
                capture=capture,
            )
        )
        (workdir / "features.json").write_text(json.dumps([f.__dict__ for f in features]))
        # BentoML imports the build context's ``service`` module; a second build in the same
        # process would otherwise get the first one back from the module cache.
        sys.modules.pop("service", None)
        try:
            bento = bentoml.bentos.build(
                "service:Model",
                name=name,
                labels={"driftloop": "bento-build"},
                description=f"{name}: generated by driftloop bento build",
                include=["service.py", "features.json", *(f"wheels/{w}" for w in wheels)],
                models=[model_tag],
                python={"lock_packages": False, "packages": packages},
                build_ctx=str(workdir),
            )
        except (bentoml.exceptions.BentoMLException, ValueError, OSError) as exc:
            raise ConfigurationError(f"BentoML could not build {name!r}: {exc}") from exc
        if wheels:
            # The image BentoML generates installs env/python/requirements.txt from env/python
            # before it copies src/: the wheel must be found from there too.
            target = Path(bento.path) / "env" / "python" / "wheels"
            target.mkdir(parents=True, exist_ok=True)
            for wheel_name in wheels:
                shutil.copy2(workdir / "wheels" / wheel_name, target / wheel_name)
        step("building the Bento", 1, 1)
    finally:
        sys.modules.pop("service", None)
        shutil.rmtree(workdir, ignore_errors=True)
    result = BentoBuild(
        name=name,
        bento_tag=str(bento.tag),
        model_tag=model_tag,
        bento_path=str(bento.path),
        features=[f.name for f in features],
        requirements=packages,
        wheels=wheels,
    )
    result.smoke["build_seconds"] = round(time.perf_counter() - started, 2)
    if smoke:
        sample = [{f.name: row[f.name] for f in features} for row in rows[:smoke_rows]]
        result.smoke.update(
            smoke_test(result.bento_tag, model, sample, frame_input, timeout, progress=step)
        )
    return result
