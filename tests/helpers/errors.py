"""Checks of spectools' one-line error messages."""
import pytest

from spectools.errors import SpectoolsError


def raises_one_line(path, match):
    """pytest.raises for a SpectoolsError whose one-line message names ``path``."""
    class Check:
        def __enter__(self):
            self.ctx = pytest.raises(SpectoolsError, match=match)
            self.info = self.ctx.__enter__()
            return self.info

        def __exit__(self, *exc):
            suppressed = self.ctx.__exit__(*exc)
            message = str(self.info.value)
            assert "\n" not in message
            assert message.startswith(f"{path}: ")
            return suppressed
    return Check()
