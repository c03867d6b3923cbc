"""`vaetune gallery` on the session's real search (tests/test_report.py: sprites 16 px, three β,
3 epochs, every trial with a fitted latent prior) and on checkpoints: its exported best and a
conditional model trained with `vaetune train`.

Streamlit's own test harness (AppTest) drives the page's widgets; each picture the page shows is
read back as the PNG its download button offers (`SHOWN`) and checked against what the commands
write: the samples of a seed are `vaetune sample --seed`, an uploaded image's reconstruction is
`vaetune reconstruct`'s, an interpolation is `vaetune interpolate`'s, from the reconstruction of
one image to the other's. Headless Chromium loads the served page and a screenshot is kept in the
test's folder. Bad input: one line and exit code 2 before any server starts; a bad upload is a
message in the page.
"""

from __future__ import annotations

import io
import shutil
import socket
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import test_viz
import torch
import yaml
from browser import chromium_page, free_port, serving, user_env, vaetune
from guards import HANG_GUARD_S
from PIL import Image
from streamlit.testing.v1 import AppTest
from test_report import NAME

from vaetune.checkpoint import load_model
from vaetune.gallery import APP, SHOWN, TARGET_ENV, export_bytes, open_gallery
from vaetune.viz import PAD

pytestmark = pytest.mark.slow  # the session search (tests/test_report.py), Streamlit pages on its trials and headless Chromium

H = W = 16  # the search's image size
RESULTS = f"results/{NAME}"

# the picture commands' fixtures, shared: the session's search (`work`), `run` of a command in its folder,
# its export (`ckpt`, best.pt) and validation images as PNG files (`images`)
work, run, ckpt, images = test_viz.work, test_viz.run, test_viz.ckpt, test_viz.images


# ---------------------------------------------------------------------------------------------
# the search, its exported best, images, and the page


@pytest.fixture(scope="module")
def trials(work):
    """The gallery's entries of the search, best first (its first is what export picks)."""
    return open_gallery(work / RESULTS).entries


@pytest.fixture(scope="module")
def best(ckpt) -> Path:
    """`vaetune export` of the search: its best trial's checkpoint."""
    return ckpt


@pytest.fixture(scope="module")
def pngs(images) -> list[Path]:
    """Validation images of the search's data, as PNG files."""
    return [Path(p) for p in images]


@pytest.fixture(scope="module")
def conditional(work, run):
    """A conditional model (on the sprites' first label) from `vaetune train --out`: its checkpoint folder."""
    raw = yaml.safe_load((work / "space.yaml").read_text())
    raw["name"] = "cond"
    raw["model"]["conditional"] = True
    raw["train"].update(beta=0.1, epochs=1, fid_every=0)
    del raw["search"]["metric"]  # the search's, a FID: without FID, val/elbo
    (work / "cond.yaml").write_text(yaml.safe_dump(raw))
    assert run("train", "cond.yaml", "--out", "cond_run") == 0
    return sorted((work / "cond_run").glob("checkpoint_epoch*"))[-1]


@pytest.fixture
def page(monkeypatch):
    """Open the gallery of a target in AppTest: `page(target)` runs it once and returns it."""
    def _open(target) -> AppTest:
        monkeypatch.setenv(TARGET_ENV, str(target))
        return rerun(AppTest.from_file(str(APP), default_timeout=HANG_GUARD_S))

    return _open


def rerun(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def shown(at: AppTest) -> dict[str, bytes]:
    return at.session_state[SHOWN]


def pixels(png) -> np.ndarray:
    data = png.read_bytes() if hasattr(png, "read_bytes") else png
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def tile(png, row: int, col: int, h: int = H, w: int = W) -> np.ndarray:
    """The image at (row, col) of a grid (PAD white pixels around and between images)."""
    a = pixels(png)
    y, x = PAD + row * (h + PAD), PAD + col * (w + PAD)
    return a[y:y + h, x:x + w]


def as_pixels(image: torch.Tensor) -> np.ndarray:
    """An image (C, H, W) in [0, 1] as the uint8 (H, W, 3) a PNG of it holds."""
    return image.mul(255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


# ---------------------------------------------------------------------------------------------
# trials and samples


def test_the_page_opens_on_the_trials_ranked_by_the_search_metric(page, work, trials):
    at = page(work / RESULTS)
    table = at.dataframe[0].value
    summary = pd.read_csv(work / RESULTS / "summary.csv", dtype={"trial_id": str})
    expected = summary.sort_values("best/eval/fid_sample_gmm")["trial_id"].tolist()
    assert table["trial"].tolist() == expected
    assert [e.key for e in trials] == expected
    assert "FID GMM @ 3" in table.columns  # the search metric, at the report's main epoch (3)
    assert table["status"].tolist() == ["completed"] * 3
    assert at.multiselect(key="trials").value == [expected[0]]  # the best trial, shown at once
    assert list(shown(at)) == [f"samples_{expected[0]}"]


@pytest.mark.parametrize("sampler", ["gmm", "normal"])
def test_samples_for_a_seed_equal_vaetune_sample(page, work, run, best, trials, sampler):
    at = page(work / RESULTS)
    at.radio(key="sampler").set_value(sampler)
    at.slider(key="n").set_value(9)
    at.number_input(key="seed").set_value(5)
    rerun(at)
    assert run("sample", str(best), "--n", "9", "--seed", "5", "--sampler", sampler, "--out", f"s_{sampler}.png") == 0
    assert np.array_equal(pixels(shown(at)[f"samples_{trials[0].key}"]), pixels(work / f"s_{sampler}.png"))


def test_new_samples_draws_the_next_seed(page, work, run, best, trials):
    at = page(work / RESULTS)
    at.button(key="new_samples").click()
    rerun(at)
    assert at.number_input(key="seed").value == 1
    assert run("sample", str(best), "--n", "16", "--seed", "1", "--out", "s_seed1.png") == 0
    assert np.array_equal(pixels(shown(at)[f"samples_{trials[0].key}"]), pixels(work / "s_seed1.png"))


def test_temperature_scales_z(page, work, best, trials):
    at = page(work / RESULTS)
    # selected at first: the sampler whose samples ranked the trials (search.metric eval/fid_sample_gmm)
    assert at.radio(key="sampler").value == "gmm"
    at.radio(key="sampler").set_value("normal")  # N(0, I): one z for every trial
    at.slider(key="temperature").set_value(0.5)
    at.slider(key="n").set_value(4)
    rerun(at)
    model, _, _ = load_model(best)
    z = 0.5 * torch.randn(4, model.latent_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model.decode(z)
    png = shown(at)[f"samples_{trials[0].key}"]
    for i in range(4):
        assert np.array_equal(tile(png, i // 2, i % 2), as_pixels(expected[i]))


def test_compare_the_best_two_at_the_same_z_in_one_click(page, work, run, trials):
    at = page(work / RESULTS)
    at.radio(key="sampler").set_value("normal")
    at.button(key="best_two").click()
    rerun(at)
    assert at.multiselect(key="trials").value == [trials[0].key, trials[1].key]
    for entry in trials[:2]:  # each the trial's own `vaetune sample` of the same seed: one z, same latent size
        out = f"s_{entry.key}.png"
        assert run("sample", entry.checkpoint, "--n", "16", "--sampler", "prior", "--out", out) == 0
        assert np.array_equal(pixels(shown(at)[f"samples_{entry.key}"]), pixels(work / out))
    assert not np.array_equal(*(pixels(shown(at)[f"samples_{e.key}"]) for e in trials[:2]))


def test_the_class_of_a_conditional_model(page, work, run, conditional):
    at = page(conditional)
    assert len(at.dataframe) == 0  # one model: no trial table
    at.selectbox(key="label").set_value(2)
    rerun(at)
    assert run("sample", str(conditional), "--n", "16", "--label", "2", "--out", "s_cond2.png") == 0
    png = shown(at)[f"samples_{conditional.name}"]
    assert np.array_equal(pixels(png), pixels(work / "s_cond2.png"))
    assert run("sample", str(conditional), "--n", "16", "--label", "0", "--out", "s_cond0.png") == 0
    assert not np.array_equal(pixels(png), pixels(work / "s_cond0.png"))


def test_remote_checkpoints_are_fetched_as_export_fetches_them(page, work, run, best, tmp_path):
    """A search whose checkpoints are in remote storage (a file:// URI: fetched through Ray's Checkpoint)."""
    moved = tmp_path / NAME
    shutil.copytree(work / RESULTS, moved, ignore=shutil.ignore_patterns("run_trial_*"))
    summary = pd.read_csv(moved / "summary.csv", dtype={"trial_id": str, "checkpoint": str, "trial_path": str})
    summary["checkpoint"] = "file://" + summary["checkpoint"]
    summary["trial_path"] = "file://" + summary["trial_path"]
    summary.to_csv(moved / "summary.csv", index=False)
    at = page(moved)
    best_key = at.multiselect(key="trials").value[0]
    assert run("sample", str(best), "--n", "16", "--out", "s_remote.png") == 0
    assert np.array_equal(pixels(shown(at)[f"samples_{best_key}"]), pixels(work / "s_remote.png"))


# ---------------------------------------------------------------------------------------------
# reconstructions, uploads, the latent explorer, interpolation


def test_an_uploaded_image_is_reconstructed_as_vaetune_reconstruct_does(page, work, run, best, pngs, trials):
    at = page(work / RESULTS)
    at.radio(key="section").set_value("Reconstructions")
    rerun(at)
    at.file_uploader(key="uploads").upload(pngs[0].name, pngs[0].read_bytes(), "image/png")
    rerun(at)
    assert run("reconstruct", str(best), str(pngs[0]), "--out", "recon_gallery") == 0
    expected = work / "recon_gallery" / f"{pngs[0].stem}_recon.png"
    assert np.array_equal(pixels(shown(at)[f"upload_{trials[0].key}_0"]), pixels(expected))


def test_compared_trials_reconstruct_the_same_validation_images(page, work, trials):
    at = page(work / RESULTS)
    at.button(key="best_two").click()
    at.radio(key="section").set_value("Reconstructions")
    rerun(at)
    at.slider(key="recon_n").set_value(5)
    rerun(at)
    first, second = (shown(at)[f"recon_{e.key}"] for e in trials[:2])
    originals = [tile(first, 0, c) for c in range(5)]
    assert all(np.array_equal(o, tile(second, 0, c)) for c, o in enumerate(originals))
    assert not all(np.array_equal(tile(first, 1, c), tile(second, 1, c)) for c in range(5))


@pytest.mark.parametrize("content", [b"this is not an image", b""])
def test_a_bad_upload_is_a_message_in_the_page(page, work, content):
    at = page(work / RESULTS)
    at.radio(key="section").set_value("Reconstructions")
    rerun(at)
    at.file_uploader(key="uploads").upload("notes.png", content, "image/png")
    rerun(at)
    errors = [e.value for e in at.error]
    assert errors and all("notes.png: not a usable image" in e and "\n" not in e for e in errors), errors
    assert "Traceback" not in " ".join(errors)


def test_the_explorer_at_the_image_s_own_code_is_its_reconstruction(page, work, run, best, pngs, trials):
    at = page(work / RESULTS)
    at.radio(key="section").set_value("Latent explorer")
    rerun(at)
    key = trials[0].key
    assert run("reconstruct", str(best), str(pngs[0]), "--out", "recon_explorer") == 0
    recon = tile(work / "recon_explorer" / f"{pngs[0].stem}_recon.png", 0, 1)
    png = shown(at)[f"explorer_{key}"]  # the image | its reconstruction | the sliders' code decoded
    assert np.array_equal(tile(png, 0, 1), recon) and np.array_equal(tile(png, 0, 2), recon)
    strip = shown(at)[f"traversal_{key}"]
    assert np.array_equal(tile(strip, 0, 4), recon)  # 9 steps: the centre is the code itself
    assert not np.array_equal(tile(strip, 0, 0), recon)

    slider = next(s for s in at.slider if str(s.key).startswith(f"z_{key}_0_"))
    dim = int(str(slider.key).rsplit("_", 1)[1])
    slider.set_value(2.0)
    rerun(at)
    model, config, _ = load_model(best)
    from vaetune.checkpoint import read_for_model

    with torch.no_grad():
        z = model.encode(read_for_model(str(pngs[0]), config))[0]
        z[0, dim] = 2.0
        moved = model.decode(z)[0]
    assert np.array_equal(tile(shown(at)[f"explorer_{key}"], 0, 2), as_pixels(moved))


def test_an_interpolation_is_vaetune_interpolate_s_from_one_reconstruction_to_the_other(page, work, run, best,
                                                                                          pngs, trials):
    at = page(work / RESULTS)
    at.radio(key="section").set_value("Interpolation")
    rerun(at)
    at.file_uploader(key="interp_up_A").upload(pngs[1].name, pngs[1].read_bytes(), "image/png")
    at.file_uploader(key="interp_up_B").upload(pngs[2].name, pngs[2].read_bytes(), "image/png")
    at.slider(key="interp_steps").set_value(6)
    rerun(at)
    png = shown(at)[f"interpolation_{trials[0].key}"]
    assert run("interpolate", str(best), str(pngs[1]), str(pngs[2]), "--steps", "6", "--out", "i_gallery.png") == 0
    assert np.array_equal(pixels(png), pixels(work / "i_gallery.png"))
    assert run("reconstruct", str(best), str(pngs[1]), str(pngs[2]), "--out", "recon_interp") == 0
    ra, rb = (tile(work / "recon_interp" / f"{p.stem}_recon.png", 0, 1) for p in pngs[1:3])
    for row in (0, 1):  # lerp, slerp: A | its reconstruction ... B's reconstruction | B
        assert np.array_equal(tile(png, row, 1), ra) and np.array_equal(tile(png, row, 6), rb)
    with Image.open(io.BytesIO(shown(at)[f"interpolation_{trials[0].key}_gif"])) as gif:
        assert gif.format == "GIF" and gif.n_frames == 2 * 6 - 2  # A to B and back


# ---------------------------------------------------------------------------------------------
# epochs, memory, export


def test_an_earlier_epoch_is_that_checkpoint_s_samples(page, work, run, trials):
    at = page(work / RESULTS)
    at.radio(key="sampler").set_value("normal")
    at.radio(key="section").set_value("Epochs and memory")
    rerun(at)
    slider = at.select_slider(key=f"epoch_{trials[0].key}")
    assert slider.value == 2  # the trial's best checkpoint (epoch 3) of its three kept ones
    slider.set_value(0)
    rerun(at)
    first = sorted(p for p in (work / RESULTS).glob(f"*{trials[0].key}*/checkpoint_000000"))[0]
    assert run("sample", str(first), "--n", "16", "--sampler", "prior", "--out", "s_epoch1.png") == 0
    assert np.array_equal(pixels(shown(at)[f"epoch_samples_{trials[0].key}"]), pixels(work / "s_epoch1.png"))
    assert any("samples at epoch 1" in c for image in at.get("image") for c in image.captions)


def test_the_nearest_training_image_of_a_sample(page, work, best, trials):
    from vaetune.data import load_data

    at = page(work / RESULTS)
    at.radio(key="sampler").set_value("normal")
    at.radio(key="section").set_value("Epochs and memory")
    rerun(at)
    at.number_input(key="memory").set_value(3)
    rerun(at)
    model, config, _ = load_model(best)
    with torch.no_grad():
        sample = model.decode(torch.randn(16, model.latent_dim, generator=torch.Generator().manual_seed(0)))[3]
    train_x, _ = load_data(config.data).subset("train")
    nearest = ((train_x.float() / 255 - sample) ** 2).flatten(1).sum(1).argmin()
    png = shown(at)[f"nearest_{trials[0].key}"]
    assert np.array_equal(tile(png, 0, 0), as_pixels(sample))
    assert np.array_equal(tile(png, 0, 1), train_x[nearest].permute(1, 2, 0).numpy())
    assert any("RMS pixel distance to the nearest training image" in m.value for m in at.markdown)


def test_export_writes_the_trial_s_checkpoint_as_vaetune_export_does(page, work, best, trials, tmp_path):
    gallery = open_gallery(work / RESULTS)
    mine = torch.load(io.BytesIO(export_bytes(gallery, trials[0].key)), weights_only=True)
    theirs = torch.load(best, weights_only=True)
    assert mine.keys() == theirs.keys()
    for key in ("config", "data", "epoch", "metrics", "source", "version", "trained_with_version"):
        assert mine[key] == theirs[key], key
    assert all(torch.equal(mine["model"][k], theirs["model"][k]) for k in theirs["model"])
    other = torch.load(io.BytesIO(export_bytes(gallery, trials[1].key)), weights_only=True)
    assert other["source"]["trial_id"] == trials[1].key
    assert other["source"]["selected_by"].startswith("chosen in vaetune gallery (#2 by min best/eval/fid_sample_gmm")
    (tmp_path / "other.pt").write_bytes(export_bytes(gallery, trials[1].key))
    assert load_model(tmp_path / "other.pt")[0].latent_dim == 4  # a checkpoint vaetune reads

    at = page(work / RESULTS)
    at.radio(key="section").set_value("Export")
    rerun(at)
    labels = [b.label for b in at.get("download_button")]
    assert any("as vaetune export writes it" in label and trials[0].key in label for label in labels), labels


def test_the_exported_checkpoint_opens_on_its_model(page, work, run, best):
    at = page(best)
    assert f"checkpoint {best.name}" in at.title[0].value
    assert run("sample", str(best), "--n", "16", "--out", "s_best.png") == 0
    assert np.array_equal(pixels(shown(at)[f"samples_{best.stem}"]), pixels(work / "s_best.png"))


# ---------------------------------------------------------------------------------------------
# bad input: one line, exit code 2, before any server starts


def _gallery_cli(cwd, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(vaetune("gallery", *args), cwd=cwd, env=user_env(), capture_output=True, text=True,
                          timeout=HANG_GUARD_S)


def _refused(done: subprocess.CompletedProcess, *said: str) -> None:
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vaetune gallery: error: "), done.stderr
    assert all(s in lines[0] for s in said), lines[0]
    assert "Streamlit" not in done.stdout and "127.0.0.1" not in done.stdout  # no server was started


def test_a_folder_that_is_not_a_search_is_refused(work, tmp_path):
    (tmp_path / "pictures").mkdir()
    (tmp_path / "pictures" / "a.png").write_bytes(b"")
    _refused(_gallery_cli(tmp_path, "pictures", "--port", str(free_port())),
             "pictures: not a search or sweep folder (no search.json)", "results/<name>")


def test_a_file_that_is_not_a_checkpoint_is_refused(tmp_path):
    (tmp_path / "notes.pt").write_text("not a checkpoint")
    _refused(_gallery_cli(tmp_path, "notes.pt", "--port", str(free_port())), "notes.pt: not a readable vaetune checkpoint")


def test_a_busy_port_is_refused(work):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        _refused(_gallery_cli(work, RESULTS, "--port", str(port)), f"--port: got {port}", "pass a free port")


# ---------------------------------------------------------------------------------------------
# the served page in headless Chromium


def test_the_served_gallery_in_chromium(work, run, best, trials, tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    assert run("sample", str(best), "--n", "16", "--out", "s_chromium.png") == 0  # what the page opens on: vaetune sample's default
    expected = pixels(work / "s_chromium.png")
    with serving(vaetune("gallery", RESULTS, "--port", str(port)), work, f"{url}/_stcore/health", tmp_path / "gallery.log"):
        with chromium_page(1600, 1200) as browser:
            browser.goto(url)
            images = '[data-testid="stImage"] img'
            browser.wait_for_function(f"() => [...document.querySelectorAll('{images}')].some(i => i.complete && i.naturalWidth > 0)")
            text = browser.inner_text("body")
            assert f"search {NAME}: 3 trials" in text and trials[0].label in text
            src = browser.locator(images).first.evaluate("i => i.src")  # absolute: the page resolved it
            served = pixels(browser.request.get(src).body())
            factor = served.shape[1] // expected.shape[1]  # shown scaled up by a whole factor, pixels kept sharp
            assert factor >= 2 and np.array_equal(served[::factor, ::factor], expected)

            browser.get_by_role("button", name="Compare the best two").click()
            browser.wait_for_function(f"() => document.querySelectorAll('{images}').length >= 2")
            browser.get_by_text(trials[1].label + " · epoch").first.wait_for()
            text = browser.inner_text("body")
            assert all(f"{e.label} · epoch 3" in text for e in trials[:2])
            assert "Traceback" not in text
            browser.screenshot(path=tmp_path / "gallery.png", full_page=True)

            browser.get_by_text("Reconstructions", exact=True).click()  # a file that is not an image, uploaded
            browser.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files(
                files=[{"name": "notes.png", "mimeType": "image/png", "buffer": b"this is not an image"}])
            said = browser.get_by_text("notes.png: not a usable image").first
            said.wait_for()
            assert "Traceback" not in browser.inner_text("body")
    with Image.open(tmp_path / "gallery.png") as shot:
        assert shot.width == 1600 and len(np.unique(np.asarray(shot.convert("L")))) > 16  # a page, not a blank
    assert "Traceback" not in (tmp_path / "gallery.log").read_text()  # nor in the terminal
