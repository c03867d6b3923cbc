"""Plain mistakes, across every command: each is one line naming the culprit, exit code 2, no
traceback, nothing of the user's touched, and quick.

Every case runs `vaetune.cli.main` in this process, in a working folder that holds a decoy of a
user's own files (a config.yaml, a summary.csv, pictures, a checkpoint-named file, a started and
a finished search) whose checksums must not change and beside which nothing new may appear.
Inputs the cases read live outside that folder unless the case is about the user's files.
Mistakes are caught before Ray starts, so no case starts Ray.
"""

from __future__ import annotations

import copy
import hashlib
import json
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from vaetune import cli
from vaetune.search import plan_search, write_state
from vaetune.spec import space_from_dict

BOUND_S = 30  # a hang guard per case, not a benchmark: each takes well under a second or two here

BASE = {
    "name": "s",
    "data": {"source": "builtin:sprites", "image_size": 16, "count": 64, "min_images": 16},
    "model": {"arch": "conv", "width": 4, "latent_dim": 2},
    "train": {"epochs": 1, "batch_size": 16, "num_threads": 1, "grid_size": 2,
              "beta": {"loguniform": [0.01, 1.0]}},
    "search": {"num_samples": 2, "max_concurrent": 1, "max_failures": 0},
}


def picture(path: Path, size=(20, 20), fmt: str | None = None, colour=(200, 30, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path, format=fmt)
    return path


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A real (tiny, one epoch) checkpoint, outside the working folder."""
    from vaetune.train import latest_checkpoint, standard_callbacks, train

    tmp = tmp_path_factory.mktemp("ckpt")
    raw = copy.deepcopy(BASE)
    raw["data"]["cache_dir"] = str(tmp / "cache")
    config = space_from_dict(raw).resolve()
    train(config, standard_callbacks(config, tmp / "run"))
    return latest_checkpoint(tmp / "run")


@dataclass
class Ctx:
    """The case's folders: `work` (the user's working folder, with the decoy) and `inputs`."""

    work: Path
    inputs: Path
    ckpt: Path
    cache: Path
    files: dict[str, str] = field(default_factory=dict)

    def space(self, name: str = "s", overrides: dict | None = None, **edits) -> str:
        """A search-space file (outside `work`): BASE with dotted-key edits (a__b means a.b)."""
        raw = copy.deepcopy(BASE)
        raw["name"] = name
        raw["data"]["cache_dir"] = str(self.cache)
        for key, value in {**edits, **(overrides or {})}.items():
            node = raw
            *parents, leaf = key.replace("__", ".").split(".")
            for p in parents:
                node = node.setdefault(p, {})
            node[leaf] = value
        path = self.inputs / f"{name}-{len(list(self.inputs.glob('*.yaml')))}.yaml"
        path.write_text(yaml.safe_dump(raw, sort_keys=False))
        return str(path)


def _decoy(ctx: Ctx) -> None:
    """A user's working folder: their own files, plus a started and a finished search."""
    w = ctx.work
    (w / "config.yaml").write_text("# my own config, not vaetune's\nlr: 3\n")
    (w / "summary.csv").write_text("quarter,revenue\nQ1,10\n")
    (w / "notes.txt").write_text("do not lose these notes\n")
    (w / "best.pt").write_bytes(b"my own model file, not a vaetune checkpoint")
    picture(w / "mine.png")
    picture(w / "cats" / "im000.png", colour=(10, 10, 200))
    picture(w / "dogs" / "im000.png", colour=(10, 200, 10))
    picture(w / "rec" / "im000_recon.png")  # a user's picture where reconstruct would write
    (w / "project" / "data.csv").parent.mkdir()
    (w / "project" / "data.csv").write_text("a,b\n1,2\n")
    (w / "mydir" / "keep.txt").parent.mkdir()
    (w / "mydir" / "keep.txt").write_text("keep\n")
    # a search that started (search.json, space.yaml) with the space of ctx.space("started")
    space = space_from_dict(yaml.safe_load(Path(ctx.space("started")).read_text()), "started.yaml")
    write_state(w / "results" / "started", plan_search(space), space_file="started.yaml", overrides=[])
    # a finished search whose best trial is the module's checkpoint, and one where every trial errored
    for name, rows in {
        "done": [{"trial_id": "t1", "status": "completed", "epochs": 1, "train.beta": 0.1,
                  "best/val/elbo": 100.0, "final/val/elbo": 100.0, "checkpoint": str(ctx.ckpt)}],
        "failed": [{"trial_id": "t1", "status": "errored", "epochs": 0, "train.beta": 0.1,
                    "error": "RuntimeError: boom"}],
    }.items():
        folder = w / "results" / name
        folder.mkdir(parents=True)
        (folder / "search.json").write_text(json.dumps({"name": name, "metric": "val/elbo", "mode": "min",
                                                        "max_epochs": 1, "searched": ["train.beta"]}))
        import pandas as pd

        pd.DataFrame(rows).to_csv(folder / "summary.csv", index=False)


def _checksums(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def ctx(tmp_path, checkpoint, monkeypatch) -> Ctx:
    c = Ctx(work=tmp_path / "work", inputs=tmp_path / "in", ckpt=checkpoint, cache=tmp_path / "cache")
    c.work.mkdir()
    c.inputs.mkdir()
    monkeypatch.chdir(c.work)  # first: the started search records where it is as a search run here would
    _decoy(c)
    monkeypatch.setenv("VAETUNE_CACHE", str(tmp_path / "vaetune-cache"))  # crash logs, if any
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return c


def run_cli(argv: list[str]) -> int:
    try:
        return cli.main(argv)
    except SystemExit as exc:  # argparse's own exit
        return int(exc.code or 0)


@dataclass
class Case:
    id: str
    argv: Callable[[Ctx], list[str]]
    culprit: tuple[str, ...]  # what the one line must name (the file/argument/key, the bad value, ...)
    code: int = 2
    env: dict[str, str | None] = field(default_factory=dict)  # the environment another tool left (None: unset)


def _inputs(ctx: Ctx, name: str, files: dict[str, bytes | None]) -> str:
    """A folder under inputs with these files (None: a small PNG)."""
    folder = ctx.inputs / name
    for rel, data in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if data is None:
            picture(path)
        else:
            path.write_bytes(data)
    folder.mkdir(exist_ok=True)
    return str(folder)


def _zip(ctx: Ctx, name: str, members: dict[str, bytes]) -> str:
    path = ctx.inputs / name
    with zipfile.ZipFile(path, "w") as z:
        for member, data in members.items():
            z.writestr(member, data)
    return str(path)


def _busy_port() -> tuple[socket.socket, int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock, sock.getsockname()[1]


_LISTENERS: list[socket.socket] = []


def _ui_on_busy_port(c: Ctx) -> list[str]:
    store = c.inputs / "mlruns" / "mlflow.db"
    store.parent.mkdir()
    store.write_bytes(b"")
    sock, port = _busy_port()
    _LISTENERS.append(sock)
    return ["ui", "--uri", f"sqlite:///{store}", "--port", str(port)]


def _run_copy(c: Ctx) -> str:
    """A copy, in the working folder, of the module's one-epoch `vaetune train` run (checked unchanged)."""
    import shutil

    shutil.copytree(c.ckpt.parent, c.work / "run")
    return "run"


def _run_space(c: Ctx, **edits) -> str:
    """The module's run's space (BASE with its cache folder), with edits."""
    return c.space(data__cache_dir=str(c.ckpt.parent.parent / "cache"), **edits)


def _closed_port() -> int:
    """A port of 127.0.0.1 where nothing listens: bound (so no one else takes it) but not listening."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    _LISTENERS.append(sock)
    return sock.getsockname()[1]


def _fifo(c: Ctx, rel: str, images: int = 0) -> str:
    """A named pipe at inputs/rel (nothing ever writes to it: opening it to read waits forever),
    beside `images` small PNGs; returns the pipe's folder."""
    import os

    path = c.inputs / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    for i in range(images):
        picture(path.parent / f"im{i}.png")
    os.mkfifo(path)
    return str(path)


def _damaged(c: Ctx, name: str, file: str, edit: Callable[[str], str]) -> str:
    """A copy of the finished decoy search results/done as results/<name>, with `file` edited by hand."""
    import shutil

    folder = c.work / "results" / name
    shutil.copytree(c.work / "results" / "done", folder)
    (folder / file).write_text(edit((folder / file).read_text()))
    return f"results/{name}"


def _held_none(c: Ctx) -> str:
    """results/done as a search held to val/kl >= 5 that no trial held (its one trial's KL 0.5),
    with the space of the started search: the folder a sweep would start from."""
    import shutil

    import pandas as pd

    folder = Path(_damaged(c, "heldnone", "search.json", lambda t: json.dumps(
        {**json.loads(t), "constraints": {"val/kl": {"min": 5.0}}})))
    shutil.copy(c.work / "results" / "started" / "space.yaml", c.work / folder / "space.yaml")
    summary = pd.read_csv(c.work / folder / "summary.csv").assign(**{"final/val/kl": 0.5, "feasible": False})
    summary.to_csv(c.work / folder / "summary.csv", index=False)
    return str(folder)


def _drop_column(column: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        import io

        import pandas as pd

        return pd.read_csv(io.StringIO(text)).drop(columns=[column]).to_csv(index=False)
    return edit


def _link(c: Ctx, name: str, target: str) -> str:
    """A symbolic link inputs/name -> target (relative to inputs)."""
    (c.inputs / name).symlink_to(target)
    return str(c.inputs / name)


def _wide(c: Ctx, name: str, dtype, values: list, images: int = 20) -> str:
    """A folder of grey TIFF files of a wide mode (float or 32-bit), each holding `values` (and
    nothing else decodes there, so every file is skipped with its range)."""
    folder = c.inputs / name
    folder.mkdir()
    for i in range(images):
        Image.fromarray(np.array([values * 8] * 16, dtype=dtype)).save(folder / f"im{i:02d}.tif")
    return str(folder)


def _villagers(c: Ctx) -> str:
    """A small villagers download (three images and their species) under inputs."""
    folder = c.inputs / "villagers-download"
    for name in ("Bob", "Bea", "Kid"):
        picture(folder / "pics" / f"{name}.png", size=(32, 32))
    (folder / "villagers.json").write_text(json.dumps({"Bob": "Cat", "Bea": "Dog", "Kid": "Cat"}))
    return str(folder)


def _user_tree(c: Ctx, rel: str, files: dict[str, str]) -> str:
    """The user's own folder `rel` under the working folder (checked unchanged like the decoy)."""
    for name, text in files.items():
        path = c.work / rel / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return rel.removesuffix(".partial")


CASES = [
    # ---- search-space files
    Case("space file missing", lambda c: ["search", "nope.yaml"], ("nope.yaml", "does not exist")),
    Case("space file is a folder", lambda c: ["search", str(c.inputs)], ("/in:", "cannot be read", "Is a directory")),
    Case("space file not YAML", lambda c: ["search", _text(c, "a.yaml", "a: [1, 2\n")], ("a.yaml", "line 2", "valid YAML")),
    Case("space file not UTF-8", lambda c: ["search", _bytes(c, "l1.yaml", "name: caf\xe9\n".encode("latin-1"))],
         ("l1.yaml", "UTF-8", "0xe9")),
    # a key given twice: YAML forbids it, PyYAML keeps the last; line numbers counted in the texts below
    Case("a key given twice", lambda c: ["train", _text(c, "twice.yaml", "train:\n  epochs: 1\n  lr: 0.001\n  epochs: 50\n")],
         ("twice.yaml", "train.epochs", "line 2 and line 4")),
    Case("a section given twice", lambda c: ["search", _text(c, "sections.yaml",
                                                             "train:\n  epochs: 1\ndata: {count: 64}\ntrain:\n  lr: 0.1\n")],
         ("sections.yaml", "the key train ", "line 1 and line 4")),
    Case("a key given twice in a flow mapping", lambda c: ["search", _text(c, "flow.yaml",
                                                                           "train: {beta: 0.1, beta: {uniform: [0, 1]}}\n")],
         ("flow.yaml", "train.beta", "line 1 column 9 and line 1 column 20")),
    Case("--set value with a key twice", lambda c: ["search", c.space(), "--set", "train.beta={uniform: [0, 1], uniform: [1, 2]}"],
         ("--set", "train.beta", "uniform is given twice")),
    Case("space file a list", lambda c: ["train", _text(c, "list.yaml", "- 1\n- 2\n")], ("list.yaml", "mapping")),
    Case("unknown key", lambda c: ["search", c.space(train__epocs=3)], ("train.epocs", "epochs")),
    Case("boolean batch size", lambda c: ["search", c.space(train__batch_size=True)], ("train.batch_size", "True", "boolean")),
    # BASE: 64 images; val and test take 10 % each, rounded to 6, so the training split holds 64 - 12 = 52
    Case("batch larger than the training split", lambda c: ["search", c.space(train__batch_size=64)],
         ("train.batch_size", "got 64", "the training split holds 52 images", "at most 52")),
    Case("train: batch larger than the training split", lambda c: ["train", c.space(train__batch_size=64, train__beta=0.5)],
         ("train.batch_size", "got 64", "holds 52 images")),
    Case("words for epochs", lambda c: ["train", c.space(train__epochs="ten")], ("train.epochs", "'ten'", "integer")),
    Case("fractional epochs", lambda c: ["search", c.space(train__epochs=2.5)], ("train.epochs", "2.5")),
    Case("negative lr", lambda c: ["search", c.space(train__lr=-1)], ("train.lr", "-1", "greater than 0")),
    Case("yes for amp", lambda c: ["train", _text(c, "amp.yaml", "train: {amp: yes}\n")], ("train.amp", "'yes'", "off")),
    Case("unknown resize", lambda c: ["search", c.space(data__resize="stretch")], ("data.resize", "stretch", "fit")),
    Case("loguniform from 0", lambda c: ["search", c.space(train__beta={"loguniform": [0, 1]})], ("train.beta", "0 < low")),
    # bounds that leave one value: nothing to search
    Case("uniform with equal bounds", lambda c: ["search", c.space(train__beta={"uniform": [0.5, 0.5]})],
         ("train.beta", "low < high", "beta: 0.5")),
    Case("loguniform with equal bounds", lambda c: ["search", c.space(train__beta={"loguniform": [0.1, 0.1]})],
         ("train.beta", "low < high")),
    Case("randint of one value", lambda c: ["search", c.space(model__latent_dim={"randint": [3, 4]})],
         ("model.latent_dim", "holds only 3")),
    Case("quniform step wider than its range", lambda c: ["search", c.space(train__beta={"quniform": [0, 1, 2]})],
         ("train.beta", "q=2", "one value")),
    Case("randint of floats", lambda c: ["search", c.space(model__latent_dim={"randint": [1.5, 4]})],
         ("model.latent_dim", "integers")),
    Case("unknown distribution", lambda c: ["search", c.space(train__beta={"normal": [0, 1]})],
         ("train.beta", "'normal' is not a distribution vaetune knows", "loguniform, uniform")),
    Case("empty choice", lambda c: ["search", c.space(model__latent_dim={"choice": []})], ("model.latent_dim", "at least one")),
    Case("searched search key", lambda c: ["search", c.space(search__num_samples={"choice": [1, 2]})],
         ("search.num_samples", "only keys under data, model, train")),
    # sampler auto runs a space of grid lists as a grid; beside a choice it cannot
    Case("grid beside a choice", lambda c: ["search", c.space(train__beta={"grid": [0.1, 1]},
                                                              model__latent_dim={"choice": [2, 4]})],
         ("train.beta", "grid list beside keys that are not grid lists", "sampler grid")),
    Case("grid with sampler tpe", lambda c: ["search", c.space(train__beta={"grid": [0.1, 1]}, search__sampler="tpe")],
         ("train.beta", "grid list with search.sampler 'tpe'")),
    Case("a grid with fewer trials than points", lambda c: ["search", c.space(
        search__sampler="grid", search__num_samples=2, train__beta={"grid": [0.1, 1.0]},
        model__latent_dim={"choice": [2, 4, 8]})],  # 2 x 3 = 6 points
         ("search.num_samples", "got 2", "6 points", "search.num_samples: 6")),
    Case("nothing searched", lambda c: ["search", c.space(train__beta=0.5)], ("nothing to search",)),
    Case("portfolio file missing", lambda c: ["search", c.space(search__portfolio="mine.csv")],
         ("search.portfolio", "mine.csv'", "auto", "none", "a portfolio CSV file", "No such file")),
    Case("portfolio file not a portfolio", lambda c: ["search", c.space(
        search__portfolio=_text(c, "p.csv", "quarter,revenue\nQ1,10\n"))],
         ("search.portfolio", "p.csv", "no rank column and dotted-key columns")),
    Case("unknown metric", lambda c: ["search", c.space(search__metric="val/bogus")],
         ("search.metric", "val/bogus", "val/elbo")),
    Case("FID metric without FID", lambda c: ["search", c.space(search__metric="eval/fid_sample")],
         ("search.metric", "eval/fid_sample", "fid_every")),
    Case("nsga2 with one metric", lambda c: ["search", c.space(search__sampler="nsga2", search__metrics=["val/elbo"])],
         ("search.metrics", "two or more objectives", "search.metric")),
    Case("nsga2 without metrics", lambda c: ["search", c.space(search__sampler="nsga2")],
         ("search.metrics", "nsga2 needs at least two metrics")),
    Case("an objective twice", lambda c: ["search", c.space(search__metrics=["val/elbo", "val/elbo"])],
         ("search.metrics", "each objective once")),
    Case("ASHA over two objectives, no metric", lambda c: ["search", c.space(
        search__metrics=["val/elbo", "val/kl"], search__scheduler="asha")],
         ("search.scheduler", "'asha'", "one number", "search.metric", "fifo")),
    Case("CMA-ES over two objectives", lambda c: ["search", c.space(search__metrics=["val/elbo", "val/kl"],
                                                                    search__sampler="cmaes")],
         ("search.sampler", "cmaes", "one objective", "auto, tpe, gp or nsga2")),
    Case("CMA-ES with a constraint", lambda c: ["search", c.space(search__constraints={"val/kl": {"min": 1}},
                                                                  search__sampler="cmaes")],
         ("search.sampler", "cmaes", "search.constraints")),
    Case("a constraint on a metric no trial reports", lambda c: ["search", c.space(
        search__constraints={"val/bogus": {"min": 1}})], ("search.constraints", "val/bogus", "val/kl")),
    Case("a constraint on FID without FID", lambda c: ["search", c.space(
        search__constraints={"eval/fid_sample": {"max": 100}})], ("search.constraints", "eval/fid_sample", "fid_every")),
    Case("a constraint no value can hold", lambda c: ["search", c.space(
        search__constraints={"val/kl": {"min": 5, "max": 2}})], ("search.constraints.val/kl", "must be below max")),
    Case("a constraint without bounds", lambda c: ["search", c.space(search__constraints={"val/kl": {}})],
         ("search.constraints.val/kl", "give min, max or both")),
    Case("a constraint's bound misspelt", lambda c: ["search", c.space(search__constraints={"val/kl": {"mni": 5}})],
         ("search.constraints.val/kl.mni", "unknown key", "accepted keys here: min, max")),
    Case("a constraint of a boolean", lambda c: ["search", c.space(search__constraints={"val/kl": {"min": True}})],
         ("search.constraints.val/kl.min", "boolean")),
    Case("a constraint bound misspelt", lambda c: ["search", c.space(search__constraints={"val/kl": {"minimum": 1}})],
         ("search.constraints.val/kl.minimum", "unknown key")),
    Case("unknown nsga2 metric", lambda c: ["search", c.space(search__sampler="nsga2", search__metrics=["val/elbo", "x/y"])],
         ("search.metrics", "x/y")),
    Case("start point of an unsearched key", lambda c: ["search", c.space(search__points_to_evaluate=[{"train.lr": 0.1}])],
         ("points_to_evaluate[0].train.lr", "searched keys")),
    Case("start point outside the range", lambda c: ["search", c.space(search__points_to_evaluate=[{"train.beta": 5.0}])],
         ("points_to_evaluate[0].train.beta", "5.0", "loguniform [0.01, 1.0]")),
    Case("start point not a choice", lambda c: ["search", c.space(model__latent_dim={"choice": [2, 4]},
                                                                  search__points_to_evaluate=[{"model.latent_dim": 8}])],
         ("points_to_evaluate[0].model.latent_dim", "8", "choice [2, 4]")),
    Case("validation split of 0", lambda c: ["train", c.space(data__split={"train": 0.9, "val": 0.0, "test": 0.1})],
         ("data.split.val", "validates")),
    Case("FID reference split of 0", lambda c: ["search", c.space(data__split={"train": 0.9, "val": 0.1, "test": 0.0},
                                                                  train__fid_every=1, train__fid_reference="test")],
         ("data.split.test", "fid_reference")),
    # ---- names (they name folders)
    Case("name .. (search)", lambda c: ["search", c.space(), "--set", "name=.."], ("name", "'..'")),
    Case("name .. (train)", lambda c: ["train", c.space(), "--set", "name=.."], ("name", "'..'")),
    Case("name .", lambda c: ["search", c.space(), "--set", "name=."], ("name", "'.'")),
    Case("name with a slash", lambda c: ["train", c.space(), "--set", "name=a/b"], ("name", "'a/b'")),
    Case("name too long", lambda c: ["search", c.space(), "--set", "name=" + "n" * 300], ("name", "1-100")),
    # ---- --set
    Case("--set without =", lambda c: ["search", c.space(), "--set", "train.epochs"], ("--set", "key.path=value")),
    Case("--set bad YAML", lambda c: ["search", c.space(), "--set", "train.beta={loguniform: [1"], ("--set", "train.beta", "YAML")),
    Case("--set unknown section", lambda c: ["train", c.space(), "--set", "trian.epochs=3"], ("trian", "unknown key")),
    Case("--set below a value", lambda c: ["search", c.space(), "--set", "train.epochs.x=3"], ("train.epochs.x", "not a section")),
    Case("--set boolean batch size", lambda c: ["search", c.space(), "--set", "train.batch_size=true"],
         ("train.batch_size", "boolean")),
    Case("--set empty key", lambda c: ["search", c.space(), "--set", "=3"], ("--set", "key.path=value")),
    # ---- data
    Case("data folder missing", lambda c: ["search", c.space(data__source="no_such_folder")], ("no_such_folder", "does not exist")),
    Case("data a plain file", lambda c: ["train", c.space(data__source=str(c.work / "notes.txt"))], ("notes.txt", "not a .zip")),
    Case("data folder empty", lambda c: ["search", c.space(data__source=_inputs(c, "empty", {}))], ("empty", "no image files", "no files at all")),
    Case("data folder without images", lambda c: ["search", c.space(data__source=_inputs(c, "docs", {
        "a.txt": b"x", "b.heic": b"x", "c.heic": b"x"}))], ("docs", "2 .heic", "1 .txt", ".png")),
    Case("data zip without images", lambda c: ["search", c.space(data__source=_zip(c, "docs.zip", {"readme.md": b"x"}))],
         ("docs.zip", "1 .md")),
    Case("data not a zip", lambda c: ["search", c.space(data__source=str(_bytes(c, "fake.zip", b"not a zip")))],
         ("fake.zip", "not a readable zip")),
    Case("unknown builtin", lambda c: ["search", c.space(data__source="builtin:dragons")], ("builtin:dragons", "builtin:sprites")),
    Case("sprites seed not a number", lambda c: ["search", c.space(data__source="builtin:sprites?seed=x")], ("seed", "integer")),
    # a named pipe where a file is read: never opened (it would wait forever), one line
    Case("data folder holding only a named pipe", lambda c: ["search", c.space(data__source=str(Path(
        _fifo(c, "pipes/a.png")).parent))], ("pipes", "no image files", "1 (not a regular file")),
    Case("a named pipe among too few images", lambda c: ["data", "inspect", c.space(data__source=str(Path(
        _fifo(c, "few/p.png", images=3)).parent)), "--out", str(c.inputs / "prev.png")], ("few", "only 3 usable images")),
    Case("space file is a named pipe", lambda c: ["search", _fifo(c, "space.yaml")], ("space.yaml", "not a regular file")),
    Case("reconstruct a named pipe", lambda c: ["reconstruct", str(c.ckpt), _fifo(c, "img/p.png"), "--out", str(c.inputs / "r")],
         ("p.png", "not a regular file")),
    Case("data source a link to nothing", lambda c: ["search", c.space(data__source=_link(c, "dead", "gone_folder"))],
         ("dead", "a link to gone_folder, which does not exist")),
    Case("data source a link to itself", lambda c: ["search", c.space(data__source=_link(c, "loop", "loop"))],
         ("loop", "leads back to itself")),
    Case("data source in a loop of two links", lambda c: ["search", c.space(data__source=(
        _link(c, "ping", "pong"), _link(c, "pong", "ping"))[0])], ("ping", "leads back to itself")),
    # values a plain conversion hides: floats outside 0..1 and 0..255, a 32-bit image beyond 16 bits
    Case("float images outside the ranges read", lambda c: ["search", c.space(data__source=_wide(c, "floats", np.float32, [
        -1.0, 2.0]))], ("floats", "floating-point image with values from -1 to 2", "vaetune reads 0..1 or 0..255")),
    Case("32-bit images beyond 16 bits", lambda c: ["search", c.space(data__source=_wide(c, "deep", np.int32, [
        0, 70000]))], ("deep", "32-bit image with values from 0 to 70000", "vaetune reads 0..255 or 0..65535")),
    Case("too few images", lambda c: ["search", c.space(data__source=_inputs(c, "few", {f"{i}.png": None for i in range(3)}))],
         ("few", "only 3 usable images", "min_images=16")),
    Case("min_images above count", lambda c: ["train", c.space(data__min_images=500)], ("only 64 usable images", "min_images=500")),
    Case("images that cannot fit in memory", lambda c: ["search", c.space(data__count=10_000_000, data__image_size=1024)],
         ("10000000 images", "1024", "TiB", "this machine has")),
    Case("searched source missing", lambda c: ["search", c.space(data__source={"choice": [
        _inputs(c, "ok", {f"{i}.png": None for i in range(20)}), "gone_folder"]})], ("gone_folder", "does not exist")),
    Case("cache folder under a file", lambda c: ["search", c.space(data__cache_dir=str(c.work / "notes.txt" / "cache"))],
         ("data.cache_dir", "notes.txt", "is a file")),
    # ---- resources, cluster, storage, tracking
    Case("GPUs this machine lacks", lambda c: ["search", c.space(resources__gpu=1000)], ("resources.gpu", "1000")),
    Case("CPUs this machine lacks", lambda c: ["search", c.space(resources__cpu=100000)], ("resources.cpu", "100000")),
    Case("cuda without a GPU per trial", lambda c: ["search", c.space(train__device="cuda")], ("train.device", "resources.gpu")),
    Case("address not an address", lambda c: ["search", c.space(), "--address", "notahost"], ("--address", "notahost", "HOST:PORT")),
    Case("address where nothing listens", lambda c: ["search", c.space(), "--address", "127.0.0.1:1"],
         ("--address", "127.0.0.1:1", "nothing answers")),
    Case("tracking URI MLflow cannot use", lambda c: ["search", c.space(tracking__uri="foo://bar")], ("tracking.uri", "foo://bar")),
    Case("tracking in an in-memory database", lambda c: ["search", c.space(tracking__uri="sqlite://")],
         ("tracking.uri", "'sqlite://'", "in-memory", "keeps nothing")),
    Case("tracking in sqlite's :memory:", lambda c: ["search", c.space(tracking__uri="sqlite:///:memory:")],
         ("tracking.uri", "in-memory")),
    Case("storage is a file", lambda c: ["search", c.space(search__storage="notes.txt")], ("search.storage", "notes.txt", "is a file")),
    Case("storage cannot be written", lambda c: ["search", c.space(search__storage="/proc/vaetune")], ("search.storage", "/proc")),
    Case("results folder holds the user's files", lambda c: ["search", c.space(name="project", search__storage=".")],
         ("project", "vaetune did not write")),
    # ---- re-runs and --resume
    Case("same search again", lambda c: ["search", c.space("started")], ("started", "already ran", "--resume")),
    Case("resume of nothing", lambda c: ["search", c.space("never"), "--resume"], ("--resume", "never")),
    Case("resume with another beta range", lambda c: ["search", c.space("started", train__beta={"loguniform": [0.1, 10.0]}),
                                                      "--resume"],
         ("--resume", "train.beta: loguniform[0.01, 1.0] -> loguniform[0.1, 10.0]")),
    Case("resume with fewer trials", lambda c: ["search", c.space("started"), "--resume", "--set", "search.num_samples=1"],
         ("--resume", "search.num_samples: 2 -> 1")),
    Case("resume with a fixed value changed", lambda c: ["search", c.space("started"), "--resume", "--set", "train.epochs=5"],
         ("--resume", "train.epochs: 1 -> 5")),
    # ---- vaetune train outputs
    Case("train --out is a file", lambda c: ["train", c.space(), "--out", "notes.txt"], ("--out", "notes.txt", "is a file")),
    Case("train --out holds the user's files", lambda c: ["train", c.space(), "--out", "mydir"], ("--out", "mydir", "did not write")),
    Case("train --out is the working folder", lambda c: ["train", c.space(), "--out", "."], ("--out", "did not write")),
    Case("train --resume without checkpoints", lambda c: ["train", c.space(), "--resume", "--out", str(c.inputs / "new")],
         ("new", "--resume", "checkpoint")),
    # --resume of a run trained with BASE (lr at its default 1e-3, 64 images): only more epochs may change
    Case("train --resume with another lr", lambda c: ["train", _run_space(c, train__lr=0.1), "--resume", "--out", _run_copy(c)],
         ("--resume", "train.lr: 0.001 -> 0.1", "only train.epochs may grow")),
    Case("train --resume with other data", lambda c: ["train", _run_space(c, data__count=32, model__width=8, train__epochs=3),
                                                      "--resume", "--out", _run_copy(c)],
         ("--resume", "data.count: 64 -> 32; model.width: 4 -> 8")),
    # ---- checkpoints and pictures
    Case("sample: checkpoint missing", lambda c: ["sample", "nope.pt"], ("nope.pt", "no checkpoint")),
    Case("sample: a picture as checkpoint", lambda c: ["sample", "mine.png", "--out", str(c.inputs / "s.png")],
         ("mine.png", "not a readable vaetune checkpoint")),
    Case("sample: the user's file as checkpoint", lambda c: ["sample", "best.pt", "--out", str(c.inputs / "s.png")],
         ("best.pt", "not a readable vaetune checkpoint")),
    Case("sample --n 0", lambda c: ["sample", str(c.ckpt), "--n", "0", "--out", str(c.inputs / "s.png")], ("--n", "0")),
    Case("sample --n beyond memory", lambda c: ["sample", str(c.ckpt), "--n", str(10**10), "--out", str(c.inputs / "s.png")],
         ("--n", "10000000000", "this machine has")),
    Case("sample --n not a number", lambda c: ["sample", str(c.ckpt), "--n", "many"], ("--n", "many")),
    Case("sample --out a folder", lambda c: ["sample", str(c.ckpt), "--out", "cats"], ("--out", "cats", "folder")),
    Case("sample --out a JPEG", lambda c: ["sample", str(c.ckpt), "--out", str(c.inputs / "s.jpg")], ("--out", "s.jpg", ".png")),
    Case("sample --out over the user's picture", lambda c: ["sample", str(c.ckpt), "--out", "mine.png"],
         ("--out", "mine.png", "not written by vaetune")),
    Case("sample --out over a checkpoint", lambda c: ["sample", str(c.ckpt), "--out", "best.pt"], ("--out", "best.pt", ".png")),
    Case("sample --label of an unconditional model", lambda c: ["sample", str(c.ckpt), "--label", "1", "--out",
                                                                str(c.inputs / "s.png")], ("--label", "not conditional")),
    Case("reconstruct: image missing", lambda c: ["reconstruct", str(c.ckpt), "nope.png", "--out", str(c.inputs / "r")],
         ("nope.png",)),
    Case("reconstruct: not an image", lambda c: ["reconstruct", str(c.ckpt), "notes.txt", "--out", str(c.inputs / "r")],
         ("notes.txt", "not a usable image")),
    Case("reconstruct --out is a file", lambda c: ["reconstruct", str(c.ckpt), "cats/im000.png", "--out", "notes.txt"],
         ("--out", "notes.txt", "is a file")),
    Case("reconstruct over the user's picture", lambda c: ["reconstruct", str(c.ckpt), "cats/im000.png", "--out", "rec"],
         ("--out", "im000_recon.png", "not written by vaetune")),
    Case("interpolate one image", lambda c: ["interpolate", str(c.ckpt), "cats/im000.png", "--out", str(c.inputs / "i.png")],
         ("two images", "got 1")),
    Case("interpolate --steps beyond memory", lambda c: ["interpolate", str(c.ckpt), "cats/im000.png", "dogs/im000.png",
                                                         "--steps", str(10**8), "--out", str(c.inputs / "i.png")],
         ("--steps", "this machine has")),
    Case("walk --out a PNG", lambda c: ["walk", str(c.ckpt), "--out", str(c.inputs / "w.png")], ("--out", "w.png", ".gif")),
    Case("walk --frames 0", lambda c: ["walk", str(c.ckpt), "--frames", "0", "--out", str(c.inputs / "w.gif")], ("--frames", "0")),
    Case("progress --n 0", lambda c: ["progress", str(c.ckpt.parent), "--n", "0", "--out", str(c.inputs / "p.png")], ("--n", "0")),
    Case("progress of a folder without checkpoints", lambda c: ["progress", "mydir", "--out", str(c.inputs / "p.png")],
         ("mydir", "checkpoint")),
    Case("neighbours --pool 0", lambda c: ["neighbours", str(c.ckpt), "--data", c.space(), "--pool", "0",
                                           "--out", str(c.inputs / "n.png")], ("--pool", "0")),
    Case("traverse --data missing", lambda c: ["traverse", str(c.ckpt), "--data", "nope.yaml", "--out", str(c.inputs / "t.png")],
         ("nope.yaml", "does not exist")),
    Case("manifold --label unknown", lambda c: ["manifold", str(c.ckpt), "--data", c.space(), "--label", "nosuch",
                                                "--out", str(c.inputs / "m.png")], ("--label", "nosuch", "shape")),
    # ---- an environment another tool left: Ray's address, a temporary folder too deep for Ray's sockets
    Case("RAY_ADDRESS naming a cluster that is gone", lambda c: ["search", c.space()],
         ("$RAY_ADDRESS", "nothing answers at 127.0.0.1:1", "unset RAY_ADDRESS"), env={"RAY_ADDRESS": "127.0.0.1:1"}),
    Case("sweep of a search no trial of which held its constraints", lambda c: ["sweep", _held_none(c)],
         ("heldnone", "no trial held", "val/kl >= 5", "search-space file")),
    Case("RAY_ADDRESS not an address", lambda c: ["sweep", c.space()], ("$RAY_ADDRESS", "got 'head-node'", "HOST:PORT"),
         env={"RAY_ADDRESS": "head-node"}),
    Case("TMPDIR too long for Ray's sockets", lambda c: ["search", c.space()],
         ("$TMPDIR", "95 characters", "beyond the 107", "RAY_TMPDIR"), env={"TMPDIR": "/tmp/" + "x" * 90, "RAY_TMPDIR": None}),
    # 5 + 70 = 75 characters, and Ray adds /ray/session_<26-character time>_<pid of up to 7 digits>/sockets/plasma_store
    # (5 + 8 + 26 + 1 + 7 + 21 = 68): 143 bytes
    Case("RAY_TMPDIR too long for Ray's sockets", lambda c: ["search", c.space()],
         ("$RAY_TMPDIR", "75 characters", "up to 143 bytes"), env={"RAY_TMPDIR": "/tmp/" + "y" * 70}),
    # ---- init: a folder too small for the space it would write (that space stops at data.min_images)
    Case("init on a folder of 12 images", lambda c: ["init", _inputs(c, "twelve", {f"{i}.png": None for i in range(12)}),
                                                     "--out", str(c.inputs / "twelve.yaml")],
         ("twelve", "12 usable images", "at least 16 (data.min_images)")),
    Case("init on a folder of one image", lambda c: ["init", _inputs(c, "one", {"a.png": None}), "--out",
                                                     str(c.inputs / "one.yaml")], ("one", "1 usable image ", "at least 16")),
    # pictures of nothing: every column, step or cell the same image
    Case("traverse --range 0", lambda c: ["traverse", str(c.ckpt), "--range", "0", "--out", str(c.inputs / "t.png")],
         ("--range", "got 0.0", "above 0")),
    Case("traverse --range nan", lambda c: ["traverse", str(c.ckpt), "--range", "nan", "--out", str(c.inputs / "t.png")],
         ("--range", "got nan", "above 0")),
    Case("traverse --range negative", lambda c: ["traverse", str(c.ckpt), "--range", "-2", "--out", str(c.inputs / "t.png")],
         ("--range", "got -2.0", "above 0")),
    Case("manifold --grid-steps 1", lambda c: ["manifold", str(c.ckpt), "--data", c.space(), "--grid-steps", "1"],
         ("--grid-steps", "got 1", "at least 2")),  # the default --out, manifold.png, in the working folder: not written
    Case("manifold --grid-steps 0", lambda c: ["manifold", str(c.ckpt), "--data", c.space(), "--grid-steps", "0"],
         ("--grid-steps", "got 0", "at least 2")),
    Case("interpolate an image with itself", lambda c: ["interpolate", str(c.ckpt), "cats/im000.png", "cats/im000.png",
                                                        "--out", str(c.inputs / "i.png")],
         ("cats/im000.png and cats/im000.png", "the same code", "images that differ")),
    Case("interpolate two copies of one image", lambda c: ["interpolate", str(c.ckpt), "cats/im000.png",
                                                           str(picture(c.inputs / "copy.png", colour=(10, 10, 200))),
                                                           "--out", str(c.inputs / "i.png")], ("copy.png", "the same code")),
    # ---- export and report
    Case("export of a folder that is not a search", lambda c: ["export", "mydir", "--out", str(c.inputs / "b.pt")],
         ("mydir", "not a vaetune search folder")),
    Case("export --metric unknown", lambda c: ["export", "results/done", "--metric", "val/bogus", "--out", str(c.inputs / "b.pt")],
         ("--metric", "val/bogus", "val/elbo")),
    Case("export --pareto of one objective", lambda c: ["export", "results/done", "--pareto"],
         ("--pareto", "one objective", "search.metrics")),
    Case("export --trial unknown", lambda c: ["export", "results/done", "--trial", "bogus", "--out", str(c.inputs / "b.pt")],
         ("--trial", "'bogus'", "trials are")),
    Case("export --trial beside --metric", lambda c: ["export", "results/done", "--trial", "x", "--metric", "val/kl",
                                                     "--out", str(c.inputs / "b.pt")], ("--trial", "--metric")),
    Case("export --out a folder", lambda c: ["export", "results/done", "--out", "mydir"], ("--out", "mydir", "folder")),
    Case("export --out over the user's file", lambda c: ["export", "results/done", "--out", "best.pt"],
         ("--out", "best.pt", "not written by vaetune")),
    # a results folder damaged by hand: the damaged file named, and how to recover
    Case("export of an emptied summary.csv", lambda c: ["export", _damaged(c, "empty", "summary.csv", lambda t: ""),
                                                        "--out", str(c.inputs / "b.pt")],
         ("empty/summary.csv", "damaged", "not a readable table", "--resume")),
    Case("report of a summary.csv pandas cannot parse", lambda c: [
        "report", _damaged(c, "unparsable", "summary.csv", lambda t: 'a,b\n"unclosed,1\n'), "--no-mlflow"],
         ("unparsable/summary.csv", "damaged", "not a readable table")),
    Case("report of a garbage summary.csv", lambda c: ["report", _damaged(c, "garbage", "summary.csv",
                                                                          lambda t: "my notes\nnot a table\n"), "--no-mlflow"],
         ("garbage/summary.csv", "damaged", "lacks the columns trial_id, status")),
    Case("export of a summary.csv without trial ids", lambda c: [
        "export", _damaged(c, "noid", "summary.csv", _drop_column("trial_id")), "--out", str(c.inputs / "b.pt")],
         ("noid/summary.csv", "damaged", "lacks the column trial_id")),
    Case("export of a summary.csv without checkpoints", lambda c: [
        "export", _damaged(c, "nockpt", "summary.csv", _drop_column("checkpoint")), "--out", str(c.inputs / "b.pt")],
         ("nockpt/summary.csv", "damaged", "lacks the column checkpoint")),
    Case("report of a summary.csv without the final metric", lambda c: [
        "report", _damaged(c, "nofinal", "summary.csv", _drop_column("final/val/elbo")), "--no-mlflow"],
         ("nofinal/summary.csv", "damaged", "lacks the column final/val/elbo")),
    Case("export of a truncated search.json", lambda c: ["export", _damaged(c, "trunc", "search.json", lambda t: t[:20]),
                                                         "--out", str(c.inputs / "b.pt")],
         ("trunc/search.json", "damaged", "not readable JSON", "restore it")),
    Case("report of a search.json that is a list", lambda c: ["report", _damaged(c, "list", "search.json", lambda t: "[1, 2]"),
                                                              "--no-mlflow"],
         ("list/search.json", "damaged", "JSON list")),
    Case("report of a search.json without its metric", lambda c: [
        "report", _damaged(c, "nometric", "search.json", lambda t: json.dumps({"name": "x", "mode": "min"})), "--no-mlflow"],
         ("nometric/search.json", "damaged", "lacks metric")),
    Case("report where no trial finished", lambda c: ["report", "results/failed", "--no-mlflow"],
         ("failed", "no trial", "finished an epoch", "1 errored")),
    Case("report --out the user's folder", lambda c: ["report", "results/done", "--out", "mydir", "--no-mlflow"],
         ("--out", "mydir", "did not write")),
    # ---- other commands
    Case("ui --port out of range", lambda c: ["ui", "--port", "99999"], ("--port", "99999", "1 to 65535")),
    Case("ui --port in use", _ui_on_busy_port, ("--port", "cannot be used")),
    Case("ui --uri of a server where nothing listens", lambda c: ["ui", "--uri", f"http://127.0.0.1:{_closed_port()}"],
         ("--uri", "nothing answers at http://127.0.0.1:", "start the MLflow server")),
    Case("ui without a store", lambda c: ["ui", "--uri", f"sqlite:///{c.inputs / 'none' / 'mlflow.db'}"], ("no MLflow store",)),
    Case("fid of a missing folder", lambda c: ["fid", "nope_a", str(c.work / "cats")], ("nope_a", "does not exist")),
    Case("fid --n 1", lambda c: ["fid", "cats", "dogs", "--n", "1"], ("--n", "1")),
    Case("data inspect --image-size 0", lambda c: ["data", "inspect", "builtin:sprites", "--image-size", "0"],
         ("--image-size", "0")),
    Case("data inspect --out a folder", lambda c: ["data", "inspect", c.space(), "--out", "mydir"], ("--out", "mydir", "folder")),
    Case("data prepare --test-fraction 1.5", lambda c: ["data", "prepare", "villagers", "nope.zip", "--out", str(c.inputs / "v"),
                                                        "--test-fraction", "1.5"], ("--test-fraction", "1.5")),
    Case("prepare --out a web site with its own manifest.json", lambda c: [
        "data", "prepare", "villagers", _villagers(c), "--out",
        _user_tree(c, "site", {"manifest.json": '{"name": "my web app"}', "index.html": "<html>", "css/a.css": "a{}"})],
         ("site", "not written by `vaetune data prepare`")),
    Case("prepare beside the user's DIR.partial", lambda c: [
        "data", "prepare", "villagers", _villagers(c), "--out", _user_tree(c, "thesis.partial", {"ch1.tex": "my thesis"})],
         ("thesis.partial", "not written by `vaetune data prepare`")),
    Case("prepare --out a folder whose manifest only claims to be prepare's", lambda c: [
        "data", "prepare", "villagers", _villagers(c), "--out",
        _user_tree(c, "claims", {"manifest.json": '{"written_by": "vaetune data prepare"}', "index.html": "<html>"})],
         ("claims", "not written by `vaetune data prepare`")),
    Case("unknown command", lambda c: ["serch", "x.yaml"], ("serch", "search")),
]


def _text(c: Ctx, name: str, text: str) -> str:
    path = c.inputs / name
    path.write_text(text)
    return str(path)


def _bytes(c: Ctx, name: str, data: bytes) -> str:
    path = c.inputs / name
    path.write_bytes(data)
    return str(path)


def test_the_table_holds_at_least_sixty_distinct_mistakes():
    assert len(CASES) >= 60 and len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_plain_mistake_is_one_line_and_costs_nothing(case: Case, ctx: Ctx, capsys, monkeypatch):
    for name, value in case.env.items():
        monkeypatch.setenv(name, value) if value is not None else monkeypatch.delenv(name, raising=False)
    argv = case.argv(ctx)
    before = _checksums(ctx.work)
    capsys.readouterr()
    t0 = time.perf_counter()
    code = run_cli(argv)
    seconds = time.perf_counter() - t0
    out, err = capsys.readouterr()
    assert code == case.code, (argv, out[-2000:], err[-2000:])
    assert "Traceback" not in out + err
    lines = [line for line in err.splitlines() if line.strip()]
    said = [line for line in lines if line.startswith("vaetune")]
    assert len(said) == 1 and lines[-1] == said[0], err[-2000:]
    for culprit in case.culprit:
        assert culprit in said[0], (culprit, said[0])
    assert "internal error" not in said[0]
    assert _checksums(ctx.work) == before  # nothing modified, removed or added
    assert seconds < BOUND_S


@pytest.mark.parametrize("env", [{}, {"TMPDIR": "/var/tmp/t"}, {"RAY_TMPDIR": "/r", "TMPDIR": "/t"}, {"RAY_TMPDIR": "/r"}])
def test_the_temporary_folder_checked_is_the_one_ray_uses(env, monkeypatch):
    from ray._common.utils import get_default_system_temp_dir

    from vaetune.search._preflight import ray_temp_dir

    for name in ("TMPDIR", "RAY_TMPDIR"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert ray_temp_dir()[0] == get_default_system_temp_dir()


def test_a_bug_is_one_line_naming_a_log_with_the_traceback(ctx: Ctx, capsys, monkeypatch):
    from vaetune.commands import report

    def broken(args):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(report, "run", broken)  # bound when the parser is built
    code = run_cli(["report", "results/done"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert "internal error (a bug in vaetune): ZeroDivisionError: a bug" in line
    log = Path(line.rsplit("the full traceback is in ", 1)[1])
    assert log.is_file() and "Traceback" in log.read_text() and "ZeroDivisionError" in log.read_text()


def test_train_resume_takes_more_epochs(ctx: Ctx, capsys):
    """The one change --resume applies: the copied one-epoch run trains on to epoch 2."""
    run = _run_copy(ctx)
    assert run_cli(["train", _run_space(ctx, train__epochs=2), "--resume", "--out", run]) == 0
    assert sorted(p.name for p in (ctx.work / run).glob("checkpoint_epoch*")) == ["checkpoint_epoch0001",
                                                                                  "checkpoint_epoch0002"]


def test_train_that_diverges_ends_with_one_line_naming_the_fix(ctx: Ctx, capsys):
    code = run_cli(["train", ctx.space(train__lr=1e8, train__beta=0.1), "--out", str(ctx.inputs / "run")])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("vaetune train: failed: loss became") and "epoch 1" in last and "lower train.lr" in last


def test_outputs_of_the_same_name_get_distinct_names(ctx: Ctx, capsys):
    out = ctx.inputs / "rec"
    assert run_cli(["reconstruct", str(ctx.ckpt), "cats/im000.png", "dogs/im000.png", "--out", str(out)]) == 0
    written = sorted(p.name for p in out.iterdir())
    assert written == ["cats_im000_recon.png", "dogs_im000_recon.png"]
    left, right = (Image.open(out / name).convert("RGB") for name in written)
    assert left.getpixel((1, 1)) == (10, 10, 200) and right.getpixel((1, 1)) == (10, 200, 10)  # each its own input
    # a second run replaces its own pictures (they carry vaetune's mark)
    assert run_cli(["reconstruct", str(ctx.ckpt), "cats/im000.png", "dogs/im000.png", "--out", str(out)]) == 0


@pytest.mark.parametrize("fmt, suffix", [("TIFF", ".tif"), ("WEBP", ".webp"), ("BMP", ".bmp"), ("GIF", ".gif"),
                                         ("PPM", ".ppm"), ("TGA", ".tga")])
def test_every_format_pillow_reads_is_read_from_folders_and_zips(tmp_path, fmt, suffix):
    from vaetune.data import load_data
    from vaetune.spec import DataConfig

    folder = tmp_path / "imgs"
    for i in range(4):
        picture(folder / f"{i}{suffix}", colour=(60 * i, 0, 0), fmt=fmt)
    archive = tmp_path / "imgs.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for p in sorted(folder.iterdir()):
            z.write(p, p.name)
    for source in (folder, archive):
        data = load_data(DataConfig(source=str(source), image_size=8, min_images=4, cache_dir=str(tmp_path / "c")))
        assert len(data.images) == 4 and not data.skipped
        reds = sorted(data.images[:, 0, 4, 4].tolist())
        assert all(abs(r - want) <= 4 for r, want in zip(reds, [0, 60, 120, 180], strict=True))  # WebP is lossy


@pytest.mark.slow
def test_a_real_process_prints_the_one_line_and_nothing_else(tmp_path):
    """The process boundary: logging configured by the CLI, the console script's exit code."""
    space = tmp_path / "s.yaml"
    raw = copy.deepcopy(BASE)
    raw["resources"] = {"gpu": 1000}
    space.write_text(yaml.safe_dump(raw))
    proc = subprocess.run([sys.executable, "-m", "vaetune.cli", "search", str(space)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert proc.stderr.startswith("vaetune search: error: resources.gpu: got 1000")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.yaml"]  # nothing written


@pytest.mark.slow
def test_a_copied_results_folder_registers_into_the_users_store(ctx: Ctx, capsys, monkeypatch):
    """The folder records the search's store; the user's $MLFLOW_TRACKING_URI (another project's) wins."""
    from mlflow.tracking import MlflowClient

    from vaetune.results import write_tracking

    recorded, mine = ctx.inputs / "original" / "mlflow.db", ctx.inputs / "mine" / "mlflow.db"
    mine.parent.mkdir()
    write_tracking(ctx.work / "results" / "done", {"uri": f"sqlite:///{recorded}"})
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{mine}")
    code = run_cli(["export", "results/done", "--out", str(ctx.inputs / "b.pt"), "--register", "sprites-vae"])
    out = capsys.readouterr().out
    assert code == 0 and f"in sqlite:///{mine}" in out, out
    assert MlflowClient(f"sqlite:///{mine}").get_registered_model("sprites-vae").name == "sprites-vae"
    assert not recorded.parent.exists()  # nothing written where the folder came from


def test_a_bug_is_one_line_even_when_no_crash_log_can_be_written(ctx: Ctx, capsys, monkeypatch):
    """Neither the cache (a folder under /proc) nor the working folder (/proc) takes the log."""
    from vaetune.commands import report

    def broken(args):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(report, "run", broken)
    monkeypatch.setenv("VAETUNE_CACHE", "/proc/vaetune-cache")
    monkeypatch.chdir("/proc")
    code = run_cli(["report", str(ctx.work / "results" / "done")])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "internal error (a bug in vaetune): ZeroDivisionError: a bug" in lines[0]
    assert "could not be written" in lines[0]
