"""Before/after of one region: a split view with a draggable divider, side by side, or a flip
between the two. One zoom and one centre serve both images, so they always stay aligned."""

from __future__ import annotations

from PyQt6.QtCore import QPointF, QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QFont, QImage, QMouseEvent, QPainter, QPaintEvent, QPen, QWheelEvent
from PyQt6.QtWidgets import QSizePolicy, QWidget

SPLIT, SIDE_BY_SIDE, FLIP = "split", "side", "flip"
MODES = {SPLIT: "Split", SIDE_BY_SIDE: "Side by side", FLIP: "Flip (space)"}
ZOOM_STEPS = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
DIVIDER_GRAB = 8  # pixels either side of the divider that pick it up
LABEL_BACK = QColor(0, 0, 0, 150)
LABEL_TEXT = QColor(230, 230, 230)
DIVIDER = QColor(230, 230, 230)


class Compare(QWidget):
    """``zoom`` is image pixels to *device* pixels (1.0 is a true 1:1 on HiDPI screens too);
    ``fit`` keeps the whole region in view whatever the widget's size."""

    view_changed = pyqtSignal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.before, self.after = QImage(), QImage()
        self.after_label = "After"
        self.placeholder = ""
        self.mode = SPLIT
        self.flip_shows_before = True
        self.fit = False
        self.zoom = 1.0
        self.centre = QPointF()
        self.divider = 0.5
        self._drag: str | None = None
        self._last = QPointF()
        self.setMinimumSize(320, 240)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)

    # -- content -------------------------------------------------------------------------------
    def image_size(self) -> tuple[int, int]:
        shown = self.after if not self.after.isNull() else self.before
        return shown.width(), shown.height()

    def set_images(self, before: QImage | None = None, after: QImage | None = None) -> None:
        """Replace either image; a new region size re-centres the view."""
        old = self.image_size()
        if before is not None:
            self.before = before
        if after is not None:
            self.after = after
        if self.image_size() != old:
            width, height = self.image_size()
            self.centre = QPointF(width / 2, height / 2)
        self.update()

    def clear(self, placeholder: str = "") -> None:
        self.before, self.after, self.placeholder = QImage(), QImage(), placeholder
        self.update()

    def set_after_label(self, text: str) -> None:
        self.after_label = text
        self.update()

    def set_placeholder(self, text: str) -> None:
        self.placeholder = text
        self.update()

    def set_mode(self, mode: str) -> None:
        self.mode = mode
        self.flip_shows_before = True
        self.update()
        self.view_changed.emit()

    def toggle_before_after(self) -> None:
        """Space: flip to the whole "before", then between before and after."""
        if self.mode != FLIP:
            self.mode, self.flip_shows_before = FLIP, True
        else:
            self.flip_shows_before = not self.flip_shows_before
        self.update()
        self.view_changed.emit()

    # -- zoom and pan --------------------------------------------------------------------------
    def ports(self) -> list[QRectF]:
        """The viewports, in widget coordinates: one, or two halves side by side."""
        whole = QRectF(self.rect())
        if self.mode != SIDE_BY_SIDE:
            return [whole]
        half = whole.width() / 2
        return [QRectF(0, 0, half - 1, whole.height()), QRectF(half + 1, 0, half - 1, whole.height())]

    def fit_zoom(self) -> float:
        width, height = self.image_size()
        if not width or not height:
            return 1.0
        port = self.ports()[0]
        return min(port.width() / width, port.height() / height) * self.devicePixelRatioF()

    def current_zoom(self) -> float:
        return self.fit_zoom() if self.fit else self.zoom

    def set_zoom(self, zoom: float | None, anchor: QPointF | None = None) -> None:
        """``None`` fits; a number is device pixels per image pixel, kept at ``anchor`` (widget point)."""
        if zoom is None:
            self.fit = True
            width, height = self.image_size()
            self.centre = QPointF(width / 2, height / 2)
        else:
            zoom = max(ZOOM_STEPS[0], min(ZOOM_STEPS[-1], zoom))
            if anchor is not None:
                before = self.to_image(anchor)
                self.fit, self.zoom = False, zoom
                after = self.to_image(anchor)
                self.centre += before - after
            else:
                self.fit, self.zoom = False, zoom
        self._clamp_centre()
        self.update()
        self.view_changed.emit()

    def zoom_in(self, anchor: QPointF | None = None) -> None:
        current = self.current_zoom()
        self.set_zoom(next((step for step in ZOOM_STEPS if step > current * 1.01), ZOOM_STEPS[-1]), anchor)

    def zoom_out(self, anchor: QPointF | None = None) -> None:
        current = self.current_zoom()
        steps = [step for step in ZOOM_STEPS if step < current / 1.01]
        self.set_zoom(steps[-1] if steps else ZOOM_STEPS[0], anchor)

    def _scale(self) -> float:
        """Widget (logical) pixels per image pixel."""
        return self.current_zoom() / self.devicePixelRatioF()

    def _port_at(self, point: QPointF) -> QRectF:
        ports = self.ports()
        return next((port for port in ports if port.contains(point)), ports[0])

    def to_image(self, point: QPointF) -> QPointF:
        port = self._port_at(point)
        scale = self._scale()
        return self.centre + (point - port.center()) / scale

    def _clamp_centre(self) -> None:
        width, height = self.image_size()
        self.centre = QPointF(max(0.0, min(width, self.centre.x())), max(0.0, min(height, self.centre.y())))

    # -- painting ------------------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), self.palette().base())
        width, height = self.image_size()
        if not width:
            if self.placeholder:
                painter.setPen(self.palette().placeholderText().color())
                painter.drawText(
                    self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.placeholder
                )
            return
        smooth = self.current_zoom() < 1.0
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, smooth)
        ports = self.ports()
        if self.mode == SIDE_BY_SIDE:
            self._draw(painter, ports[0], self.before, ports[0])
            self._draw(painter, ports[1], self.after, ports[1])
            self._label(painter, ports[0], "Before", left=True)
            self._label(painter, ports[1], self.after_label, left=False)
        elif self.mode == FLIP:
            image, text = (
                (self.before, "Before") if self.flip_shows_before else (self.after, self.after_label)
            )
            self._draw(painter, ports[0], image, ports[0])
            self._label(painter, ports[0], text, left=True)
        else:
            port = ports[0]
            x = port.left() + self.divider * port.width()
            self._draw(
                painter, port, self.before, QRectF(port.left(), port.top(), x - port.left(), port.height())
            )
            self._draw(painter, port, self.after, QRectF(x, port.top(), port.right() - x, port.height()))
            painter.setPen(QPen(DIVIDER, 1))
            painter.drawLine(QPointF(x, port.top()), QPointF(x, port.bottom()))
            handle = QRectF(x - 5, port.center().y() - 18, 10, 36)
            painter.setBrush(DIVIDER)
            painter.drawRoundedRect(handle, 4, 4)
            self._label(painter, port, "Before", left=True)
            self._label(painter, port, self.after_label, left=False)
        if self.placeholder:
            self._label(painter, QRectF(self.rect()), self.placeholder, left=True, bottom=True)

    def _draw(self, painter: QPainter, port: QRectF, image: QImage, clip: QRectF) -> None:
        if image.isNull() or clip.width() <= 0:
            return
        scale = self._scale()
        origin = port.center() - self.centre * scale  # where image pixel (0, 0) lands
        painter.save()
        painter.setClipRect(clip)
        # draw only the visible source pixels: cheap at 8:1 on a large region
        left = max(0, int((clip.left() - origin.x()) / scale))
        top = max(0, int((clip.top() - origin.y()) / scale))
        right = min(image.width(), int((clip.right() - origin.x()) / scale) + 2)
        bottom = min(image.height(), int((clip.bottom() - origin.y()) / scale) + 2)
        if right > left and bottom > top:
            source = QRectF(left, top, right - left, bottom - top)
            target = QRectF(
                origin.x() + left * scale,
                origin.y() + top * scale,
                source.width() * scale,
                source.height() * scale,
            )
            painter.drawImage(target, image, source)
        painter.restore()

    def _label(self, painter: QPainter, port: QRectF, text: str, *, left: bool, bottom: bool = False) -> None:
        font = QFont(self.font())
        font.setPointSizeF(font.pointSizeF() * 0.95)
        painter.setFont(font)
        metrics = painter.fontMetrics()
        box = QRectF(0, 0, metrics.horizontalAdvance(text) + 14, metrics.height() + 6)
        x = port.left() + 8 if left else port.right() - box.width() - 8
        y = port.bottom() - box.height() - 8 if bottom else port.top() + 8
        box.moveTo(x, y)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(LABEL_BACK)
        painter.drawRoundedRect(box, 4, 4)
        painter.setPen(LABEL_TEXT)
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)

    # -- mouse ---------------------------------------------------------------------------------
    def _near_divider(self, point: QPointF) -> bool:
        if self.mode != SPLIT:
            return False
        port = self.ports()[0]
        return abs(point.x() - (port.left() + self.divider * port.width())) <= DIVIDER_GRAB

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        self._drag = "divider" if self._near_divider(event.position()) else "pan"
        self._last = event.position()
        if self._drag == "pan":
            self.setCursor(Qt.CursorShape.ClosedHandCursor)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        point = event.position()
        if self._drag == "divider":
            port = self.ports()[0]
            self.divider = max(0.0, min(1.0, (point.x() - port.left()) / max(1.0, port.width())))
            self.update()
        elif self._drag == "pan":
            self.centre -= (point - self._last) / self._scale()
            self._last = point
            if self.fit:  # panning leaves fit at the same zoom
                self.fit, self.zoom = False, self.fit_zoom()
            self._clamp_centre()
            self.update()
        else:
            near = self._near_divider(point)
            self.setCursor(Qt.CursorShape.SplitHCursor if near else Qt.CursorShape.OpenHandCursor)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._drag == "pan":
            self.view_changed.emit()
        self._drag = None
        self.setCursor(Qt.CursorShape.OpenHandCursor)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        """Double click: 1:1 at the point, or back to fit."""
        if self.fit or abs(self.current_zoom() - 1.0) > 1e-6:
            self.set_zoom(1.0, event.position())
        else:
            self.set_zoom(None)

    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y()
        if steps > 0:
            self.zoom_in(event.position())
        elif steps < 0:
            self.zoom_out(event.position())

    def resizeEvent(self, event) -> None:
        self._clamp_centre()
        super().resizeEvent(event)
