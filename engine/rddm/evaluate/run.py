"""`rddm eval`: synthesized test mosaics, the model and the classical chains, one report.

Pairs are made deterministically from each sRGB image (no tone curve, so the target's neutral
rendering is the image itself) for each noise level and Bayer pattern. Scores are computed on
neutral sRGB renderings with an 8-pixel border removed. Each classical chain (LibRaw AHD, AAHD,
DHT, then OpenCV non-local means and optionally BM3D) gets the denoiser and strength that give
it the best mean PSNR at each noise level, chosen on the evaluated images themselves: an oracle
tuning that can only favour the baselines.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import piq
import torch
from skimage.metrics import structural_similarity

from rddm.color import render_srgb
from rddm.evaluate.baselines import classical_candidates
from rddm.raw import CFA_PATTERNS, RawImage
from rddm.restore import packed_tiling
from rddm.synth import SynthConfig, pair_rng, synthesize_pair
from rddm.synth.dataset import list_images, read_srgb
from rddm.synth.noise import NOISE_LEVELS, reference_noise

BORDER = 8
METRICS = ("psnr", "ssim", "haarpsi", "stlpips")
MOSAICS = ("camera", "srgb")
DEFAULT_SETS = ("../shared/data/srgb-bench/kodak24", "../shared/data/srgb-bench/mcmaster18")


@dataclasses.dataclass
class EvalSettings:
    datasets: tuple[str, ...] = DEFAULT_SETS
    levels: tuple[str, ...] = ("none", "low", "mid", "high")
    patterns: tuple[str, ...] = CFA_PATTERNS
    strengths: tuple[float, ...] = (0.0, 0.5, 1.0)
    images: int | None = None  # first N images of each set (all by default)
    crop: int | None = None  # centre crop, for quick runs
    demosaics: tuple[str, ...] = ("ahd", "aahd", "dht")
    denoisers: tuple[str, ...] = ("nlm", "bm3d")
    bm3d_demosaics: tuple[str, ...] | None = None  # demosaics BM3D follows (None: all; it is slow)
    seed: int = 0
    # "camera": mosaics in real cameras' colour spaces (a random mix of real matrices, white balance
    # undone); "srgb": the usual demosaicking protocol's, linear sRGB itself, neutral white balance.
    mosaic: str = "camera"
    darktable: bool = False  # darktable-cli's demosaic + profiled denoise (rddm.evaluate.darktable)
    workers: int = 1  # processes for the classical chains (they do not change the rows)

    @classmethod
    def from_results(cls, results: dict) -> EvalSettings:
        """The settings an ``rddm eval`` run wrote into its results.json (fields it lacks: defaults)."""
        fields = {field.name for field in dataclasses.fields(cls)}
        saved = results["settings"].items()
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in saved if k in fields})


@functools.lru_cache(maxsize=1)
def _stlpips():
    """Shift-tolerant LPIPS (AlexNet), weights from its wheel: nothing is downloaded."""
    with contextlib.redirect_stdout(io.StringIO()):  # it announces its set-up on stdout
        from stlpips_pytorch import stlpips

        return stlpips.LPIPS(net="alex", variant="shift_tolerant").eval()


def psnr(prediction: np.ndarray, reference: np.ndarray) -> float:
    """PSNR (dB) of two sRGB renderings in [0, 1], border removed, as :func:`scores` has it."""
    a = np.clip(prediction, 0, 1)[BORDER:-BORDER, BORDER:-BORDER].astype(np.float64)
    b = reference[BORDER:-BORDER, BORDER:-BORDER].astype(np.float64)
    return float(10 * np.log10(1.0 / max(np.mean((a - b) ** 2), 1e-12)))


def scores(prediction: np.ndarray, reference: np.ndarray) -> dict:
    """PSNR (dB), SSIM, HaarPSI (higher is better) and shift-tolerant LPIPS (lower is better) of
    two sRGB renderings in [0, 1], border removed."""
    a = np.clip(prediction, 0, 1)[BORDER:-BORDER, BORDER:-BORDER].astype(np.float64)
    b = reference[BORDER:-BORDER, BORDER:-BORDER].astype(np.float64)
    to_tensor = lambda x: torch.from_numpy(x.transpose(2, 0, 1)[None].astype(np.float32))  # noqa: E731
    return {
        "psnr": psnr(prediction, reference),
        "ssim": float(structural_similarity(a, b, channel_axis=2, data_range=1.0)),
        "haarpsi": float(piq.haarpsi(to_tensor(a), to_tensor(b), data_range=1.0)),
        "stlpips": _stlpips_distance(to_tensor(a), to_tensor(b)),
    }


@torch.no_grad()
def _stlpips_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(_stlpips()(a * 2 - 1, b * 2 - 1))


def _tiling(pipeline) -> dict:
    """The CLI's and engine's tiles (rddm.restore.packed_tiling), so a score is what a user gets."""
    tile_size, tile_overlap = packed_tiling(pipeline)
    return {"tile_size": tile_size, "tile_overlap": tile_overlap}


def _centre_crop(image: np.ndarray, size: int | None) -> np.ndarray:
    if not size:
        return image
    height, width = image.shape[:2]
    top, left = max(0, (height - size) // 4 * 2), max(0, (width - size) // 4 * 2)
    return image[top : top + size, left : left + size]


def _pair(image, level: str, pattern: str, seed: int, keys, mosaic: str = "camera"):
    if mosaic not in MOSAICS:
        raise ValueError(f"mosaic must be one of {', '.join(MOSAICS)}, not {mosaic!r}")
    iso = NOISE_LEVELS[level]
    config = SynthConfig(
        noise="none" if iso is None else "reference", iso=iso, tone_curve=False, srgb_camera=mosaic == "srgb"
    )
    return synthesize_pair(image, config, pair_rng(seed, *keys), cfa_pattern=pattern)


# Settings that decide the test pairs and the classical rows (not the model's strengths).
_CLASSICAL_KEYS = ("datasets", "levels", "patterns", "images", "crop", "demosaics", "seed", "mosaic")
# (darktable's rows are reused when the earlier run has them, and computed otherwise; so are the
# rows of a denoiser the earlier run did not have.)
# The LibRaw call's version, written into results.json: rows of another version are not reused.
# 2: LibRaw keeps the DNG's white level (2026-11-30; version 1, unmarked, let LibRaw raise it).
LIBRAW_ROWS_VERSION = 2


def load_classical(path: str | Path, settings: EvalSettings) -> dict:
    """The classical rows of an earlier ``results.json`` made with the same pairs, keyed by
    (dataset, image, level, pattern): the chains are deterministic, so a model's evaluation need
    not run them again. Rows of denoisers ``settings`` does not ask for are left out; those it asks
    for and the earlier run lacks are computed by :func:`evaluate`. Raises ValueError when the
    earlier run's pairs differ. The LibRaw rows of a file made by another version of the LibRaw call
    (:data:`LIBRAW_ROWS_VERSION`) are left out too, and so computed again."""
    try:
        earlier = json.loads(Path(path).read_text(encoding="utf-8"))
        old = earlier["settings"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path}: not an rddm eval results.json ({error.__class__.__name__})") from None
    new, default = dataclasses.asdict(settings), dataclasses.asdict(EvalSettings())
    differ = [k for k in _CLASSICAL_KEYS if list(_as_list(old.get(k, default[k]))) != list(_as_list(new[k]))]
    if differ:
        raise ValueError(f"{path}: made with other settings ({', '.join(differ)}); run without it")
    cache = defaultdict(list)
    wanted = set(classical_chains(settings)) if earlier.get("libraw_rows") == LIBRAW_ROWS_VERSION else set()
    for row in earlier.get("rows", []):
        if "denoise" not in row:
            continue
        if row["method"].startswith("darktable") or tuple(row["method"].split("+")) in wanted:
            cache[(row["dataset"], row["image"], row["level"], row["pattern"])].append(row)
    return dict(cache)


def classical_chains(settings: EvalSettings) -> list[tuple[str, str]]:
    """The (demosaic, denoiser) chains ``settings`` asks for."""
    return [
        (algorithm, denoiser)
        for algorithm in settings.demosaics
        for denoiser in settings.denoisers
        if denoiser != "bm3d" or settings.bm3d_demosaics is None or algorithm in settings.bm3d_demosaics
    ]


def _as_list(value):
    return value if isinstance(value, (list, tuple)) else [value]


def evaluate(
    models: dict, settings: EvalSettings, progress=None, classical: dict | None = None
) -> list[dict]:
    """Rows of scores: one per image x level x pattern x method (models at each strength, and the
    classical candidates). ``models`` maps a label to an RDDMPipeline; ``classical`` (from
    :func:`load_classical`) supplies the classical rows instead of running the chains."""
    rows = []
    sources = [
        (Path(folder).name, path)
        for folder in settings.datasets
        for path in list_images(folder)[: settings.images]
    ]
    tasks = [(s, lv, p) for s in sources for lv in settings.levels for p in settings.patterns]
    pending: dict = defaultdict(dict)  # level -> pairs for darktable, rendered per level at the end
    chains = []  # classical chains to run: (base, image, level, pattern, keys, [(demosaic, denoiser)])
    for (dataset, path), level, pattern in progress(tasks) if progress else tasks:
        image = _centre_crop(read_srgb(path), settings.crop)
        keys = (sources.index((dataset, path)), settings.levels.index(level), CFA_PATTERNS.index(pattern))
        pair = _pair(image, level, pattern, settings.seed, keys, settings.mosaic)
        reference = render_srgb(pair.hq, pair.xyz_to_cam)
        base = {"dataset": dataset, "image": path.stem, "level": level, "pattern": pattern}
        raw = RawImage(
            cfa=pair.lq_cfa, cfa_pattern=pattern, wb_gains=pair.wb_gains, xyz_to_cam=pair.xyz_to_cam
        )
        for label, pipeline in models.items():
            ends = pipeline.restore_ends(raw, **_tiling(pipeline))
            for strength in settings.strengths:
                rendered = render_srgb(ends.blend(strength), pair.xyz_to_cam)
                rows.append({**base, "method": f"{label} s={strength:g}", **scores(rendered, reference)})
        key = (dataset, path.stem, level, pattern)
        cached = (classical or {}).get(key, [])
        libraw = [r for r in cached if not r["method"].startswith("darktable")]
        rows += libraw
        have = {tuple(r["method"].split("+")) for r in libraw}
        missing = [chain for chain in classical_chains(settings) if chain not in have]
        if missing:
            chains.append((base, image, level, pattern, keys, missing))
        darktable = [r for r in cached if r["method"].startswith("darktable")]
        if settings.darktable and darktable:
            rows += darktable
        elif settings.darktable:
            pending[level][key] = (image, pattern, keys)
    rows += _run_chains(chains, settings, progress)
    for level, tasks in pending.items():
        rows += _darktable_rows(level, tasks, settings)
    return rows


def _run_chains(chains: list, settings: EvalSettings, progress=None) -> list[dict]:
    """The LibRaw + denoiser rows of ``chains``, in ``settings.workers`` processes (fresh ones:
    OpenCV's and torch's thread pools do not survive a fork)."""
    if not chains:
        return []
    jobs = [(*chain, settings) for chain in chains]
    if settings.workers <= 1 or len(jobs) == 1:
        return [row for job in (progress(jobs) if progress else jobs) for row in _chain_rows(job)]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(settings.workers, mp_context=context, initializer=_one_thread) as pool:
        futures = [pool.submit(_chain_rows, job) for job in jobs]
        return [row for future in (progress(futures) if progress else futures) for row in future.result()]


def _one_thread() -> None:
    import cv2

    cv2.setNumThreads(1)
    torch.set_num_threads(1)


def _chain_rows(job) -> list[dict]:
    base, image, level, pattern, keys, chains, settings = job
    pair = _pair(image, level, pattern, settings.seed, keys, settings.mosaic)
    return [{**row, **base} for row in _classical_rows(pair, chains)]


def _darktable_rows(level: str, tasks: dict, settings: EvalSettings) -> list[dict]:
    """darktable-cli's chain on every pair of one level, every strength (see rddm.evaluate.darktable)."""
    import tempfile

    from rddm.evaluate.darktable import find_darktable_cli, matched_srgb, render_level

    darktable_cli = find_darktable_cli()
    if darktable_cli is None:
        raise RuntimeError("--darktable needs darktable-cli (install darktable)")
    pairs = {
        f"m{index:05d}": (key, _pair(image, level, pattern, settings.seed, keys, settings.mosaic))
        for index, (key, (image, pattern, keys)) in enumerate(tasks.items())
    }
    iso = NOISE_LEVELS[level]
    noise = None if iso is None else reference_noise(iso)
    rows = []
    with tempfile.TemporaryDirectory(prefix="rddm-dt-") as folder:
        mosaics = {name: pair for name, (_, pair) in pairs.items()}
        for name, strength, rendered in render_level(mosaics, noise, darktable_cli, Path(folder)):
            (dataset, image, _, pattern), pair = pairs[name]
            matched = matched_srgb(rendered, pair)
            reference = render_srgb(pair.hq, pair.xyz_to_cam)
            rows.append(
                {
                    "dataset": dataset,
                    "image": image,
                    "level": level,
                    "pattern": pattern,
                    "method": "darktable+denoiseprofile",
                    "denoise": strength,
                    **scores(matched, reference),
                }
            )
    return rows


def best_classical(rows: list[dict]) -> list[dict]:
    """Each classical chain at its best strength per (dataset, level): the tuned baselines."""
    means = defaultdict(list)
    for row in rows:
        if "denoise" in row:
            means[(row["dataset"], row["level"], row["method"], row["denoise"])].append(row["psnr"])
    best = {}
    for (dataset, level, method, value), values in means.items():
        key = (dataset, level, method.split("+")[0])
        if key not in best or np.mean(values) > best[key][1]:
            best[key] = ((method, value), np.mean(values))
    chosen = []
    for row in rows:
        if "denoise" in row:
            winner = best[(row["dataset"], row["level"], row["method"].split("+")[0])][0]
            if (row["method"], row["denoise"]) == winner:
                chosen.append({**row, "method": f"{row['method'].split('+')[0]}+{winner[0].split('+')[1]}"})
        else:
            chosen.append(row)
    return chosen


def summarise(rows: list[dict]) -> dict:
    """Mean scores per (dataset, level, method) and per (dataset, level, pattern, method)."""
    groups = defaultdict(list)
    for row in rows:
        groups[(row["dataset"], row["level"], row["method"])].append(row)
        groups[(row["dataset"], row["level"], row["method"], row["pattern"])].append(row)
    return {
        key: {metric: float(np.mean([r[metric] for r in members])) for metric in METRICS}
        for key, members in groups.items()
    }


def write_report(rows: list[dict], settings: EvalSettings, out: Path, command: str) -> Path:
    """``report.md`` (tables), ``results.json`` (every row) and ``psnr_vs_noise.png``."""
    out.mkdir(parents=True, exist_ok=True)
    chosen = best_classical(rows)
    summary = summarise(chosen)
    methods = list(dict.fromkeys(r["method"] for r in chosen))
    lines = [
        "# rddm evaluation",
        "",
        f"Command: `{command}`",
        "",
        f"Images: first {settings.images or 'all'} of each set"
        + (f", centre crop {settings.crop} px" if settings.crop else "")
        + f"; patterns {', '.join(settings.patterns)}; noise levels: none, and the median darktable"
        " camera profile at ISO 800 (low) / 3200 (mid) / 12800 (high). Scores on the neutral sRGB"
        " rendering, 8 px border removed; classical denoisers tuned per level (oracle)."
        + (
            " Mosaics: linear sRGB with neutral white balance (the usual demosaicking protocol's)."
            if settings.mosaic == "srgb"
            else " Mosaics: real cameras' colour spaces (random mix of real matrices, white balance undone)."
        )
        + (
            " darktable+denoiseprofile: darktable-cli's default demosaic and profiled denoise with"
            " the true noise profile, its colours matched to the reference by a per-image 3x3 fit"
            " (oracle)."
            if settings.darktable
            else ""
        ),
        "",
    ]
    for dataset in dict.fromkeys(r["dataset"] for r in chosen):
        lines += [
            f"## {dataset}: PSNR dB / SSIM / HaarPSI / ST-LPIPS (lower is better)",
            "",
            "| method | " + " | ".join(settings.levels) + " |",
        ]
        lines.append("|---|" + "---|" * len(settings.levels))
        for method in methods:
            cells = []
            for level in settings.levels:
                value = summary.get((dataset, level, method))
                cells.append(
                    " / ".join(f"{value[m]:.{2 if m == 'psnr' else 3}f}" for m in METRICS) if value else "-"
                )
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        lines += [
            "",
            f"PSNR per pattern ({dataset})",
            "",
            "| method | level | " + " | ".join(settings.patterns) + " |",
        ]
        lines.append("|---|---|" + "---|" * len(settings.patterns))
        for method in methods:
            for level in settings.levels:
                cells = [summary.get((dataset, level, method, p), {}).get("psnr") for p in settings.patterns]
                lines.append(
                    f"| {method} | {level} | " + " | ".join(f"{c:.2f}" if c else "-" for c in cells) + " |"
                )
        lines.append("")
    (out / "report.md").write_text("\n".join(lines), encoding="utf-8")
    (out / "results.json").write_text(
        json.dumps(
            {"settings": dataclasses.asdict(settings), "libraw_rows": LIBRAW_ROWS_VERSION, "rows": rows}
        )
    )
    _plot(summary, methods, settings, out / "psnr_vs_noise.png")
    return out / "report.md"


def _plot(summary: dict, methods: list[str], settings: EvalSettings, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = list(dict.fromkeys(key[0] for key in summary))
    figure, axes = plt.subplots(1, len(datasets), figsize=(5 * len(datasets) + 3, 4), squeeze=False)
    colours = plt.get_cmap("tab20").colors  # one colour per method (tab10 repeats after ten)
    for axis, dataset in zip(axes[0], datasets, strict=True):
        for index, method in enumerate(methods):
            values = [
                summary.get((dataset, level, method), {}).get("psnr", np.nan) for level in settings.levels
            ]
            classical = " s=" not in method  # classical chains dashed, models (at a strength) solid
            axis.plot(
                settings.levels,
                values,
                marker="s" if classical else "o",
                linestyle="--" if classical else "-",
                color=colours[(2 * index if index < 10 else 2 * (index - 10) + 1) % 20],
                label=method,
            )
        axis.set_title(dataset)
        axis.set_xlabel("noise level")
        axis.set_ylabel("PSNR (dB, sRGB)")
        axis.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def crop_mosaic(models: dict, settings: EvalSettings, out: Path, size: int = 96) -> Path:
    """The same region of the first image at the highest level, for every method, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dataset_folder = settings.datasets[0]
    path = list_images(dataset_folder)[0]
    image = _centre_crop(read_srgb(path), settings.crop)
    level, pattern = settings.levels[-1], settings.patterns[0]
    keys = (0, settings.levels.index(level), CFA_PATTERNS.index(pattern))
    pair = _pair(image, level, pattern, settings.seed, keys, settings.mosaic)
    panels = {"target": render_srgb(pair.hq, pair.xyz_to_cam)}
    raw = RawImage(cfa=pair.lq_cfa, cfa_pattern=pattern, wb_gains=pair.wb_gains, xyz_to_cam=pair.xyz_to_cam)
    for label, pipeline in models.items():
        ends = pipeline.restore_ends(raw, **_tiling(pipeline))
        for strength in settings.strengths:
            panels[f"{label} s={strength:g}"] = render_srgb(ends.blend(strength), pair.xyz_to_cam)
    chains = classical_chains(settings)
    for algorithm in settings.demosaics:  # each chain at its best denoiser and strength on this pair
        denoisers = tuple(d for a, d in chains if a == algorithm)
        if not denoisers:  # e.g. --denoisers bm3d --bm3d-after dht: no chain after this demosaic
            continue
        candidates = classical_candidates(
            pair.lq_cfa, pattern, pair.wb_gains, pair.xyz_to_cam, algorithm, denoisers
        )
        (denoiser, _), best = max(candidates.items(), key=lambda item: psnr(item[1], panels["target"]))
        panels[f"{algorithm}+{denoiser}"] = best
    if settings.darktable:
        panels["darktable+denoiseprofile"] = _best_darktable_render(pair, level, panels["target"])
    height, width = panels["target"].shape[:2]
    top, left = (height - size) // 2, (width - size) // 2
    figure, axes = plt.subplots(1, len(panels), figsize=(2.2 * len(panels), 2.6))
    for axis, (name, panel) in zip(axes, panels.items(), strict=True):
        axis.imshow(np.clip(panel[top : top + size, left : left + size], 0, 1), interpolation="nearest")
        axis.set_title(name, fontsize=7)
        axis.axis("off")
    figure.suptitle(f"{path.name}, {level} noise, {pattern}, {size}x{size} centre crop", fontsize=8)
    figure.tight_layout()
    target = out / "crops.png"
    figure.savefig(target, dpi=130)
    plt.close(figure)
    return target


def _best_darktable_render(pair, level: str, reference: np.ndarray) -> np.ndarray:
    """darktable's rendering of ``pair`` at the strength that scores best on it (as the LibRaw
    chains' panels are chosen), colour-matched and encoded."""
    import tempfile

    from rddm.evaluate.darktable import find_darktable_cli, matched_srgb, render_level

    iso = NOISE_LEVELS[level]
    best, best_psnr = None, -np.inf
    with tempfile.TemporaryDirectory(prefix="rddm-dt-") as folder:
        noise = None if iso is None else reference_noise(iso)
        for _, _, rendered in render_level({"m": pair}, noise, find_darktable_cli(), Path(folder)):
            encoded = matched_srgb(rendered, pair)
            value = psnr(encoded, reference)
            if value > best_psnr:
                best, best_psnr = encoded, value
    return best


def _classical_rows(pair, chains: list[tuple[str, str]]) -> list[dict]:
    """Every strength of each (demosaic, denoiser) chain on ``pair``."""
    reference = render_srgb(pair.hq, pair.xyz_to_cam)
    rows = []
    for algorithm in dict.fromkeys(a for a, _ in chains):
        denoisers = tuple(d for a, d in chains if a == algorithm)
        candidates = classical_candidates(
            pair.lq_cfa, pair.cfa_pattern, pair.wb_gains, pair.xyz_to_cam, algorithm, denoisers
        )
        for (denoiser, value), rendered in candidates.items():
            base = {"dataset": "-", "image": "-", "level": "-", "pattern": pair.cfa_pattern}
            rows.append(
                {**base, "method": f"{algorithm}+{denoiser}", "denoise": value, **scores(rendered, reference)}
            )
    return rows
