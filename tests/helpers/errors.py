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


def cli_fails(capsys, *argv):
    """Run ``spectools ARGV``; check it fails with status 2 and one line on stderr; that line."""
    from spectools.cli.main import main

    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # usage errors exit from argparse
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    return err
