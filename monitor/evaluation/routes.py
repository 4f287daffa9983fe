"""``GET /v1/models/{name}/report``: an Evidently report of recent raw records vs the reference."""

from __future__ import annotations

import pandas as pd
from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from driftloop.contract import Variant
from driftloop.monitor.drift.frame import FeatureSpec
from driftloop.monitor.evaluation.report import evidently_html
from driftloop.monitor.profiles.baselines import BaselineCache
from driftloop.settings import Scope
from driftloop.store import RecordRow
from driftloop.store.reference import load_reference
from driftloop.store.registry import get_model
from driftloop.web.auth import require
from driftloop.web.state import MonitorState, get_state

__all__ = ["make_router"]


def make_router(baselines: BaselineCache) -> APIRouter:
    """The report route, bound to the component's baseline cache."""
    router = APIRouter(tags=["drift"])

    @router.get(
        "/v1/models/{name}/report",
        response_class=HTMLResponse,
        dependencies=[Depends(require(Scope.admin))],
        responses={
            200: {"content": {"text/html": {}}, "description": "Evidently data-drift report"},
            404: {"description": "Unknown model, no reference, or no records"},
        },
    )
    def report(
        name: str,
        rows: int | None = Query(None, gt=0, le=200_000, description="Recent records to include."),
        version: str | None = Query(None, max_length=200, description="Only this version."),
        variant: Variant | None = Query(None, description="Only this variant."),
        state: MonitorState = Depends(get_state),
    ) -> HTMLResponse:
        """Render Evidently's DataDriftPreset of the newest records against the reference."""
        limit = rows or state.settings.drift.report_rows
        with state.sessions() as session:
            model = get_model(session, name)
            baseline = baselines.get(session, model, version)  # the version's own, if any
            reference = load_reference(session, model, version)
            if baseline is None or reference is None:
                raise HTTPException(
                    status.HTTP_404_NOT_FOUND,
                    detail=f"model {name!r} has no usable reference dataset; "
                    "upload one with PUT /v1/models/{name}/reference",
                )
            query = select(RecordRow.inputs, RecordRow.outputs).where(
                RecordRow.model_id == model.id
            )
            if version is not None:
                query = query.where(RecordRow.version == version)
            if variant is not None:
                query = query.where(RecordRow.variant == variant.value)
            rows_ = session.execute(query.order_by(RecordRow.ts.desc()).limit(limit)).all()
        if not rows_:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, detail=f"model {name!r} has no matching records yet"
            )
        specs = list(baseline.specs)
        current = pd.DataFrame.from_records(
            [r.inputs for r in rows_], columns=[s.name for s in specs]
        )
        prediction = baseline.layout.prediction
        if (
            prediction is not None
            and prediction.name in reference.columns
            and prediction.name not in current.columns
        ):
            specs.append(FeatureSpec(prediction.name, prediction.kind))
            current[prediction.name] = [r.outputs.get(prediction.name) for r in rows_]
        for spec in specs:
            if spec.kind.value == "numerical":
                current[spec.name] = pd.to_numeric(current[spec.name], errors="coerce")
        # Columns no recent record carries cannot be compared (Evidently refuses them).
        specs = [s for s in specs if current[s.name].notna().any()]
        try:
            html = evidently_html(
                reference,
                current,
                specs,
                drifted_share=state.settings.drift.for_model(name).drifted_share,
            )
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            # Evidently refuses some data (an empty or mixed-type column) with these.
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                detail=f"cannot render the report for these records: {exc}",
            ) from exc
        return HTMLResponse(html)

    return router
