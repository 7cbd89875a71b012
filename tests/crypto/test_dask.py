"""The same kernels on a Dask cluster (joblib's Dask backend) give the same model."""

from __future__ import annotations

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

from riskfed import VerticalLogisticRegression  # noqa: E402
from riskfed.crypto import paillier  # noqa: E402
from riskfed.errors import ConfigurationError  # noqa: E402


def _tables_on_workers() -> int:
    from riskfed.crypto import paillier as worker_paillier

    return len(worker_paillier._TABLE_CACHE)


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as c:
        yield c


def test_training_on_a_local_dask_cluster_equals_the_local_run(cluster, small_pilot):
    # Each party makes its own randomness here, so encryption too runs on the cluster.
    settings = dict(
        key_bits=512, allow_insecure_key=True, psi="keyed-hash", max_epochs=2, batch_size=512, randomness="own",
        random_state=0,  # both runs must draw the same split and batches
    )
    local = VerticalLogisticRegression(n_jobs=1, **settings).fit(
        small_pilot.bank, small_pilot.fintechs, id_column="customer_id", label_column="default"
    )
    on_dask = VerticalLogisticRegression(n_jobs=-1, dask_scheduler=cluster.scheduler_address, **settings).fit(
        small_pilot.bank, small_pilot.fintechs, id_column="customer_id", label_column="default"
    )
    for party, weights in local.coef_.items():
        np.testing.assert_array_equal(on_dask.coef_[party], weights)
    assert on_dask.intercept_ == local.intercept_
    # The encryption really ran on the cluster: its workers built the fixed-base table.
    with distributed.Client(cluster.scheduler_address) as client:
        assert any(client.run(_tables_on_workers).values())


def test_an_unreachable_scheduler_is_a_clear_error(small_pilot):
    model = VerticalLogisticRegression(
        key_bits=512, allow_insecure_key=True, psi="keyed-hash", dask_scheduler="tcp://127.0.0.1:1"
    )
    with pytest.raises(ConfigurationError, match="Cannot reach the Dask scheduler at 'tcp://127.0.0.1:1'"):
        model.fit(small_pilot.bank, small_pilot.fintechs, id_column="customer_id", label_column="default")
