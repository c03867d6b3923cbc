"""Validation encodings in 2-D coloured by a label, and the decoded latent plane of a 1-D/2-D latent."""

from __future__ import annotations

import torch

from vaetune.errors import UserError
from vaetune.viz._grids import FIG_DPI, figure_png
from vaetune.viz._latent import encode_all


def project_2d(mu: torch.Tensor) -> tuple[torch.Tensor, list[str]]:
    """(N, 2) coordinates and axis names: the latent itself for D <= 2, else its top 2 principal components."""
    d = mu.shape[1]
    if d == 1:
        jitter = torch.rand(len(mu), generator=torch.Generator().manual_seed(0)) - 0.5
        return torch.stack([mu[:, 0], jitter], 1), ["z[0]", "jitter (no meaning)"]
    if d == 2:
        return mu, ["z[0]", "z[1]"]
    centred = mu - mu.mean(0)
    _, s, v = torch.linalg.svd(centred, full_matrices=False)
    share = (s**2 / (s**2).sum()).tolist()
    return centred @ v[:2].T, [f"PC1 ({100 * share[0]:.0f}% of variance)", f"PC2 ({100 * share[1]:.0f}%)"]


def check_grid_steps(steps: int) -> None:
    """`--grid-steps` of `vaetune manifold`: a plane of one image per side shows nothing of it."""
    if steps < 2:
        raise UserError(f"--grid-steps: got {steps}; give at least 2")


def latent_plane(model, steps: int, y: torch.Tensor | None) -> tuple[torch.Tensor, int]:
    """Images decoded over a 1-D line or 2-D plane at normal quantiles 5%..95%; (images, columns)."""
    check_grid_steps(steps)
    from scipy.stats import norm

    q = torch.tensor(norm.ppf(torch.linspace(0.05, 0.95, steps).numpy()), dtype=torch.float32)
    if model.latent_dim == 1:
        z = q[:, None]
    else:  # rows from high z[1] (top) to low, columns from low z[0] to high
        z = torch.stack([torch.stack([a, b]) for b in q.flip(0) for a in q])
    with torch.no_grad():
        return model.decode(z, None if y is None else y[:1].expand(len(z))), steps


def manifold_figure(coords: torch.Tensor, axes: list[str], labels: torch.Tensor | None, names: list[str],
                    label_name: str | None, title: str) -> bytes:
    import matplotlib
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 6), dpi=FIG_DPI, layout="constrained")
    ax = fig.subplots()
    xy = coords.numpy()
    if labels is None:
        ax.scatter(xy[:, 0], xy[:, 1], s=10, alpha=0.7, color="steelblue")
    elif len(names) <= 10:
        # classes named after colours (the sprites' "colour") are drawn in their own colour
        named = all(matplotlib.colors.is_color_like(n) for n in names)
        cmap = matplotlib.colormaps["tab10"]
        for k, name in enumerate(names):
            sel = (labels == k).numpy()
            if sel.any():
                ax.scatter(xy[sel, 0], xy[sel, 1], s=12, alpha=0.8, color=name if named else cmap(k), label=name,
                           edgecolors="0.3" if named else "none", linewidths=0.4)
        ax.legend(title=label_name, fontsize=8, markerscale=2, loc="best")
    else:
        sc = ax.scatter(xy[:, 0], xy[:, 1], s=10, alpha=0.75, c=labels.numpy(), cmap="viridis")
        fig.colorbar(sc, ax=ax, label=label_name)
    ax.set_xlabel(axes[0])
    ax.set_ylabel(axes[1])
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return figure_png(fig)


@torch.no_grad()
def manifold_picture(model, data, x: torch.Tensor, y: torch.Tensor | None, *, label: str | None) -> bytes:
    """`vaetune manifold`: the validation encodings in 2-D, coloured by `label` (default: the first)."""
    mu, _ = encode_all(model, x, y if model.num_classes else None)
    coords, axes = project_2d(mu)
    label_name = label or data.primary_label
    labels, names = None, []
    if label_name is not None:
        if label_name not in data.labels:
            raise UserError(f"--label: got {label_name!r}; this data has labels: {', '.join(data.labels) or 'none'}")
        labels = data.labels[label_name][data.splits["val"]]
        names = data.label_names.get(label_name, [])
    title = f"{len(x)} validation encodings, {model.latent_dim}-D latent" + (" (PCA)" if model.latent_dim > 2 else "")
    return manifold_figure(coords, axes, labels, names, label_name, title)
