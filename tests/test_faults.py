"""When the machine, a second terminal or a store gets in the way: a full disk, a closed pipe, a
console that is not UTF-8, a store that is not there, two searches at once, changed images, a
deleted MLflow experiment, a killed raylet, a signal to a served page. Each ends in one line
naming what and where, with what to do, and leaves nothing that blocks the next run.

A full disk is a tmpfs of a few MiB that the test mounts (tests/disks.py: as root, or under
`unshare -Urm`; skipped with the reason elsewhere) and fills. Real processes, a real Ray, real
MLflow stores and servers; every signal is sent at a moment the process announces (a console
line, a port that answers), so nothing waits on a fixed time.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from disks import fill, small_disk
from guards import HANG_GUARD_S, SERVER_S
from hold import hold_ray_workers, read_until, release_ray_workers
from PIL import Image

from vaetune import cli
from vaetune.results import SEARCH_FILE, STATUS, SUMMARY_FILE

BOUND_S = 60  # a hang guard for a refusal made before Ray starts (seconds here; MLflow retried for minutes)

SPACE = {
    "name": "f",
    "data": {"source": "builtin:sprites", "image_size": 16, "count": 64, "min_images": 16},
    "model": {"arch": "conv", "width": 4, "latent_dim": 2},
    "train": {"epochs": 2, "batch_size": 16, "num_threads": 1, "grid_size": 2,
              "beta": {"loguniform": [0.01, 1.0]}},
    "search": {"num_samples": 2, "max_concurrent": 1, "max_failures": 0},
}


def space_file(folder: Path, name: str = "f", **sections) -> Path:
    """SPACE named `name`, its cache in `folder`, each section updated by `sections`."""
    raw = copy.deepcopy(SPACE)
    raw["name"] = name
    raw["data"]["cache_dir"] = str(folder / "cache")
    for section, values in sections.items():
        raw.setdefault(section, {}).update(values)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def run_cli(argv: list[str]) -> int:
    try:
        return cli.main(argv)
    except SystemExit as exc:  # argparse's own exit
        return int(exc.code or 0)


def one_line(capsys, argv: list[str], code: int = 2) -> str:
    """Run `vaetune ARGV` here; its error must be one line (the last of stderr), exit `code`, quickly."""
    start = time.monotonic()
    got = run_cli(argv)
    took = time.monotonic() - start
    err = capsys.readouterr().err
    assert got == code, err[-3000:]
    assert "Traceback" not in err and "internal error" not in err, err[-3000:]
    assert took < BOUND_S, f"took {took:.0f} s"
    return err.strip().splitlines()[-1]


@pytest.fixture
def work(tmp_path, monkeypatch):
    """A fresh project folder as the working folder, vaetune's own caches and MLflow defaults."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VAETUNE_CACHE", str(tmp_path / "vaetune-cache"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


class Env:
    """`vaetune` as a user runs it, in `tmp`, with a Ray temp dir of its own; everything it started
    is killed afterwards (`close`: by that temp dir, which every Ray process of it names)."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.ray_tmp = tempfile.mkdtemp(prefix="vt", dir="/tmp")  # short: Ray's socket paths are limited
        self.env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
        self.env.update({"RAY_TMPDIR": self.ray_tmp, "PYTHONUNBUFFERED": "1", "VAETUNE_CACHE": str(tmp / "vc")})
        self.started: list[subprocess.Popen] = []

    def cmd(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "vaetune.cli", *args]

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(self.cmd(*args), cwd=self.tmp, env={**self.env, **env}, capture_output=True, text=True,
                              timeout=HANG_GUARD_S)

    def start(self, *args: str, **popen) -> subprocess.Popen:
        proc = subprocess.Popen(self.cmd(*args), cwd=self.tmp, env=self.env, text=True, start_new_session=True,
                                **popen)
        self.started.append(proc)
        return proc

    def close(self) -> None:
        """Each process started, with its group; then the Ray processes of the temp dir."""
        for proc in self.started:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        subprocess.run(["pkill", "-9", "-f", self.ray_tmp], check=False)
        shutil.rmtree(self.ray_tmp, ignore_errors=True)


@pytest.fixture
def env(tmp_path):
    with contextlib.closing(Env(tmp_path)) as e:
        yield e


def summary(folder: Path) -> pd.DataFrame:
    return pd.read_csv(folder / SUMMARY_FILE)


# ---------------------------------------------------------------------------------------------
# Where the output goes


def test_text_a_console_cannot_hold_is_written_as_the_nearest_it_can():
    from vaetune.streams import fit_encoding

    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="ascii", write_through=True)
    fit_encoding(stream)
    stream.write("#3 β=0.0033 · 2→3 épochs …")
    assert raw.getvalue() == b"#3 beta=0.0033 - 2->3 epochs ..."


@pytest.mark.slow
@pytest.mark.parametrize("command", ["spaces", "data inspect"])
def test_a_command_whose_reader_went_away_ends_quietly(tmp_path, command):
    """`vaetune spaces | head -1`: the pipe is closed before the command writes (head has exited),
    so its first write fails, as the later ones of a longer output do. Each gave a bug line
    (BrokenPipeError) and exit 1."""
    argv = command.split()
    if command == "data inspect":
        images = tmp_path / "images"
        images.mkdir()
        for i in range(16):  # data.min_images
            Image.new("RGB", (16, 16), (15 * i, 80, 40)).save(images / f"{i}.png")
        argv.append(str(images))
    read, write = os.pipe()
    os.close(read)
    proc = subprocess.run([sys.executable, "-m", "vaetune.cli", *argv], stdout=write, stderr=subprocess.PIPE,
                          text=True, timeout=HANG_GUARD_S, cwd=tmp_path,
                          env={**os.environ, "VAETUNE_CACHE": str(tmp_path / "vc")})
    os.close(write)
    assert proc.returncode == 128 + signal.SIGPIPE, proc.stderr  # what a shell reports for `yes | head`
    assert "error" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("encoding", ["ascii", "latin-1"])
def test_a_console_that_is_not_utf8_gets_what_it_can_hold(tmp_path, encoding):
    proc = subprocess.run([sys.executable, "-m", "vaetune.cli", "spaces"], capture_output=True, timeout=HANG_GUARD_S,
                          cwd=tmp_path, env={**os.environ, "PYTHONIOENCODING": encoding})
    assert proc.returncode == 0, proc.stderr.decode(encoding, "replace")
    text = proc.stdout.decode(encoding)  # every byte in the console's encoding
    assert "Pokemon" in text or "Pokémon" in text  # the shipped spaces' descriptions name it


# ---------------------------------------------------------------------------------------------
# A disk that fills up


def test_a_full_cache_folder_is_refused_before_decoding(work, capsys):
    """The decoded images (64 of 3x16x16: 48 KiB) cannot be cached on a disk with 8 KiB left."""
    with small_disk(work / "disk", "1m") as disk:
        fill(disk, leave=8 << 10)
        space = space_file(work, data={"cache_dir": str(disk / "cache")})
        line = one_line(capsys, ["search", str(space)])
    assert "data.cache_dir" in line and str(disk) in line and "48.0 KiB" in line and "free space" in line, line
    assert not (work / "results").exists()


def test_a_full_temporary_folder_is_refused_before_ray_starts(work, capsys, monkeypatch):
    """Ray keeps its sockets and logs under RAY_TMPDIR: a full one made its start time out."""
    short = Path(tempfile.mkdtemp(prefix="vt", dir="/tmp"))  # Ray's socket paths are limited
    try:
        with small_disk(short, "1m") as disk:
            fill(disk)
            monkeypatch.setenv("RAY_TMPDIR", str(disk))
            line = one_line(capsys, ["search", str(space_file(work))])
    finally:
        shutil.rmtree(short, ignore_errors=True)
    assert line.startswith(f"vaetune search: error: $RAY_TMPDIR: Ray's session files (sockets, logs) under {disk} "), line
    assert "free space there" in line
    assert not (work / "results").exists()


def test_storage_without_room_for_the_planned_checkpoints_is_refused(work, capsys):
    """Two trials keep two checkpoints each (their two epochs); each of at least 2,378 weights and
    twice as many optimiser moments: more than the 16 KiB left."""
    with small_disk(work / "disk", "1m") as disk:
        fill(disk, leave=16 << 10)
        space = space_file(work, search={"storage": str(disk / "results")})
        line = one_line(capsys, ["search", str(space)])
    assert line.startswith("vaetune search: error: search.storage: the checkpoints of 2 trials (2 each"), line
    assert str(disk) in line and "free space there" in line


def test_a_training_folder_without_room_is_refused(work, capsys):
    with small_disk(work / "disk", "1m") as disk:
        fill(disk, leave=16 << 10)
        line = one_line(capsys, ["train", str(space_file(work)), "--out", str(disk / "run")])
    assert "--out: the 2 checkpoints of this run" in line and str(disk) in line, line
    assert not (disk / "run").exists()


@pytest.mark.slow
def test_the_results_disk_filling_mid_search_is_one_line_and_the_search_resumes(env):
    """The disk of search.storage fills once the first trial has started: one line naming it, exit 2;
    once space is freed, --resume finishes the search, the trial the disk stopped included."""
    with small_disk(env.tmp / "disk", "8m") as disk:
        space = space_file(env.tmp, search={"storage": str(disk / "results")})
        driver = env.start("search", str(space), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert "started" in read_until(driver.stdout, "  started")
        held: set[int] = set()
        hold_ray_workers(env.ray_tmp, held)  # the trial trains no further until the disk is full
        filler = fill(disk)
        release_ray_workers(held)
        out = driver.stdout.read()
        err = driver.stderr.read()
        assert driver.wait(timeout=HANG_GUARD_S) == 2, out[-3000:] + err[-3000:]
        assert "Traceback" not in out + err and "internal error" not in err, out[-3000:] + err[-3000:]
        last = err.strip().splitlines()[-1]
        assert re.fullmatch(rf"vaetune search: error: no space left on device: search\.storage "
                            rf"{re.escape(str(disk / 'results' / 'f'))} \(\d+ (B|KiB) free\); the search stopped: free "
                            rf"space there, then continue with: vaetune search {re.escape(str(space))} --resume",
                            last), last
        filler.unlink()
        resumed = env.run("search", str(space), "--resume")
        assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
        rows = summary(disk / "results" / "f")
        assert len(rows) == 2 and set(rows[STATUS]) <= {"completed", "stopped"}, rows[[STATUS, "error"]]


def _blocked_pipe() -> tuple[int, int]:
    """A pipe whose buffer is full: a process writing to it waits until the test reads."""
    read, write = os.pipe()
    os.set_blocking(write, False)
    with contextlib.suppress(BlockingIOError):
        while True:
            os.write(write, b"-" * 4096)
    os.set_blocking(write, True)
    return read, write


@pytest.mark.slow
def test_a_training_folder_filling_mid_run_is_one_line_and_the_run_resumes(env):
    """`vaetune train` of a configuration with no searched key prints its first line once epoch 1's
    checkpoint is written: into a full pipe, so it waits there while the test fills the disk;
    epoch 2's checkpoint then has no room."""
    with small_disk(env.tmp / "disk", "4m") as disk:
        space = space_file(env.tmp, train={"epochs": 3, "checkpoint_every": 1, "beta": 0.1})
        run = disk / "run"
        read, write = _blocked_pipe()
        driver = env.start("train", str(space), "--out", str(run), stdout=write, stderr=subprocess.PIPE)
        os.close(write)
        deadline = time.monotonic() + HANG_GUARD_S
        while not (run / "checkpoint_epoch0001").exists() and driver.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        filler = fill(disk)
        with os.fdopen(read, "rb") as out:  # lets it go on
            printed = out.read().decode().lstrip("-")
        err = driver.stderr.read()
        assert driver.wait(timeout=HANG_GUARD_S) == 2, printed[-3000:] + err[-3000:]
        assert printed.startswith("epoch 1:") and "epoch 2:" not in printed, printed
        assert "Traceback" not in err, err[-3000:]
        last = err.strip().splitlines()[-1]
        assert last.startswith(f"vaetune train: error: {run}") and "no space left on device" in last, last
        assert last.endswith(f"continue with: vaetune train {space} --out {run} --resume"), last
        filler.unlink()
        resumed = env.run("train", str(space), "--out", str(run), "--resume")
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert "finished f: 3 epochs" in resumed.stdout


# ---------------------------------------------------------------------------------------------
# Stores that are not there


def _refused_port() -> int:
    """A port on 127.0.0.1 where nothing listens (bound, then let go)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow  # seconds: the S3 client's tries
def test_remote_storage_that_refuses_connections_is_one_line_before_ray(work, capsys, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    storage = f"s3://bucket/searches?endpoint_override=127.0.0.1:{_refused_port()}&scheme=http"
    line = one_line(capsys, ["search", str(space_file(work)), "--set", f"search.storage={storage}"])
    assert line.startswith(f"vaetune search: error: search.storage: cannot reach {storage} ("), line
    assert "check the endpoint" in line
    assert not (work / "results").exists()


@pytest.mark.parametrize("kind", ["folder", "text file"])
def test_an_mlflow_store_that_cannot_be_opened_is_one_line_at_once(work, capsys, kind):
    """MLflow retried such a store for minutes (SQLAlchemy's engine, ten tries) before a bug line."""
    store = work / "store.db"
    if kind == "folder":
        store.mkdir()
    else:
        store.write_text("my notes, not a database\n")
    uri = f"sqlite:///{store}"
    line = one_line(capsys, ["search", str(space_file(work)), "--set", f"tracking.uri={uri}"])
    assert line.startswith("vaetune search: error: tracking.uri: "), line
    assert (f"{store} is a folder" if kind == "folder" else "file is not a database") in line, line
    assert not (work / "results").exists()
    line = one_line(capsys, ["ui", "--uri", uri, "--port", str(_refused_port())])
    assert line.startswith("vaetune ui: error: --uri: ") and str(store) in line, line


# ---------------------------------------------------------------------------------------------
# Two things at once


@pytest.mark.slow  # seconds: the data's fingerprint and MLflow's store migrations
def test_resuming_a_search_on_changed_images_is_refused(work, capsys):
    """The fingerprint of the images a search started on is in its search.json; --resume on other
    images (one added) is refused before Ray starts, naming the change."""
    from vaetune.search import plan_search, preflight, write_state
    from vaetune.spec import load_space

    images = work / "images"
    images.mkdir()
    for i in range(20):
        Image.new("RGB", (16, 16), (10 * i, 80, 200 - 5 * i)).save(images / f"{i:02d}.png")
    space = space_file(work, data={"source": str(images), "min_images": 8})
    plan = plan_search(load_space(space))
    results = work / "results" / "f"
    _, fingerprints = preflight(plan, results, address=None, resume=False)
    write_state(results, plan, space_file=str(space), overrides=[], data=fingerprints)  # as a started search has
    assert json.loads((results / SEARCH_FILE).read_text())["data"][str(images)]["images"] == 20
    Image.new("RGB", (16, 16), (255, 0, 0)).save(images / "new.png")
    line = one_line(capsys, ["search", str(space), "--resume"])
    assert line.startswith(f"vaetune search: error: --resume: the images of data.source {images} changed since the "
                           "search started (20 -> 21 images; fingerprint "), line
    assert "--set name=" in line


@pytest.mark.slow  # seconds: a training
def test_resuming_a_training_run_on_changed_images_is_refused(work, capsys):
    images = work / "images"
    images.mkdir()
    for i in range(20):
        Image.new("RGB", (16, 16), (10 * i, 80, 200 - 5 * i)).save(images / f"{i:02d}.png")
    space = space_file(work, data={"source": str(images), "min_images": 8}, train={"epochs": 1})
    assert run_cli(["train", str(space), "--out", "run"]) == 0
    capsys.readouterr()
    Image.new("RGB", (16, 16), (255, 0, 0)).save(images / "00.png")  # one image drawn over
    more = space_file(work, data={"source": str(images), "min_images": 8}, train={"epochs": 2})
    line = one_line(capsys, ["train", str(more), "--out", "run", "--resume"])
    assert line.startswith("vaetune train: error: --resume: run was trained on other images than data.source "), line
    assert not (work / "run" / "checkpoint_epoch0002").exists()


def _deleted_experiment(uri: str, name: str) -> str:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.create_experiment(name)
    client.create_run(exp, run_name="an earlier search")
    client.delete_experiment(exp)
    assert client.get_experiment(exp).lifecycle_stage == "deleted"
    return exp


@pytest.mark.slow  # seconds: MLflow's store migrations
def test_a_deleted_experiment_is_restored_and_said(work, caplog):
    """Deleted in MLflow's UI, the experiment of a search's name made every later search of that
    name untracked (runs cannot be created in a deleted experiment), reported as MLflow unreachable."""
    from mlflow.tracking import MlflowClient

    from vaetune.tracking import SearchTracker, open_store

    uri = f"sqlite:///{work / 'mlflow.db'}"
    exp = _deleted_experiment(uri, "f")
    open_store(uri, "tracking.uri", "f")  # before Ray starts
    assert MlflowClient(uri).get_experiment(exp).lifecycle_stage == "active"
    assert "'f'" in caplog.text and "had been deleted" in caplog.text and "restored it" in caplog.text

    # the tracker of a search that runs while it is deleted again: restored there too, and tracked
    MlflowClient(uri).delete_experiment(exp)
    tracker = SearchTracker(uri=uri, experiment="f", search_name="f", results_dir=work, max_epochs=1,
                            parent_params={"train.beta": "0.1"})
    tracker.setup()
    assert tracker.pending == []  # applied, not queued as if MLflow were unreachable
    runs = MlflowClient(uri).search_runs([exp], filter_string="tags.`vaetune.search` = 'f'")
    assert [r.info.run_id for r in runs] == [tracker.state["parent_run_id"]]


@pytest.mark.slow
def test_two_first_searches_of_a_fresh_project_both_run(env):
    """Started together where no MLflow store exists yet: the second died creating the store's
    tables ("table ... already exists") and its name was then blocked as "already ran"."""
    spaces = [space_file(env.tmp, name) for name in ("a", "b")]
    drivers = [env.start("search", str(s), stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for s in spaces]
    outs = [d.communicate(timeout=HANG_GUARD_S)[0] for d in drivers]
    assert [d.returncode for d in drivers] == [0, 0], "\n".join(o[-3000:] for o in outs)
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{env.tmp / 'mlflow.db'}")
    for name in ("a", "b"):
        exp = client.get_experiment_by_name(name)
        assert exp is not None, name
        assert len(client.search_runs([exp.experiment_id])) == 1 + SPACE["search"]["num_samples"]  # parent + trials
        assert len(summary(env.tmp / "results" / name)) == SPACE["search"]["num_samples"]


# ---------------------------------------------------------------------------------------------
# Processes that die


def _raylet_of(ray_tmp: str) -> int | None:
    for proc in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            cmd = (proc / "cmdline").read_bytes()
            if proc.name.isdigit() and cmd.split(b"\0")[0].endswith(b"raylet") and ray_tmp.encode() in cmd:
                return int(proc.name)
    return None


@pytest.mark.slow
def test_a_killed_raylet_is_one_line_and_the_search_resumes(env):
    """The kernel's OOM killer SIGKILLs Ray's raylet while a trial runs: Ray's core worker ended the
    driver (exit 1) after 49 lines of Ray's logs and none of vaetune's."""
    space = space_file(env.tmp)
    driver = env.start("search", str(space), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert "started" in read_until(driver.stdout, "  started")
    raylet = _raylet_of(env.ray_tmp)
    assert raylet is not None
    os.kill(raylet, signal.SIGKILL)
    out, err = driver.stdout.read(), driver.stderr.read()
    assert driver.wait(timeout=HANG_GUARD_S) == 1, out[-3000:] + err[-3000:]
    assert "(raylet)" not in out + err and "Traceback" not in out + err, out[-3000:] + err[-3000:]
    assert err.strip().splitlines()[-1] == (
        f"vaetune search: failed: Ray's raylet (pid {raylet}, which runs the trials on this machine) was killed by "
        "SIGKILL, as the kernel's out-of-memory killer does (see dmesg or journalctl -k); the search's state was "
        f"saved every few seconds: continue with: vaetune search {space} --resume")
    resumed = env.run("search", str(space), "--resume")
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert set(summary(env.tmp / "results" / "f")[STATUS]) <= {"completed", "stopped"}


@pytest.mark.slow
def test_a_closed_terminal_stops_a_search_as_ctrl_c_does_and_it_resumes(env):
    """SIGHUP (the terminal the search ran in was closed) ended the driver at once: no resume hint,
    its trials' Ray left to notice. Now it stops as SIGTERM does, exit 129."""
    space = space_file(env.tmp)
    driver = env.start("search", str(space), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert "started" in read_until(driver.stdout, "  started")
    driver.send_signal(signal.SIGHUP)
    out = driver.stdout.read()
    assert driver.wait(timeout=HANG_GUARD_S) == 128 + signal.SIGHUP, out[-3000:]
    assert f"continue with: vaetune search {space} --resume" in out and "Traceback" not in out, out[-3000:]
    resumed = env.run("search", str(space), "--resume")
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    rows = summary(env.tmp / "results" / "f")
    assert len(rows) == SPACE["search"]["num_samples"] and "errored" not in set(rows[STATUS]), rows


@pytest.mark.slow
def test_a_search_whose_output_is_closed_ends_quietly_and_resumes(env):
    """`vaetune search SPACE | head -2`: once head has gone, the search stops as Ctrl-C stops it,
    without a word, and --resume finishes it."""
    space = space_file(env.tmp)
    driver = env.start("search", str(space), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert driver.stdout.readline().startswith("search f: ")  # the console's first line
    driver.stdout.close()  # head -1 has what it wanted
    err = driver.stderr.read()
    assert driver.wait(timeout=HANG_GUARD_S) == 128 + signal.SIGPIPE, err[-3000:]
    assert "Traceback" not in err and "error" not in err.lower(), err[-3000:]
    resumed = env.run("search", str(space), "--resume")
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert len(summary(env.tmp / "results" / "f")) == SPACE["search"]["num_samples"]


@pytest.mark.slow
def test_a_search_on_a_console_that_is_not_utf8_runs(env):
    space = space_file(env.tmp)
    proc = env.run("search", str(space), PYTHONIOENCODING="ascii")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "best trial" in proc.stdout and " - 0 failed - " in proc.stdout  # the console's `·`, as ASCII


def _free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _answers(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A real (tiny, one epoch) checkpoint for the gallery, as `vaetune train` writes it."""
    tmp = tmp_path_factory.mktemp("ckpt")
    assert run_cli(["train", str(space_file(tmp, train={"epochs": 1, "beta": 0.1})), "--out", str(tmp / "run")]) == 0
    return tmp / "run" / "checkpoint_epoch0001"


@pytest.mark.slow
@pytest.mark.parametrize(("command", "signum"), [
    pytest.param(command, signum, id=f"{command}-{signum.name}")
    for command, signum in [("ui", signal.SIGTERM), ("ui", signal.SIGHUP), ("ui", signal.SIGINT),
                            ("gallery", signal.SIGTERM)]])
def test_a_signal_to_a_served_page_stops_its_server(env, checkpoint, command, signum):
    """`kill PID` (or a closed terminal, or kill -INT) of `vaetune ui` / `vaetune gallery` left the
    MLflow or Streamlit server running, orphaned, holding the port."""
    from mlflow.tracking import MlflowClient

    port = _refused_port()
    if command == "ui":
        uri = f"sqlite:///{env.tmp / 'mlflow.db'}"
        MlflowClient(uri).search_experiments()  # a store with its tables
        args = ["ui", "--uri", uri, "--port", str(port)]
    else:
        args = ["gallery", str(checkpoint), "--port", str(port)]
    proc = env.start(*args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + SERVER_S
    while not _answers(port) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _answers(port), "the server never answered"
    started = descendants(proc.pid)
    assert started
    proc.send_signal(signum)  # to vaetune alone, as kill PID does
    code = proc.wait(timeout=HANG_GUARD_S)
    alive = [pid for pid in started if _running(pid)]
    try:
        assert code == (0 if signum == signal.SIGINT else 128 + signum)
        assert not alive, [Path(f"/proc/{pid}/cmdline").read_bytes()[:200] for pid in alive]
        assert _free(port)
    finally:
        for pid in alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def descendants(root: int) -> list[int]:
    """The processes `root` started, and theirs (from /proc)."""
    from vaetune.search._faults import children

    found, todo = [], [root]
    while todo:
        kids = [pid for pid, _ in children(todo.pop())]
        found += kids
        todo += kids
    return found


def _running(pid: int) -> bool:
    """Alive and not a zombie waiting for its parent (init reaps an orphan's at once)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False
