"""The export dialog: which format and which folder for the whole restored RAW."""

from __future__ import annotations

from PyQt6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QWidget,
)

FORMATS = {
    "dng": "DNG (linear, for darktable)",
    "tiff": "TIFF (16-bit)",
    "jpeg": "JPEG",
    "png": "PNG",
}


def format_box(parent: QWidget | None = None) -> QComboBox:
    box = QComboBox(parent)
    for name, text in FORMATS.items():
        box.addItem(text, name)
    return box


class ExportDialog(QDialog):
    """Asks for a format and an existing output folder."""

    def __init__(self, fmt: str, folder: str, strength: int, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Export restored RAW")
        self.format = format_box(self)
        self.format.setCurrentIndex(max(0, self.format.findData(fmt)))
        self.folder = QLineEdit(folder, self)
        browse = QPushButton("Choose…", self)
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.folder, 1)
        row.addWidget(browse)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, parent=self
        )
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText(f"Export at strength {strength}")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow("Format", self.format)
        form.addRow("Folder", row)
        form.addRow(buttons)
        self.resize(520, self.sizeHint().height())

    def _browse(self) -> None:
        chosen = QFileDialog.getExistingDirectory(self, "Export to", self.folder.text())
        if chosen:
            self.folder.setText(chosen)

    def choice(self) -> tuple[str, str]:
        return self.format.currentData(), self.folder.text().strip()
