"""The preview window: overview and region marker, before/after of the region, strength, export."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from PyQt6.QtCore import QRect, QSettings, QSize, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QCloseEvent, QImage, QKeySequence, QShortcut
from PyQt6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSlider,
    QSpinBox,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from rddm_preview.compare import MODES, Compare
from rddm_preview.engine import Engine, EngineProblem
from rddm_preview.export import ExportDialog, format_box
from rddm_preview.overview import Overview
from rddm_preview.strip import STRIP_STRENGTHS, StrengthStrip, centre_crop
from rddm_preview.tasks import Tasks

OVERVIEW_SIZE = 1024  # the overview's longer side in pixels: a classical render, fast at any size
REGION_SIZES = (256, 384, 512, 768, 1024, 1536, 2048)
DEFAULT_REGION = 512
PRESETS = {"Faithful": 0, "Light": 25, "Balanced": 50, "Strong": 75, "Full": 100}


@dataclass
class Options:
    """How the window was started (see ``rddm-preview --help``)."""

    engine_url: str | None = None
    state_dir: str | None = None
    start_options: tuple[str, ...] = ()
    roi: tuple[int, int, int, int] | None = None
    strength: int | None = None
    apply: bool = False


def decode(png: bytes) -> QImage:
    image = QImage.fromData(png, "PNG")
    if image.isNull():
        raise EngineProblem("the engine sent an image that cannot be decoded")
    return image


class PreviewWindow(QMainWindow):
    """One RAW at a time. Every engine call runs in a worker thread; a result that arrives for a
    region or a file that is no longer the current one is dropped (that is how cancel works: the
    engine has no per-preview cancel, and what it computed stays in its cache)."""

    region_ready = pyqtSignal()  # both images of a new region are shown
    after_ready = pyqtSignal()  # the after image changed (new strength or new region)
    strip_ready = pyqtSignal()
    export_finished = pyqtSignal(str)  # the output path, or "" when it failed or was cancelled
    problem_shown = pyqtSignal(str)
    closed = pyqtSignal()

    def __init__(self, settings: QSettings, options: Options | None = None):
        super().__init__()
        self.settings, self.options = settings, options or Options()
        self.tasks = Tasks(self)
        self.engine: Engine | None = None
        self.path = ""
        self.info: dict = {}
        self.picture = QSize()
        self.region = QRect()  # the region whose images are shown
        self.generation = 0  # bumped by every new file or region: older results are stale
        self.region_busy = False
        self.after_in_flight = False
        self.shown_strength: int | None = None
        self.last_after_cached = False  # whether the last strength change was a blend of cached ends
        self.model_previews = 0  # previews the engine had to run the model for (cache misses)
        self.export_cancel: threading.Event | None = None
        self.applied = False
        self._busy_since = 0.0
        self._tick = QTimer(self, interval=200, timeout=self._show_elapsed)
        self._build()
        self._restore_settings()
        self._shortcuts()
        self._view_changed()

    # -- layout --------------------------------------------------------------------------------
    def _build(self) -> None:
        self.setWindowTitle("rddm preview")
        self.compare = Compare(self)
        self.compare.set_placeholder("Open a RAW file")
        self.strip = StrengthStrip(self)
        self.strip.strength_picked.connect(self.set_strength)
        self.problem = QLabel(self, objectName="problem", wordWrap=True)
        self.problem.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.problem.hide()
        self.retry = QPushButton("Retry", self, clicked=self.reload)
        self.retry.hide()
        problem_row = QHBoxLayout()
        problem_row.addWidget(self.problem, 1)
        problem_row.addWidget(self.retry)

        view_bar = QHBoxLayout()
        self.file_label = QLabel(self)
        self.file_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        view_bar.addWidget(
            QPushButton("Open…", self, clicked=self.choose_file, focusPolicy=Qt.FocusPolicy.NoFocus)
        )
        view_bar.addWidget(self.file_label, 1)
        self.mode = QComboBox(self, focusPolicy=Qt.FocusPolicy.NoFocus)
        for mode, text in MODES.items():
            self.mode.addItem(text, mode)
        self.mode.currentIndexChanged.connect(lambda _: self.compare.set_mode(self.mode.currentData()))
        self.compare.view_changed.connect(self._view_changed)
        view_bar.addWidget(self.mode)
        for text, zoom, tip in (("Fit", None, "F"), ("1:1", 1.0, "1"), ("2:1", 2.0, "2")):
            button = QToolButton(
                self, text=text, toolTip=f"{text} ({tip})", focusPolicy=Qt.FocusPolicy.NoFocus
            )
            button.clicked.connect(lambda _=False, value=zoom: self.compare.set_zoom(value))
            view_bar.addWidget(button)
        self.zoom_label = QLabel(self, minimumWidth=48)
        view_bar.addWidget(self.zoom_label)

        main = QWidget(self)
        main_column = QVBoxLayout(main)
        main_column.setContentsMargins(8, 8, 4, 8)
        main_column.addLayout(view_bar)
        main_column.addWidget(self.compare, 1)
        main_column.addLayout(problem_row)
        strip_scroll = QScrollArea(main, widgetResizable=True, frameShape=QFrame.Shape.NoFrame)
        strip_scroll.setWidget(self.strip)
        strip_scroll.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        strip_scroll.setFixedHeight(self.strip.sizeHint().height() + 14)  # room for a scroll bar
        main_column.addWidget(strip_scroll)

        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.addWidget(main)
        self.splitter.addWidget(self._sidebar())
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 0)
        self.splitter.setSizes([980, 320])
        self.setCentralWidget(self.splitter)

        self.busy = QProgressBar(self, maximumWidth=140, textVisible=False)
        self.busy.setRange(0, 0)  # the engine reports no progress for a preview: a busy indicator
        self.busy_label = QLabel(self)
        self.cancel_button = QPushButton("Cancel", self, clicked=self.cancel_region)
        self.statusBar().addWidget(self.busy)
        self.statusBar().addWidget(self.busy_label, 1)
        self.statusBar().addPermanentWidget(self.cancel_button)
        self._set_busy("")

    def _sidebar(self) -> QWidget:
        side = QWidget(self)
        column = QVBoxLayout(side)
        column.setContentsMargins(4, 8, 8, 8)
        self.overview = Overview(side)
        self.overview.region_chosen.connect(self.choose_region)
        column.addWidget(self.overview)
        region_row = QHBoxLayout()
        region_row.addWidget(QLabel("Region", side))
        self.region_size = QComboBox(side, focusPolicy=Qt.FocusPolicy.NoFocus)
        for size in REGION_SIZES:
            self.region_size.addItem(f"{size} × {size}", f"{size}x{size}")
        self.region_size.activated.connect(self._region_size_changed)
        region_row.addWidget(self.region_size, 1)
        column.addLayout(region_row)

        strength_box = QGroupBox("Strength", side)
        strength_column = QVBoxLayout(strength_box)
        slider_row = QHBoxLayout()
        self.slider = QSlider(Qt.Orientation.Horizontal, strength_box, minimum=0, maximum=100, pageStep=5)
        self.slider.setToolTip("0 keeps the sensor's detail as it is, 100 is the full restoration")
        self.spin = QSpinBox(strength_box, minimum=0, maximum=100)
        self.slider.valueChanged.connect(self.spin.setValue)
        self.spin.valueChanged.connect(self.slider.setValue)
        self.slider.valueChanged.connect(self._strength_changed)
        slider_row.addWidget(self.slider, 1)
        slider_row.addWidget(self.spin)
        strength_column.addLayout(slider_row)
        preset_row = QHBoxLayout()
        preset_row.setSpacing(2)
        for name, value in PRESETS.items():
            button = QToolButton(strength_box, text=name, toolTip=f"{name}: {value}")
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            button.clicked.connect(lambda _=False, chosen=value: self.set_strength(chosen))
            preset_row.addWidget(button)
        strength_column.addLayout(preset_row)
        column.addWidget(strength_box)

        output_box = QGroupBox("Output", side)
        output_column = QVBoxLayout(output_box)
        self.format = format_box(output_box)
        output_column.addWidget(self.format)
        buttons = QHBoxLayout()
        self.export_button = QPushButton("Export…", output_box, clicked=self.ask_export)
        self.apply_button = QPushButton("Apply", output_box, clicked=self.apply_choice)
        self.apply_button.setToolTip("Hand the strength and format back to darktable and close")
        self.apply_button.setVisible(self.options.apply)
        buttons.addWidget(self.export_button)
        buttons.addWidget(self.apply_button)
        output_column.addLayout(buttons)
        self.export_progress = QProgressBar(output_box)
        self.export_progress.setRange(0, 100)
        self.export_progress.hide()
        self.export_cancel_button = QPushButton("Cancel export", output_box, clicked=self.cancel_export)
        self.export_cancel_button.hide()
        self.export_label = QLabel(output_box, wordWrap=True)
        self.export_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        output_column.addWidget(self.export_progress)
        output_column.addWidget(self.export_cancel_button)
        output_column.addWidget(self.export_label)
        column.addWidget(output_box)
        column.addStretch(1)
        return side

    def _shortcuts(self) -> None:
        for keys, action in (
            (("Space",), self.compare.toggle_before_after),
            (("+", "="), self.compare.zoom_in),
            (("-",), self.compare.zoom_out),
            (("1",), lambda: self.compare.set_zoom(1.0)),
            (("2",), lambda: self.compare.set_zoom(2.0)),
            (("F",), lambda: self.compare.set_zoom(None)),
            (("Escape",), self.cancel_region),
            ((QKeySequence.StandardKey.Open,), self.choose_file),
        ):
            for key in keys:
                QShortcut(QKeySequence(key), self, activated=action)

    # -- settings ------------------------------------------------------------------------------
    def _restore_settings(self) -> None:
        geometry = self.settings.value("geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1300, 860)
        splitter = self.settings.value("splitter")
        if splitter is not None:
            self.splitter.restoreState(splitter)
        mode = self.settings.value("mode", "split")
        self.mode.setCurrentIndex(max(0, self.mode.findData(mode)))
        self.format.setCurrentIndex(max(0, self.format.findData(self.settings.value("format", "dng"))))
        size = int(self.settings.value("region_size", DEFAULT_REGION))
        self.region_size.setCurrentIndex(max(0, self.region_size.findData(f"{size}x{size}")))
        strength = self.options.strength
        if strength is None:
            strength = int(self.settings.value("strength", 50))
        self.slider.setValue(max(0, min(100, strength)))
        self.strip.mark(self.slider.value())

    def save_settings(self) -> None:
        self.settings.setValue("geometry", self.saveGeometry())
        self.settings.setValue("splitter", self.splitter.saveState())
        self.settings.setValue("strength", self.strength())
        self.settings.setValue("mode", self.mode.currentData())
        self.settings.setValue("format", self.format.currentData())
        width, height = self.region_side()
        if width == height and width in REGION_SIZES:
            self.settings.setValue("region_size", width)
        self.settings.sync()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.save_settings()
        self.generation += 1  # whatever is still running reports to no one
        if self.export_cancel is not None:
            self.export_cancel.set()
        super().closeEvent(event)
        self.closed.emit()

    # -- status --------------------------------------------------------------------------------
    def strength(self) -> int:
        return self.slider.value()

    def show_problem(self, message: str, retry: bool = False) -> None:
        """A readable message in the window (the window stays usable)."""
        self.problem.setText(message)
        self.problem.show()
        self.retry.setVisible(retry)
        self.problem_shown.emit(message)

    def clear_problem(self) -> None:
        self.problem.clear()
        self.problem.hide()
        self.retry.hide()

    def _set_busy(self, text: str, cancellable: bool = False) -> None:
        self.busy_label.setText(text)
        self.busy.setVisible(bool(text))
        self.cancel_button.setVisible(bool(text) and cancellable)
        self._busy_text = text
        self._busy_since = time.monotonic()
        if text and cancellable:
            self._tick.start()
        else:
            self._tick.stop()

    def _show_elapsed(self) -> None:
        self.busy_label.setText(f"{self._busy_text} {time.monotonic() - self._busy_since:.1f} s")

    def _view_changed(self) -> None:
        self.zoom_label.setText(f"{self.compare.current_zoom() * 100:.0f} %")
        if self.mode.currentData() != self.compare.mode:
            self.mode.blockSignals(True)
            self.mode.setCurrentIndex(self.mode.findData(self.compare.mode))
            self.mode.blockSignals(False)

    # -- opening a file ------------------------------------------------------------------------
    def choose_file(self) -> None:
        start = str(Path(self.path).parent) if self.path else os.getcwd()
        chosen, _ = QFileDialog.getOpenFileName(self, "Open a RAW file", start)
        if chosen:
            self.open_file(chosen)

    def reload(self) -> None:
        self.engine = None  # find or start the engine again
        if self.path:
            self.open_file(self.path)

    def open_file(self, path: str) -> None:
        """Connect to the engine (starting it when needed), read the RAW and show its overview;
        then the region (``--roi``, else the centre) is restored."""
        self.path = os.path.abspath(path)
        self.generation += 1
        generation = self.generation
        self.region_busy = False
        self.info, self.picture, self.region = {}, QSize(), QRect()
        self.clear_problem()
        self.compare.clear(f"Opening {Path(self.path).name}…")
        self.overview.set_picture(QImage(), QSize())
        self.overview.set_region(QRect())
        self.strip.clear()
        self.setWindowTitle(f"{Path(self.path).name} — rddm preview")
        self.file_label.setText(Path(self.path).name)
        self._set_busy("Starting the engine…" if self.engine is None else "Reading the RAW…")
        engine = self.engine
        options = self.options

        def work():
            nonlocal engine
            if engine is None:
                engine = Engine.connect(
                    options.engine_url,
                    given_state_dir=options.state_dir,
                    start_options=list(options.start_options),
                )
            info = engine.info(self.path)
            overview = decode(engine.preview(self.path, baseline=True, max_size=OVERVIEW_SIZE).png)
            return engine, info, overview

        self.tasks.run(
            work,
            lambda result: self._opened(generation, *result),
            lambda message: self._open_failed(generation, message),
        )

    def _open_failed(self, generation: int, message: str) -> None:
        if generation != self.generation:
            return
        self._set_busy("")
        self.compare.clear(f"Cannot open {Path(self.path).name}")
        self.show_problem(message, retry=True)

    def _opened(self, generation: int, engine: Engine, info: dict, overview: QImage) -> None:
        if generation != self.generation:
            return
        self.engine, self.info = engine, info
        self.picture = QSize(int(info["upright_width"]), int(info["upright_height"]))
        camera = " ".join(part for part in (info.get("make"), info.get("model")) if part)
        details = [
            camera,
            f"{self.picture.width()} × {self.picture.height()}",
            str(info.get("cfa_pattern", "")),
        ]
        self.file_label.setText(f"{Path(self.path).name}   ·   " + "   ·   ".join(d for d in details if d))
        self.overview.set_picture(overview, self.picture)
        if self.options.roi is not None:
            x, y, width, height = self.options.roi
            self.options.roi = None  # only for the first file
            self._add_region_size(width, height)
            region = QRect(x, y, width, height)
        else:
            width, height = self.region_side()
            region = QRect(0, 0, width, height)
            region.moveCenter(QRect(0, 0, self.picture.width(), self.picture.height()).center())
        self._set_busy("")
        self.choose_region(region)

    # -- regions -------------------------------------------------------------------------------
    def region_side(self) -> tuple[int, int]:
        """The chosen region size, (width, height) in pixels."""
        width, height = self.region_size.currentData().split("x")
        return int(width), int(height)

    def _add_region_size(self, width: int, height: int) -> None:
        index = self.region_size.findData(f"{width}x{height}")
        if index < 0:
            self.region_size.addItem(f"{width} × {height}", f"{width}x{height}")
            index = self.region_size.count() - 1
        self.region_size.setCurrentIndex(index)

    def _region_size_changed(self) -> None:
        if self.picture.isEmpty():
            return
        width, height = self.region_side()
        centre = (self.region if not self.region.isEmpty() else self.overview.region).center()
        region = QRect(0, 0, width, height)
        region.moveCenter(centre)
        self.choose_region(region)

    def choose_region(self, region: QRect) -> None:
        """Show ``region`` (upright picture pixels): its classical render at once, then the model's
        restoration, run on this region only in a worker thread."""
        if self.engine is None or self.picture.isEmpty():
            return
        region = self.overview.clamp(region)
        if region == self.region and not self.region_busy and not self.compare.after.isNull():
            self.overview.set_region(region)
            return
        self.generation += 1
        generation, engine, path = self.generation, self.engine, self.path
        roi = (region.x(), region.y(), region.width(), region.height())
        strength = self.strength()
        self.overview.set_region(region)
        self.region_busy = True
        self.clear_problem()
        self.strip.clear()
        self._set_busy(
            f"Restoring {region.width()} × {region.height()} at ({region.x()}, {region.y()})…",
            cancellable=True,
        )
        self.compare.set_placeholder("Restoring…")
        parts: dict[str, QImage] = {}
        for part, baseline, at in (("before", True, 0.5), ("after", False, strength / 100)):

            def work(baseline=baseline, at=at):
                preview = engine.preview(path, roi=roi, strength=at, baseline=baseline)
                return decode(preview.png), baseline or preview.cached

            self.tasks.run(
                work,
                lambda result, part=part: self._region_part(
                    generation, region, strength, parts, part, *result
                ),
                lambda message: self._region_failed(generation, message),
            )

    def _region_part(
        self,
        generation: int,
        region: QRect,
        strength: int,
        parts: dict,
        part: str,
        image: QImage,
        cached: bool,
    ) -> None:
        """One image of a new region. The pair is shown together, so before and after always show
        the same pixels; only when nothing is shown yet does the before come first."""
        self.model_previews += not cached
        if generation != self.generation:
            return
        parts[part] = image
        if len(parts) < 2:
            if part == "before" and self.compare.before.isNull():
                self.compare.set_images(before=image)
            return
        self.region, self.region_busy = region, False
        self.shown_strength = strength
        self._set_busy("")
        self.compare.set_placeholder("")
        self.compare.set_images(before=parts["before"], after=parts["after"])
        self.compare.set_after_label(f"After · {strength}")
        self.region_ready.emit()
        self.after_ready.emit()
        self._request_after()  # the slider may have moved while the model ran
        self._request_strip()

    def _region_failed(self, generation: int, message: str) -> None:
        if generation != self.generation:
            return
        self.generation += 1  # drop the other half of the pair
        self.region_busy = False
        self._set_busy("")
        self.compare.set_placeholder("")
        self.overview.set_region(self.region)
        self.show_problem(message, retry=self.engine is None or "no engine answers" in message)

    def cancel_region(self) -> None:
        """Stop waiting for the region being restored and go back to the one shown before."""
        if not self.region_busy:
            return
        self.generation += 1
        self.region_busy = False
        self._set_busy("")
        self.overview.set_region(self.region)
        shown = not self.compare.after.isNull()
        self.compare.set_placeholder("" if shown else "Cancelled: choose a region in the overview")
        self.statusBar().showMessage("Cancelled", 3000)

    # -- strength ------------------------------------------------------------------------------
    def set_strength(self, value: int) -> None:
        self.slider.setValue(value)

    def _strength_changed(self, value: int) -> None:
        self.strip.mark(value)
        self._request_after()

    def _request_after(self) -> None:
        """The after image at the slider's strength: a blend of the region's cached ends. One
        request at a time; the last strength asked for wins."""
        if self.region_busy or self.after_in_flight or self.engine is None or self.region.isEmpty():
            return
        strength = self.strength()
        if strength == self.shown_strength:
            return
        self.after_in_flight = True
        generation, engine, path, region = self.generation, self.engine, self.path, QRect(self.region)
        roi = (region.x(), region.y(), region.width(), region.height())

        def work():
            preview = engine.preview(path, roi=roi, strength=strength / 100)
            return decode(preview.png), preview.cached

        self.tasks.run(
            work,
            lambda result: self._after_at(generation, strength, *result),
            lambda message: self._after_failed(generation, message),
        )

    def _after_at(self, generation: int, strength: int, image: QImage, cached: bool) -> None:
        self.after_in_flight = False
        self.model_previews += not cached
        if generation != self.generation:
            return
        self.shown_strength = strength
        self.last_after_cached = cached
        self.compare.set_images(after=image)
        self.compare.set_after_label(f"After · {strength}")
        self.after_ready.emit()
        self._request_after()

    def _after_failed(self, generation: int, message: str) -> None:
        self.after_in_flight = False
        if generation == self.generation:
            self.show_problem(message, retry="no engine answers" in message)

    def _request_strip(self) -> None:
        generation, engine, path = self.generation, self.engine, self.path
        roi = (self.region.x(), self.region.y(), self.region.width(), self.region.height())
        side = self.strip.crop_side()

        def work():
            crops = {}
            for strength in STRIP_STRENGTHS:
                crops[strength] = centre_crop(
                    decode(engine.preview(path, roi=roi, strength=strength / 100).png), side
                )
            return crops

        def done(crops):
            if generation == self.generation:
                self.strip.set_crops(crops)
                self.strip.mark(self.strength())
                self.strip_ready.emit()

        self.tasks.run(work, done, lambda message: self._after_failed(generation, message))

    # -- export and apply ----------------------------------------------------------------------
    def ask_export(self) -> None:
        if self.engine is None or not self.path:
            self.show_problem("Open a RAW file first")
            return
        dialog = ExportDialog(self.format.currentData(), str(Path(self.path).parent), self.strength(), self)
        if dialog.exec():
            fmt, folder = dialog.choice()
            self.format.setCurrentIndex(self.format.findData(fmt))
            self.export(fmt, folder)

    def export(self, fmt: str, folder: str | None) -> None:
        """Restore the whole RAW at the current strength into ``folder`` (None: beside the RAW)."""
        if self.engine is None or self.export_cancel is not None:
            return
        engine, path, strength = self.engine, self.path, self.strength()
        output_dir = os.path.abspath(folder) if folder else None
        cancel = self.export_cancel = threading.Event()
        self.export_button.setEnabled(False)
        self.export_progress.setValue(0)
        self.export_progress.show()
        self.export_cancel_button.show()
        self.export_label.setText(f"Restoring the whole picture at {strength} as {fmt.upper()}…")

        def work(progress):
            job = engine.submit(path, strength=strength / 100, fmt=fmt, output_dir=output_dir)
            cancelled = False
            while job["state"] in ("queued", "running"):
                if cancel.is_set() and not cancelled:
                    engine.cancel(job["id"])
                    cancelled = True
                progress(job["progress"])
                job = engine.job(job["id"], wait=0.5)
            return job

        self.tasks.run(work, self._exported, self._export_failed, on_progress=self._export_progress)

    def _export_progress(self, fraction: float) -> None:
        self.export_progress.setValue(round(100 * fraction))

    def _export_done(self) -> None:
        self.export_cancel = None
        self.export_button.setEnabled(True)
        self.export_progress.hide()
        self.export_cancel_button.hide()

    def _exported(self, job: dict) -> None:
        self._export_done()
        if job["state"] == "done" and job["outputs"]:
            output = job["outputs"][0]["output"]
            self.export_label.setText(f"Exported {output}")
            self.export_finished.emit(output)
        elif job["state"] == "cancelled":
            self.export_label.setText("Export cancelled")
            self.export_finished.emit("")
        else:
            errors = "; ".join(item["error"] for item in job["errors"]) or f"the job {job['state']}"
            self.export_label.setText("Export failed")
            self.show_problem(f"Export failed: {errors}")
            self.export_finished.emit("")

    def _export_failed(self, message: str) -> None:
        self._export_done()
        self.export_label.setText("Export failed")
        self.show_problem(f"Export failed: {message}")
        self.export_finished.emit("")

    def cancel_export(self) -> None:
        if self.export_cancel is not None:
            self.export_cancel.set()
            self.export_label.setText("Cancelling the export…")

    def apply_choice(self) -> None:
        """Print the choice as one JSON line for the darktable plugin, and close."""
        choice = {"strength": self.strength() / 100, "format": self.format.currentData()}
        sys.stdout.write(json.dumps(choice) + "\n")
        sys.stdout.flush()
        self.applied = True
        self.close()
