"""The drivers' engine calls for real, on docker and on podman (through its API socket): volumes and labels, image
names, a container's rlimits, and where each builder keeps a cache mount (BuildKit: a record in the engine; buildah:
a host directory). The engine-specific decisions themselves are unit-tested in tests/unit/test_drivers.py.
"""

from __future__ import annotations

import glob
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner import config as config_mod
from runner import images, paths
from runner.buildrun import cache_id, marker
from runner.drivers import DRIVERS, podman_ulimits
from runner.engine import LABEL_CELL, LABEL_MANAGED, LABEL_RUN, SdkDriver, forgetting_contexts
from runner.model import Arch, Engine

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=[Engine.DOCKER, Engine.PODMAN], ids=str)
def driver(request: pytest.FixtureRequest) -> Iterator[SdkDriver]:
    d = DRIVERS[request.param]()
    d.check()
    try:
        yield d
    finally:
        if d._client is not None:
            d._client.close()


@pytest.fixture
def run_labels(driver: SdkDriver) -> Iterator[dict[str, str]]:
    """Labels of a run of its own; whatever carries them is swept afterwards."""
    labels = {LABEL_MANAGED: "1", LABEL_RUN: f"it-drivers-{uuid.uuid4().hex[:8]}"}
    try:
        yield labels
    finally:
        driver.sweep({LABEL_RUN: labels[LABEL_RUN]})


@pytest.fixture
def cell_image(driver: SdkDriver) -> images.CellImage:
    """Debian 12's cell image on this engine (cached by the runner; built once if not)."""
    distro = config_mod.load(ROOT / "matrix.toml").distros["debian-12"]
    return images.provision(driver, distro, Arch.host(), paths.images_dir(), emulated=False)


def test_a_volume_carries_its_labels_and_goes(driver: SdkDriver, run_labels: dict[str, str]) -> None:
    name = driver.create_volume(run_labels)
    mine = [lab for lab in driver.labelled([LABEL_RUN]) if lab.get(LABEL_RUN) == run_labels[LABEL_RUN]]
    assert len(mine) == 1 and run_labels.items() <= mine[0].items()
    driver.remove_volume(name)
    assert not [lab for lab in driver.labelled([LABEL_RUN]) if lab.get(LABEL_RUN) == run_labels[LABEL_RUN]]
    driver.remove_volume(name)  # gone already: not an error


def test_image_names(driver: SdkDriver, run_labels: dict[str, str], cell_image: images.CellImage) -> None:
    # A name given through the API (podman's compat API files it under docker.io/, its builds under localhost/:
    # local_ref is for the latter) is found again by the same name.
    tag = f"gcm-it-drivers/{run_labels[LABEL_RUN]}:x"
    driver.tag_image(cell_image.image_id, tag)
    try:
        attrs = driver.image_attrs(tag)
        assert attrs is not None and attrs["Id"] == cell_image.image_id
        assert cell_image.image_id in driver.image_ids("gcm-it-drivers/*")
    finally:
        driver.untag(tag)
    assert driver.image_attrs(tag) is None
    assert driver.image_attrs(cell_image.image_id) is not None, "untag keeps the image its other names hold"
    assert driver.remove_image(tag) is False, "nothing left to remove"


def test_a_container_is_labelled_has_no_network_and_podman_s_gets_our_rlimits(
        driver: SdkDriver, run_labels: dict[str, str], cell_image: images.CellImage) -> None:
    # No network: no route at all (/proc/net/route has only its header), and no interface but loopback that carries
    # one; a host's fallback tunnels (tunl0, sit0, …) may appear in any new namespace, never routed.
    with driver.container(image=cell_image.tag, command=["sh", "-c", "ulimit -n; ulimit -Hn; "
                                                         "tail -n +2 /proc/net/route | wc -l; echo end; sleep 30"],
                          mounts=[],
                          env={}, labels=run_labels, platform=Arch.host()) as c:
        running = [lab for lab in driver.running_labels(LABEL_RUN) if lab.get(LABEL_RUN) == run_labels[LABEL_RUN]]
        assert len(running) == 1 and run_labels.items() <= running[0].items()  # with the image's own labels
        for _ in range(100):
            out = driver.logs(c).split()
            if out[-1:] == ["end"]:
                break
            time.sleep(0.1)
    assert out[2:] == ["0", "end"], f"a cell container has no route (network mode none): {out[2:-1]} routes"
    if driver.engine is Engine.PODMAN:
        nofile = {u["Name"]: (u["Soft"], u["Hard"]) for u in podman_ulimits()}["nofile"]
        assert (int(out[0]), int(out[1])) == nofile, "podman starts containers with the limits we ask for"


def test_each_builder_keeps_a_cache_mount_where_its_driver_finds_it(driver: SdkDriver, run_labels: dict[str, str],
                                                                    cell_image: images.CellImage,
                                                                    tmp_path: Path) -> None:
    cid = cache_id(run_labels[LABEL_RUN], "it-drivers")
    mount = f"{cid}-gocache"
    (tmp_path / "Dockerfile").write_text(f"FROM {driver.local_ref(cell_image.tag)}\n"
                                         f"RUN --mount=type=cache,id={mount},target=/c {marker(cid)}; touch /c/x\n")
    tag = f"gcm-it-drivers/{run_labels[LABEL_RUN]}:build"
    proc = driver.build(context=str(tmp_path), dockerfile=str(tmp_path / "Dockerfile"), tag=tag,
                        platform=Arch.host(), labels=run_labels, build_args={}, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    records = [r for r in driver.build_records(("exec.cachemount",)) if marker(cid) in r.description]
    where = driver.cache_mount_dir(mount)
    try:
        if driver.engine is Engine.DOCKER:  # BuildKit: a record in the engine, no host directory of ours
            assert records and where is None
            driver.prune_cell_builds(marker=marker(cid), labels={LABEL_CELL: "it-drivers"})
            assert not [r for r in driver.build_records(("exec.cachemount",)) if marker(cid) in r.description]
        else:  # buildah: no engine record, a directory under $TMPDIR/buildah-cache-<uid>
            assert not records and where is not None and os.path.isfile(os.path.join(where, mount, "x"))
    finally:
        driver.remove_build_records([r.id for r in driver.build_records() if marker(cid) in r.description])
        if where:
            for d in glob.glob(os.path.join(where, f"{cid}-*")):
                shutil.rmtree(d, ignore_errors=True)
        driver.remove_image(driver.local_ref(tag))


def test_a_from_scratch_image_has_no_layers_carries_the_labels_and_goes(driver: SdkDriver,
                                                                        run_labels: dict[str, str]) -> None:
    tag = f"gcm-scratch/it-drivers:{run_labels[LABEL_RUN]}"
    image_id = driver.scratch_image(tag, run_labels)
    attrs = driver.image_attrs(image_id)
    assert attrs is not None
    assert not (attrs.get("RootFS") or {}).get("Layers"), "FROM scratch and a LABEL: nothing in the root"
    assert (attrs.get("Config") or {}).get("Labels", {}).get(LABEL_RUN) == run_labels[LABEL_RUN]
    assert driver.remove_image(image_id) and driver.image_attrs(image_id) is None


def test_a_build_s_context_copies_go_and_its_steps_stay_cached(driver: SdkDriver, run_labels: dict[str, str],
                                                               cell_image: images.CellImage, tmp_path: Path) -> None:
    """BuildKit keeps each build's context as a record of its own and never drops it; forgetting_contexts removes
    the ones made during its builds, and a COPY or RUN cached before is still cached after (content keys).
    Another worker's build may run meanwhile: the records its window removes are gone either way, and one still in
    use is left by both."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text(run_labels[LABEL_RUN])
    (tmp_path / "Dockerfile").write_text(f"FROM {driver.local_ref(cell_image.tag)}\nCOPY src /src\n"
                                         "RUN --mount=type=bind,source=src,target=/m cat /m/a.txt > /out\n")
    tag = f"gcm-it-drivers/{run_labels[LABEL_RUN]}:context"
    made: list[set[str]] = []
    try:
        logs = []
        for _ in range(2):
            before = driver.context_records()
            with forgetting_contexts(driver):
                proc = driver.build(context=str(tmp_path), dockerfile=str(tmp_path / "Dockerfile"), tag=tag,
                                    platform=Arch.host(), labels=run_labels, build_args={}, timeout=300)
                made.append(driver.context_records() - before)
            assert proc.returncode == 0, proc.stderr[-2000:]
            logs.append(proc.stdout + proc.stderr)
    finally:
        driver.remove_image(driver.local_ref(tag))
    if driver.engine is Engine.DOCKER:
        assert all(made), f"each build made context records: {made}"
        rows = driver.client.df().get("BuildCache") or []
        left = [r["ID"] for r in rows if any(r["ID"] in m for m in made) and not r.get("InUse")]
        assert not left, f"a build's context records outlived its window: {left}"
        assert "RUN --mount=type=bind" in logs[1], logs[1][-2000:]
        assert "CACHED" in logs[1].split("RUN --mount=type=bind", 1)[1], logs[1][-2000:]
    else:  # buildah keeps no records of a build's context
        assert made == [set(), set()] and driver.context_records() == set()
