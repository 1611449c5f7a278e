"""The whole picture fitted to its pane, with the region marker the user moves to choose a crop."""

from __future__ import annotations

from PyQt6.QtCore import QPointF, QRect, QRectF, QSize, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPaintEvent, QPen
from PyQt6.QtWidgets import QSizePolicy, QWidget

MARKER = QColor(235, 235, 235)
SHADE = QColor(0, 0, 0, 110)


class Overview(QWidget):
    """Shows a downscaled picture of ``picture_size`` (upright pixels) and a region in picture
    pixels. Dragging the marker moves it; a click elsewhere centres it there. ``region_chosen`` is
    emitted once, on release, with the region clamped inside the picture."""

    region_chosen = pyqtSignal(QRect)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.image = QImage()
        self.picture_size = QSize()
        self.region = QRect()
        self._drag_offset: QPointF | None = None
        self.setMinimumSize(160, 120)
        policy = QSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        policy.setHeightForWidth(True)
        self.setSizePolicy(policy)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setToolTip("Drag the frame, or click, to choose the region to compare")

    def set_picture(self, image: QImage, picture_size: QSize) -> None:
        self.image, self.picture_size = image, picture_size
        self.updateGeometry()
        self.update()

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        """As tall as the picture at this width (3:2 until one is open)."""
        if self.picture_size.isEmpty():
            return width * 2 // 3
        return max(
            self.minimumHeight(), round(width * self.picture_size.height() / self.picture_size.width())
        )

    def sizeHint(self) -> QSize:
        return QSize(300, self.heightForWidth(300))

    def set_region(self, region: QRect) -> None:
        self.region = QRect(region)
        self.update()

    def clamp(self, region: QRect) -> QRect:
        """``region`` moved (not resized, unless larger than the picture) to lie inside it."""
        width = min(region.width(), self.picture_size.width())
        height = min(region.height(), self.picture_size.height())
        x = max(0, min(region.x(), self.picture_size.width() - width))
        y = max(0, min(region.y(), self.picture_size.height() - height))
        return QRect(x, y, width, height)

    def picture_rect(self) -> QRectF:
        """Where the picture is drawn, in widget coordinates (fitted, centred)."""
        if self.picture_size.isEmpty():
            return QRectF()
        scale = min(self.width() / self.picture_size.width(), self.height() / self.picture_size.height())
        width, height = self.picture_size.width() * scale, self.picture_size.height() * scale
        return QRectF((self.width() - width) / 2, (self.height() - height) / 2, width, height)

    def _scale(self) -> float:
        return self.picture_rect().width() / max(1, self.picture_size.width())

    def marker_rect(self) -> QRectF:
        frame, scale = self.picture_rect(), self._scale()
        return QRectF(
            frame.x() + self.region.x() * scale,
            frame.y() + self.region.y() * scale,
            self.region.width() * scale,
            self.region.height() * scale,
        )

    def to_picture(self, point: QPointF) -> QPointF:
        frame, scale = self.picture_rect(), self._scale() or 1.0
        return QPointF((point.x() - frame.x()) / scale, (point.y() - frame.y()) / scale)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), self.palette().window())
        if self.image.isNull():
            return
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        frame = self.picture_rect()
        painter.drawImage(frame, self.image)
        if self.region.isEmpty():
            return
        marker = self.marker_rect()
        outside = QRectF(frame)
        painter.save()
        painter.setClipRect(outside)
        for band in (
            QRectF(frame.left(), frame.top(), frame.width(), marker.top() - frame.top()),
            QRectF(frame.left(), marker.bottom(), frame.width(), frame.bottom() - marker.bottom()),
            QRectF(frame.left(), marker.top(), marker.left() - frame.left(), marker.height()),
            QRectF(marker.right(), marker.top(), frame.right() - marker.right(), marker.height()),
        ):
            painter.fillRect(band, SHADE)
        painter.restore()
        painter.setPen(QPen(MARKER, 1.5))
        painter.drawRect(marker)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() != Qt.MouseButton.LeftButton or self.picture_size.isEmpty():
            return
        where = self.to_picture(event.position())
        if not QRectF(self.region).contains(where):  # centre the region on the click
            self.region = self.clamp(
                self.region.translated(
                    round(where.x() - self.region.center().x()), round(where.y() - self.region.center().y())
                )
            )
            where = self.to_picture(event.position())
        self._drag_offset = where - QPointF(self.region.topLeft())
        self.update()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._drag_offset is None:
            return
        corner = self.to_picture(event.position()) - self._drag_offset
        self.region = self.clamp(
            QRect(round(corner.x()), round(corner.y()), self.region.width(), self.region.height())
        )
        self.update()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._drag_offset is None:
            return
        self._drag_offset = None
        self.region_chosen.emit(QRect(self.region))
