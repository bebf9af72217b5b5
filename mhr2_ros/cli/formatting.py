"""The help formatter of every command (argparse only)."""

from __future__ import annotations

import argparse


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends "(default: X)" only where it informs: not for None/False defaults (the help
    text says what happens then) and not where the help already names its default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default in (None, False, "") or "(default" in text or "default:" in text.lower():
            return text
        return super()._get_help_string(action)
