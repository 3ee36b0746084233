"""The README demo: the main job end to end against the configured Neo4j (by default the local
server, started here if needed): register data, build and version a collection, track a run,
and ask the graph about it in Cypher. Running it again finds the same content and reuses it."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

import lineage as ln
from graph import cookbook

_KEY = "demo/scrna"


def _batch(seed: int, n_obs: int = 60) -> Any:
    import anndata as ad
    from scipy import sparse

    rng = np.random.default_rng(seed)
    x = sparse.random(n_obs, 20, density=0.2, format="csr", random_state=seed, dtype=np.float32)
    obs = pd.DataFrame(
        {"cell_type": pd.Categorical(rng.choice(["B", "T", "NK"], n_obs)), "batch": f"b{seed}"},
        index=[f"cell{seed}_{i}" for i in range(n_obs)],
    )
    return ad.AnnData(X=x, obs=obs, var=pd.DataFrame(index=[f"gene{i}" for i in range(20)]))


def _train_a_few_batches(collection: ln.Collection) -> None:
    """Three shuffled batches from `collection.mapped()` through a torch DataLoader."""
    try:
        from torch.utils.data import DataLoader
    except ImportError:
        print(
            "   (skipping the DataLoader step: torch is not installed; "
            "`pip install -e '.[torch]'` adds it)"
        )
        return
    with collection.mapped(obs_keys=["cell_type"]) as dataset:
        loader = DataLoader(dataset, batch_size=32, shuffle=True)
        print(
            f"   mapped: {len(dataset)} cells x {dataset.n_vars} genes in {len(dataset.storages)} files; "
            f"cell types {list(dataset.encoders['cell_type'])}"
        )
        for step, batch in zip(range(3), loader):
            print(
                f"   batch {step}: X {tuple(batch['X'].shape)}, cell_type codes "
                f"{batch['cell_type'][:8].tolist()}"
            )


def run_demo() -> None:
    t0 = time.perf_counter()
    instance = ln.connect()
    print(f"1. connected to {instance.uri} ({instance.source}) in {time.perf_counter() - t0:.1f}s")
    print(
        f"   Neo4j {instance.server_version} {instance.server_edition}, schema v{instance.schema.version}"
    )
    print(f"   storage: {ln.settings.storage}")

    samples = pd.DataFrame(
        {"batch": ["b1", "b2"], "donor": ["d1", "d2"], "tissue": ["blood", "lung"]}
    )
    meta = ln.Artifact.from_dataframe(samples, key="demo/samples.parquet").save()
    batch1 = ln.Artifact.from_anndata(_batch(1), key="demo/batch1.h5ad").save()
    print(f"2. artifacts: {meta.key} ({meta.otype}, {meta.n_observations} rows, hash {meta.hash})")
    print(
        f"              {batch1.key} ({batch1.otype}, {batch1.n_observations} cells, {batch1.size} bytes)"
    )

    collection = ln.Collection([batch1], key=_KEY, meta=meta, description="demo batches").save()
    print(
        f"3. collection {collection.key} {collection.uid}: {collection.ordered_artifacts.count()} artifact(s)"
    )

    batch2 = ln.Artifact.from_anndata(_batch(2), key="demo/batch2.h5ad").save()
    latest = collection.append(batch2).save()
    print(
        f"4. append -> new version {latest.uid} (is_latest={latest.is_latest}); "
        f"the family has {latest.versions.count()} versions"
    )

    run = ln.track("demo-pipeline", params={"min_cells": 10})
    inputs = ln.Collection.get(key=_KEY, is_run_input=True)
    adata = inputs.load()  # one AnnData; obs["artifact_uid"] says which file each cell came from
    print(
        f"5. tracked run {run.uid} of {run.transform.key}: loaded {inputs.uid} as "
        f"{adata.n_obs} cells x {adata.n_vars} genes"
    )
    counts = adata.obs["artifact_uid"].value_counts().sort_index()
    for uid, n in counts.items():
        print(f"   {uid}: {n} cells")
    _train_a_few_batches(inputs)
    summary = ln.Artifact.from_dataframe(
        counts.rename_axis("artifact_uid").reset_index(name="cells"), key="demo/cell_counts.parquet"
    ).save()
    ln.finish()
    print(f"   wrote {summary.key} ({summary.uid})")

    print("6. Cypher: the version family and its memberships")
    print(ln.cypher(cookbook.VERSION_FAMILY, key=_KEY).to_string(index=False))
    print("   Cypher: what the run read and wrote")
    print(ln.cypher(cookbook.RUN_INPUTS_AND_OUTPUTS, run=run.uid).to_string(index=False))
    print("   Cypher: everything upstream of the summary table")
    print(ln.cypher(cookbook.UPSTREAM, uid=summary.uid).to_string(index=False))
    html = inputs.view_lineage()
    print(f"7. lineage of {inputs.key} {inputs.uid}: {html}")
    print(
        f"done in {time.perf_counter() - t0:.1f}s. Stop the local server with: python -m lineage server stop"
    )
