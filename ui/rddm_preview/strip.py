"""A strip of small 1:1 crops of the region at fixed strengths; clicking one picks its strength."""

from __future__ import annotations

from PyQt6.QtCore import QSize, Qt, pyqtSignal
from PyQt6.QtGui import QIcon, QImage, QPixmap
from PyQt6.QtWidgets import QButtonGroup, QHBoxLayout, QToolButton, QWidget

STRIP_STRENGTHS = (0, 25, 50, 75, 100)
TILE = 112  # logical pixels; the crop is taken at the screen's device pixels, so it is 1:1


def centre_crop(image: QImage, side: int) -> QImage:
    """The ``side`` x ``side`` centre of ``image`` (smaller when the image is)."""
    width, height = min(side, image.width()), min(side, image.height())
    return image.copy((image.width() - width) // 2, (image.height() - height) // 2, width, height)


class StrengthStrip(QWidget):
    strength_picked = pyqtSignal(int)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        self.group = QButtonGroup(self)
        self.buttons: dict[int, QToolButton] = {}
        for strength in STRIP_STRENGTHS:
            button = QToolButton(self)
            button.setObjectName("strip")
            button.setText(str(strength))
            button.setToolTip(f"Strength {strength}: click to use it")
            button.setCheckable(True)
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
            button.setIconSize(QSize(TILE, TILE))
            button.clicked.connect(lambda _=False, value=strength: self.strength_picked.emit(value))
            self.group.addButton(button)
            layout.addWidget(button)
            self.buttons[strength] = button
        layout.addStretch(1)
        self.clear()

    def crop_side(self) -> int:
        """The crop's side in image pixels: one image pixel per device pixel."""
        return round(TILE * self.devicePixelRatioF())

    def clear(self) -> None:
        blank = QPixmap(TILE, TILE)
        blank.fill(self.palette().base().color())
        for button in self.buttons.values():
            button.setIcon(QIcon(blank))
            button.setEnabled(False)

    def set_crops(self, crops: dict[int, QImage]) -> None:
        for strength, image in crops.items():
            pixmap = QPixmap.fromImage(image)
            pixmap.setDevicePixelRatio(self.devicePixelRatioF())
            self.buttons[strength].setIcon(QIcon(pixmap))
            self.buttons[strength].setEnabled(True)

    def mark(self, strength: int) -> None:
        """Check the crop whose strength is the current one (none when between them)."""
        self.group.setExclusive(False)
        for value, button in self.buttons.items():
            button.setChecked(value == strength)
        self.group.setExclusive(True)
