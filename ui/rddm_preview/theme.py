"""A dark, neutral look: grey chrome with no colour cast, so it does not tint what you judge."""

from __future__ import annotations

from PyQt6.QtGui import QColor, QPalette
from PyQt6.QtWidgets import QApplication

GREYS = {
    QPalette.ColorRole.Window: 43,
    QPalette.ColorRole.WindowText: 220,
    QPalette.ColorRole.Base: 30,
    QPalette.ColorRole.AlternateBase: 38,
    QPalette.ColorRole.ToolTipBase: 50,
    QPalette.ColorRole.ToolTipText: 225,
    QPalette.ColorRole.PlaceholderText: 130,
    QPalette.ColorRole.Text: 220,
    QPalette.ColorRole.Button: 55,
    QPalette.ColorRole.ButtonText: 220,
    QPalette.ColorRole.BrightText: 255,
    QPalette.ColorRole.Light: 80,
    QPalette.ColorRole.Midlight: 65,
    QPalette.ColorRole.Mid: 45,
    QPalette.ColorRole.Dark: 25,
    QPalette.ColorRole.Shadow: 10,
    QPalette.ColorRole.Highlight: 105,
    QPalette.ColorRole.HighlightedText: 250,
    QPalette.ColorRole.Link: 200,
}

STYLE = """
QToolTip { border: 1px solid #555; }
QGroupBox { border: 1px solid #3a3a3a; border-radius: 4px; margin-top: 1.2em; padding-top: 0.3em; }
QGroupBox::title { subcontrol-origin: margin; left: 8px; padding: 0 4px; color: #b4b4b4; }
QLabel#problem { background: #3a3a3a; border: 1px solid #6a6a6a; border-radius: 4px; padding: 6px 8px; }
QToolButton#strip { border: 1px solid transparent; border-radius: 3px; padding: 2px; }
QToolButton#strip:checked { border: 1px solid #d0d0d0; background: #3c3c3c; }
QSplitter::handle { background: #232323; }
"""


def apply_dark_theme(app: QApplication) -> None:
    app.setStyle("Fusion")
    palette = QPalette()
    for role, grey in GREYS.items():
        palette.setColor(role, QColor(grey, grey, grey))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor(120, 120, 120))
    app.setPalette(palette)
    app.setStyleSheet(STYLE)
