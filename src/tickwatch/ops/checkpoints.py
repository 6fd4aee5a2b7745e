"""Removal of stale stream checkpoints.

Each folder under DATA_DIR/checkpoints is one stream query's checkpoint (Spark writes its
offsets, commits and state there). A checkpoint is stale when nothing in it changed for
CHECKPOINT_RETENTION_HOURS; stale ones are left behind by old runs and queries and only take
disk. The live checkpoints (those a running stream job uses, `OpsContext.live_checkpoints`)
are never removed, however old: a quiet job over a closed market may not write for days, and
deleting its checkpoint would make it reprocess or skip data on its next batch.
"""

from __future__ import annotations

import logging
import shutil
from datetime import timedelta

from tickwatch.ops import probe
from tickwatch.ops.checks import OpsContext, Outcome, check, fail, ok

log = logging.getLogger(__name__)


@check("checkpoints", "quality", "remove stream checkpoints older than the retention (never live)")
def prune_checkpoints(ctx: OpsContext) -> Outcome:
    root = ctx.checkpoint_root
    retention = timedelta(hours=ctx.settings.checkpoint_retention_hours)
    live = {p.resolve() for p in ctx.live_checkpoints}
    removed: list[str] = []
    kept: list[str] = []
    errors: list[str] = []
    freed = 0
    for folder in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        newest = probe.newest_mtime([folder])
        if folder.resolve() in live or newest is None or ctx.now - newest <= retention:
            kept.append(folder.name)
            continue
        size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        try:
            shutil.rmtree(folder)
        except OSError as exc:
            errors.append(f"{folder.name}: {exc}")
            continue
        freed += size
        removed.append(folder.name)
        log.info("removed checkpoint %s (unchanged for %s)", folder, ctx.now - newest)
    figures = {"removed": removed, "kept": kept, "freed_bytes": freed, "root": str(root)}
    if errors:
        return fail(f"could not remove {len(errors)} checkpoint(s): {'; '.join(errors)}", **figures)
    hours = f"{ctx.settings.checkpoint_retention_hours:g} h"
    return ok(
        f"removed {len(removed)} checkpoint(s) older than {hours} ({freed / 1e6:.1f} MB), "
        f"kept {len(kept)}",
        **figures,
    )
